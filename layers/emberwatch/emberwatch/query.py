"""The watch-term language: words, "exact phrases", AND, OR, NOT / -term, parentheses, lang:xx.

Words are ANDed by default. Matching is case-insensitive on whole words, so `acme` does not
match `acmeville`. Every stored mention is re-checked locally with `Query.matches`, whatever the
source's own search did.

Examples:
    "acme widgets"                      the phrase
    acme (outage OR down) -stock        acme and one of outage/down, but not stock
    "acme widgets" lang:en              the phrase, English posts only
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(-?)"([^"]*)"|(-?)([^\s()"]+))')
_WORD = re.compile(r"[\w@#$'’.+-]+", re.UNICODE)
MAX_BRANCHES = 8
_JOINERS = re.compile(r"['’.@+-]")
_POSSESSIVE = re.compile(r"['’]")
_SPLIT = re.compile(r"[.@+-]")


class QueryError(ValueError):
    """The query text cannot be parsed; the message says where."""


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]  # one word, or the words of a phrase
    phrase: bool = False

    def matches(self, tokens: tuple[str, ...], language: str | None) -> bool:
        n = len(self.words)
        if n == 1:
            return self.words[0] in tokens
        return any(tokens[i : i + n] == self.words for i in range(len(tokens) - n + 1))

    def native(self) -> str:
        return f'"{" ".join(self.words)}"' if self.phrase else self.words[0]


@dataclass(frozen=True, slots=True)
class Lang:
    code: str

    def matches(self, tokens: tuple[str, ...], language: str | None) -> bool:
        return language is None or language.lower().split("-")[0] == self.code


@dataclass(frozen=True, slots=True)
class Not:
    child: Node

    def matches(self, tokens: tuple[str, ...], language: str | None) -> bool:
        return not self.child.matches(tokens, language)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]

    def matches(self, tokens: tuple[str, ...], language: str | None) -> bool:
        return all(child.matches(tokens, language) for child in self.children)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]

    def matches(self, tokens: tuple[str, ...], language: str | None) -> bool:
        return any(child.matches(tokens, language) for child in self.children)


Node = Term | Lang | Not | And | Or


def tokenize_text(text: str, *, expand: bool = True) -> tuple[str, ...]:
    """Lower-cased words of a post, with surrounding punctuation trimmed.

    With `expand`, a compound word also yields its parts, so `acme` matches "Acme's",
    "acme-based", "@acme" and "support@acme.com" (a possessive 's is dropped, not a word).
    """
    words = []
    for raw in _WORD.findall(text.lower()):
        word = raw.strip(".'’-+")
        if not word:
            continue
        words.append(word)
        if not expand:
            continue
        if word[0] in "@#$" and len(word) > 1:
            word = word[1:]
            words.append(word)
        if _JOINERS.search(word):
            parts = [p for p in _SPLIT.split(_POSSESSIVE.split(word)[0]) if p]
            if parts != [word]:
                if _POSSESSIVE.search(word):
                    # "Acme Widgets's SLA": the phrase "acme widgets" must see "widgets" right after "acme"
                    words.insert(len(words) - 1, parts[-1])
                words.extend(parts)
    return tuple(words)


def _term_words(text: str) -> tuple[str, ...]:
    """Words of a query term; a leading @ or # is dropped so it matches with or without it."""
    return tuple(w.lstrip("@#$") for w in tokenize_text(text, expand=False) if w.lstrip("@#$"))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                if text[pos:].strip():
                    raise QueryError(f"cannot read query {text!r} at position {pos}")
                break
            pos = match.end()
            if match.group(1):
                self.tokens.append(("(", "("))
            elif match.group(2):
                self.tokens.append((")", ")"))
            elif match.group(4) is not None:
                if match.group(3):
                    self.tokens.append(("NOT", "-"))
                self.tokens.append(("PHRASE", match.group(4)))
            else:
                word = match.group(6)
                if match.group(5) and word:
                    self.tokens.append(("NOT", "-"))
                    self.tokens.append(("WORD", word))
                elif word in ("AND", "OR", "NOT"):
                    self.tokens.append((word, word))
                else:
                    self.tokens.append(("WORD", word))
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError("empty query")
        node = self.parse_or()
        if self.index != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.index][1]!r} in query {self.text!r}")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self) -> Node:
        kind = self.peek()
        if kind == "NOT":
            self.take()
            return Not(self.parse_unary())
        if kind == "(":
            self.take()
            node = self.parse_or()
            if self.peek() != ")":
                raise QueryError(f"missing ')' in query {self.text!r}")
            self.take()
            return node
        if kind in ("WORD", "PHRASE"):
            _, value = self.take()
            if kind == "WORD" and value.lower().startswith("lang:"):
                code = value[5:].lower()
                if not re.fullmatch(r"[a-z]{2,3}", code):
                    raise QueryError(f"bad language filter {value!r} in query {self.text!r}")
                return Lang(code)
            words = _term_words(value)
            if not words:
                raise QueryError(f"term {value!r} has no words in query {self.text!r}")
            return Term(
                words[:1] if kind == "WORD" and len(words) == 1 else words,
                phrase=kind == "PHRASE" or len(words) > 1,
            )
        raise QueryError(f"unexpected {self.peek() or 'end of query'!r} in query {self.text!r}")


def _dnf(node: Node) -> list[list[Node]]:
    """Disjunctive normal form: a list of conjunctions of literals (Term, Lang, or Not(...))."""
    if isinstance(node, Or):
        return [branch for child in node.children for branch in _dnf(child)]
    if isinstance(node, And):
        branches: list[list[Node]] = [[]]
        for child in node.children:
            branches = [left + right for left in branches for right in _dnf(child)]
        return branches
    return [[node]]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    root: Node

    def matches(self, text: str, language: str | None = None) -> bool:
        """True when the post's text (and language, if the query filters on it) satisfies the query."""
        return self.root.matches(tokenize_text(text), language)

    def branches(self) -> list[list[Node]]:
        """The query as OR-ed conjunctions, for sources whose search has no OR."""
        branches = _dnf(self.root)
        if len(branches) > MAX_BRANCHES:
            raise QueryError(
                f"query {self.text!r} expands to {len(branches)} searches; at most {MAX_BRANCHES}"
            )
        return branches

    def native_keywords(self) -> list[str]:
        """One keyword search string per branch: positive terms as words or "phrases", negated as -term."""
        searches = []
        for branch in self.branches():
            parts = []
            for literal in branch:
                if isinstance(literal, Term):
                    parts.append(literal.native())
                elif isinstance(literal, Not) and isinstance(literal.child, Term):
                    parts.append("-" + literal.child.native())
            if not any(not p.startswith("-") for p in parts):
                raise QueryError(f"query {self.text!r} has a branch with no positive term to search for")
            searches.append(" ".join(parts))
        return searches


def has_positive(node: Node) -> bool:
    """True when every OR branch has a word or phrase to search for (checked without expanding)."""
    if isinstance(node, Term):
        return True
    if isinstance(node, And):
        return any(has_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(has_positive(c) for c in node.children)
    return False  # lang:xx or a negation alone


@lru_cache(maxsize=512)
def parse_query(text: str) -> Query:
    """Parse a watch-term query (cached)."""
    return Query(text=text, root=_Parser(text).parse())
