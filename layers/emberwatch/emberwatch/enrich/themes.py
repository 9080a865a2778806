"""What a post is about, in the care team's words, and which words decided it.

Themes:
    issue            a business problem or complaint: outage, fault, bad service
    solution_wanted  an explicit ask: fix this, add that, help me
    time_cost        price, billing, refunds, delays, waiting
    feedback         praise or opinion on what was delivered
    question         a question that is none of the above
    other            none of the above

Rules, in this order (the first that applies decides; `Theme.rule` names it):

1. **Keywords** per theme (English, plus the common German, Spanish and French words), matched on
   whole words; `crash*` matches a prefix, `not working` a phrase. A brand adds its own
   (`extra`). A problem word right after a negator in the same clause does not count ("no
   issues", "zero problems", "keine Probleme").
2. **An explicit ask wins**: solution_wanted outranks everything. Asks are matched only as
   phrases ("please fix", "can you add", "need help") or as "please" / "pls" / "bitte" followed
   by a word ("please just let me ..."; not "more of this please."), never as a bare "fix" or
   "help", so the class stays precise; and an ask names the action the care team must take,
   which is what routing needs even when the post also describes the fault.
3. **Resolved with praise is feedback**: a fix word not negated or pending ("fixed", "back up",
   "gelöst"; not "not fixed", "will be fixed") in a positive post (or, without a tone, beside a
   thanks or praise word) is feedback on the service, even though it names the outage it thanks for.
4. **Positive posts about money are feedback**: in a positive post with a feedback word,
   time_cost words are praise of value or speed ("quick refund, thank you", "great for the price").
5. **Precedence** for the rest: issue > time_cost > feedback > question. A fault is the most
   actionable thing in a post; money and waiting next (they escalate); opinion after; a bare
   question last. Precedence, not a score: a care lead can predict it, and a brand keyword
   moves a post exactly where the keyword's theme stands.
6. Generic problem words ("problem", "issue", "trouble") are issue only when nothing more specific
   (a time_cost word) matched: "an issue with my bill" is billing; and not in a positive post
   with praise ("answered my issue within an hour, impressive" is feedback).
6b. A bare duration ("3 weeks now", "2 hours for a pizza") is time_cost when nothing else
   matched and the post is not positive: "battery lasts 2 days" is not a delay.
7. A **question** is a "?" / "¿" or a sentence opening with an interrogative ("how", "does
   anyone", "warum", "cómo", "est-ce que").
8. A **negative post with no theme word** is an issue (a complaint with no detail); a
   **positive post with no theme word** is feedback (praise with no detail).

Whatever the theme, `Theme.trouble` lists the fault and delay words found (issue keywords,
grievance time words such as "waiting" or "delay", a duration waited "for 6 weeks"), not negated:
enrichment turns a neutral post that reports trouble negative.

A learned classifier plugs in through `ThemeClassifier`: anything with `classify(text, *, tone,
language) -> Theme` can replace `RuleThemeClassifier` (keep the rule-based one as its fallback
and its explanation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


THEMES = ("issue", "solution_wanted", "time_cost", "feedback", "question", "other")
PRECEDENCE = ("solution_wanted", "issue", "time_cost", "feedback", "question")
MAX_KEYWORD_CHARS = 60
_NEGATION_WINDOW = 3


@dataclass(frozen=True, slots=True)
class Theme:
    name: str
    matched: tuple[str, ...]  # the words of the post that decided, as written in the post
    rule: str  # which rule decided, in words
    trouble: tuple[str, ...] = ()  # fault or delay words found (not negated), whatever the theme


class ThemeClassifier(Protocol):
    """Anything that names a post's theme; the rule-based classifier is the default."""

    def classify(self, text: str, *, tone: str | None = None, language: str | None = None) -> Theme: ...


KEYWORDS: dict[str, tuple[str, ...]] = {
    "issue": (
        # outages and faults
        "outage*",
        "is down",
        "are down",
        "was down",
        "went down",
        "goes down",
        "been down",
        "still down",
        "down again",
        "down for",
        "down right now",
        "down ?",
        "down since",
        "down rn",
        "drops",
        "dropping",
        "dropped out",
        "dropped call*",
        "dropped connection*",
        "connection dropped",
        "bricked",
        "wrong",
        "someone else's",
        "keeps rebooting",
        "died",
        "dies",
        "dead",
        "stopped",
        "not recognised",
        "not recognized",
        "stale",
        "duplicate*",
        "double-posted",
        "disrupt*",
        "keeps restarting",
        "exception*",
        "overheat*",
        "won't let me",
        "doesn't let me",
        "unable to",
        "greyed out",
        "grayed out",
        "lost",
        "incident",
        "spins forever",
        "site down",
        "app down",
        "servers down",
        "service down",
        "crash*",
        "broken",
        "broke",
        "not working",
        "isn't working",
        "stopped working",
        "doesn't work",
        "don't work",
        "didn't work",
        "won't work",
        "won't load",
        "not loading",
        "doesn't load",
        "can't log in",
        "cant log in",
        "cannot log in",
        "can't login",
        "cant login",
        "unable to log in",
        "can't access",
        "can't connect",
        "error*",
        "bug",
        "bugs",
        "buggy",
        "glitch*",
        "faulty",
        "defect*",
        "freez*",
        "drops wifi",
        "keeps dropping",
        "disconnect*",
        "no signal",
        "no service",
        "no internet",
        "no connection",
        "deleted",
        "unusable",
        "logged me out",
        "laggy",
        "lagging",
        "slow",
        "malfunction*",
        "stuck",
        "never arrived",
        "never received",
        "didn't arrive",
        "hasn't arrived",
        "not delivered",
        "not here",
        "wrong item",
        "damaged",
        "missing",
        # bad service
        "rude",
        "hung up",
        "no reply",
        "no replies",
        "zero replies",
        "no response",
        "no answer",
        "nobody answers",
        "nobody is answering",
        "nobody answering",
        "no one answers",
        "isn't answering",
        "not answering",
        "ignored",
        "ignoring",
        "bad service",
        "terrible service",
        "awful service",
        "poor service",
        "worst service",
        "worst customer service",
        "bad support",
        "terrible support",
        "worst support",
        "useless support",
        "support is the worst",
        "support is useless",
        "service is terrible",
        # German
        "störung*",
        "ausfall",
        "totalausfall",
        "kaputt",
        "fehler*",
        "funktioniert nicht",
        "geht nicht",
        "kein internet",
        "kein netz",
        "keine verbindung",
        "abgestürzt",
        "stürzt ab",
        "defekt",
        "unfreundlich",
        "startet neu",
        "hängt",
        "startet ständig neu",
        "meldet sich nicht",
        # Portuguese, Italian, Dutch
        "não funciona",
        "caiu",
        "non funziona",
        "va e viene",
        "guasto",
        "storing*",
        "werkt niet",
        "kapot",
        # Spanish
        "caída",
        "no funciona",
        "no carga",
        "sin servicio",
        "sin internet",
        "sin señal",
        "fallo",
        "falla",
        "roto",
        "rota",
        "avería",
        "se cae",
        "se cayó",
        "pésimo servicio",
        "mal servicio",
        "no contestan",
        "no responden",
        "perdieron",
        "se cierra",
        "perdido",
        # French
        "panne*",
        "ne marche pas",
        "ne marche plus",
        "marche pas",
        "ne fonctionne pas",
        "fonctionne pas",
        "fonctionne plus",
        "erreur*",
        "cassé*",
        "impossible de me connecter",
        "impossible de se connecter",
        "ne répond jamais",
        "ne répond pas",
        "coupure*",
        "hors service",
        "plante",
        "perdu",
    ),
    "solution_wanted": (
        "please fix",
        "pls fix",
        "plz fix",
        "fix this",
        "fix it",
        "fix your",
        "can you fix",
        "could you fix",
        "please add",
        "can you add",
        "could you add",
        "bring back",
        "please make",
        "please look into",
        "please help",
        "need help",
        "needs help",
        "help me",
        "help needed",
        "can someone help",
        "can anyone help",
        "someone help",
        "feature request",
        "would love an",
        "would love a",
        "would love to see",
        "would be nice if",
        "would be great if",
        "wish you would",
        "wish you'd",
        "wish there was",
        "please consider",
        "add an option",
        "add support for",
        "any chance",
        "any plans to",
        "refund my",
        "refund me",
        "can i get",
        "could i get",
        "any plans for",
        "let us",
        "need someone",
        "dm me",
        "please dm",
        "please respond",
        "please call me",
        # German
        "bitte beheben",
        "bitte um hilfe",
        "brauche hilfe",
        "hilfe benötigt",
        "behebt",
        "hinzu",
        "einbauen",
        "wünsche mir",
        "wäre schön",
        "bitte fixen",
        "bitte repariert",
        "meldet euch",
        # Spanish
        "arreglen",
        "arreglad",
        "necesito ayuda",
        "ayuda por favor",
        "ayúdenme",
        "agreguen",
        "añadan",
        "sería genial",
        "pueden agregar",
        "me pueden ayudar",
        "pueden ayudarme",
        # French
        "pouvez-vous ajouter",
        "ajoutez",
        "besoin d'aide",
        "aidez-moi",
        "aidez moi",
        "m'aider",
        "merci de corriger",
        "corrigez",
        "réparez",
        "ce serait bien",
        "serait pratique",
    ),
    "time_cost": (
        "price*",
        "pricing",
        "expensive",
        "overpriced",
        "cost",
        "costs",
        "fee",
        "fees",
        "bill",
        "billed",
        "billing",
        "invoice*",
        "charge",
        "charged",
        "charges",
        "charging",
        "overcharg*",
        "refund*",
        "money back",
        "discount*",
        "too much",
        "wait",
        "waiting",
        "waited",
        "on hold",
        "delay*",
        "late",
        "been a week",
        "still no",
        "promo*",
        "coupon*",
        "supposed to arrive",
        "where is my",
        "where's my",
        "tracking",
        "not shipped",
        "hasn't shipped",
        # German
        "rechnung*",
        "preis*",
        "teuer",
        "kosten",
        "gebühr*",
        "abgebucht",
        "abbuchung",
        "erstattung",
        "geld zurück",
        "warte*",
        "warteschleife",
        "verspät*",
        "dauert",
        "kostet",
        # Spanish
        "factur*",
        "descuento*",
        "precio*",
        "caro",
        "cara",
        "cobr*",
        "reembolso",
        "esperando",
        "espera",
        "retraso*",
        "demora*",
        "cuánto cuesta",
        "tarifa*",
        # French
        "prix",
        "combien coûte",
        "cher",
        "chère",
        "tarif*",
        "prélev*",
        "rembours*",
        "attente",
        "attendre",
        "j'attends",
        "retard*",
        "augment*",
        "aument*",
        "preço*",
        "ritard*",
        "euros",
        # Portuguese, Italian, Dutch
        "atras*",
        "quanto custa",
        "desconto*",
        "quanto costa",
        "sconto",
        "rekening*",
        "prijs*",
        "korting",
    ),
    "feedback": (
        "love",
        "loving",
        "loved",
        "hate",
        "hated",
        "dislike",
        "prefer*",
        "amazing",
        "awesome",
        "great",
        "excellent",
        "fantastic",
        "brilliant",
        "impressed",
        "impressive",
        "well done",
        "good job",
        "great job",
        "kudos",
        "shoutout",
        "shout out",
        "thanks",
        "thank you",
        "thx",
        "recommend*",
        "worth it",
        "worth every",
        "not worth",
        "best",
        "worst",
        "terrible",
        "awful",
        "disappointed",
        "disappointing",
        "meh",
        "nothing special",
        "confusing",
        "cluttered",
        "ugly",
        "beautiful",
        "gorgeous",
        "solid",
        "quality",
        "hilarious",
        "not bad",
        "pretty good",
        "so much faster",
        "smooth",
        "easy to use",
        "hard to use",
        "hard to read",
        "stars",
        "better",
        "worse",
        "appreciate*",
        "good",
        "nice",
        "happy",
        "unhappy",
        "flawless",
        "hideous",
        "legend*",
        "respect",
        "no regrets",
        "can't fault",
        "can't complain",
        "no complaints",
        "worth",
        "step backwards",
        "annoying",
        "irritating",
        "star",
        "genius",
        "fan of",
        "hit and miss",
        "hit or miss",
        "what a waste",
        "waste of",
        "zuverlässig",
        "nickel",
        "fijn",
        "buenísim*",
        "rock solid",
        "above and beyond",
        "credit to",
        "credit where",
        "hero",
        "props",
        "slaps",
        "spot on",
        "game changer",
        "lifesaver",
        "saved me",
        "accurate",
        # German
        "danke",
        "vielen dank",
        "super",
        "toll",
        "klasse",
        "großartig",
        "genial",
        "gefällt",
        "empfehle*",
        "zufrieden",
        "unzufrieden",
        "enttäuscht",
        "perfekt",
        "top",
        # Spanish
        "gracias",
        "excelente",
        "me encanta",
        "encant*",
        "recomiendo",
        "muy bueno",
        "muy buena",
        "increíble",
        "decepcion*",
        "lo mejor",
        # French
        "merci",
        "génial*",
        "bravo",
        "au top",
        "j'adore",
        "adore",
        "recommande",
        "déçu*",
        "décevant",
        "parfait*",
        "content",
        # Portuguese, Italian, Dutch
        "satisfeit*",
        "recomendo",
        "obrigad*",
        "ottim*",
        "grazie",
        "geweldig",
        "bedankt",
    ),
}
# Durations say "waiting" only when nothing else does and the post is not praise: "3 weeks now"
# is a delay, "battery lasts 2 days" is not.
DURATIONS = (
    *("minutes", "mins", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "ages"),
    *("stunde", "stunden", "tagen", "woche", "wochen", "horas", "días", "semana", "semanas", "mes"),
    *("heures", "jours", "semaines", "mois", "ore", "giorni", "settimana", "settimane", "dias"),
    *("uur", "dagen", "weken"),
)
# time_cost words that are a grievance on their own (not "price" or "refund": a question about
# them is not a complaint); with the issue words they make a neutral post negative (see enrich).
TIME_GRIEVANCES = frozenset(
    {"wait", "waiting", "waited", "on hold", "delay*", "late", "overcharg*", "overpriced", "expensive"}
    | {"too much", "been a week", "supposed to arrive", "where is my", "where's my", "not shipped"}
    | {"hasn't shipped", "still no", "teuer", "warte*", "warteschleife", "verspät*", "caro", "esperando"}
    | {"retraso*", "demora*", "atras*", "cher", "attente", "j'attends", "retard*"}
)
# A duration after these is time spent waiting ("for 6 weeks", "after 5 weeks", "it's been an hour").
_WAITED = _words("for after over been seit desde depuis há da")
_LATER = _words("later late overdue")  # "arrived 4 days later"
# "please" and its kin before a word ask for something: "please add", "bitte prüft", "pls just let me".
_ASK_WORDS = _words("please pls plz bitte")
GENERIC_ISSUE = ("problem", "problems", "problème*", "problema*", "probleme", "issue", "issues", "trouble")
RESOLVED = (
    "fixed",
    "fixing",
    "resolved",
    "sorted",
    "solved",
    "restored",
    "restore",
    "replaced",
    "refunded",
    "handled",
    "pushed a fix",
    "shipped a fix",
    "rolled out a fix",
    "works again",
    "working again",
    "back up",
    "back online",
    "up and running",
    "behoben",
    "gelöst",
    "funktioniert wieder",
    "läuft wieder",
    "resuelto",
    "resolvió",
    "resolveu",
    "solucionado",
    "solucionaron",
    "arreglado",
    "arreglaron",
    "funciona de nuevo",
    "résolu",
    "réglé",
    "remarche",
    "réparé",
)
_NEGATORS = _words(
    "no zero never without not don't didn't doesn't haven't hasn't hadn't nie kein keine keinen "
    "keinerlei ohne sin ningún ninguna ningun nunca aucun aucune sans pas jamais"
)
# A fix word after these is pending or denied: "not fixed", "will be fixed", "get this fixed".
_PENDING = _NEGATORS | _words("still yet be get gets getting isn't wasn't aren't won't noch nicht n'")
# Sentence openers that make a question without a "?": always, or only before an auxiliary.
_ALWAYS_ASKS = _words(
    "why anyone anybody where's what's how's who's warum wieso weshalb cómo cuándo dónde quién cuál "
    "qué pourquoi comment combien est-ce"
)
_WH = _words("how what where when who which wie wann wo wer welche welcher welches")
_WH_NEXT = _words(
    "is are was were do does did can could will would should has have much many long come happened "
    "about else kann können ist sind hat haben wird komme kommt"
)
_AUX_FIRST = _words(
    "is are does can could will should gibt kann können könnt ist sind hat habt puedo pueden hay"
)
_NOT_AUX_NEXT = _words("not never be been love like have rather definitely probably also")
_SERVICE_WORDS = ("customer service", "support", "service", "kundenservice", "atención", "service client")

_STRIP = re.compile(r"https?://\S+|www\.\S+|(?<!\w)@[\w.-]+")
_ELISION = re.compile(r"(?<![\w'])([ldjmnstc]|qu)'(?=\w)")
_TOKEN = re.compile(r"[^\W_]+(?:['-][^\W_]+)*'?|[.!?;:,¿¡]")
_CURRENCY = re.compile(r"[$€£]\s?\d|\d\s?(?:€|eur\b|usd\b|dollars?\b)", re.IGNORECASE)
_CLAUSE_END = frozenset(".!?;:,¿¡")


def tokens(text: str) -> list[str]:
    """Lower-case words and clause punctuation, French elisions split ("l'app" -> "l'", "app")."""
    text = _STRIP.sub(" ", text).lower().replace("’", "'").replace("#", " ")
    return _TOKEN.findall(_ELISION.sub(r"\1' ", text))


@dataclass(frozen=True, slots=True)
class _Keyword:
    source: str  # as written in the list
    words: tuple[str, ...]
    prefix_last: bool
    theme: str
    brand: bool = False


class _Index:
    """Keywords by their first word (exact) and by first-word prefix ("crash*")."""

    def __init__(self, keywords: Sequence[_Keyword]) -> None:
        self.exact: dict[str, list[_Keyword]] = {}
        self.prefix: dict[str, list[_Keyword]] = {}
        for keyword in keywords:
            first = keyword.words[0]
            if len(keyword.words) == 1 and keyword.prefix_last:
                self.prefix.setdefault(first, []).append(keyword)
            else:
                self.exact.setdefault(first, []).append(keyword)
        self.prefix_lengths = sorted({len(p) for p in self.prefix})

    def matches(self, toks: list[str]) -> list[tuple[int, int, _Keyword]]:
        """(start, end, keyword) for every keyword occurrence; a longer phrase wins at a start."""
        found = []
        for i, tok in enumerate(toks):
            candidates = list(self.exact.get(tok, ()))
            for length in self.prefix_lengths:
                if length > len(tok):
                    break
                candidates.extend(self.prefix.get(tok[:length], ()))
            for keyword in candidates:
                end = i + len(keyword.words)
                if end > len(toks):
                    continue
                if _phrase_at(toks, i, keyword):
                    found.append((i, end, keyword))
        return found


def _phrase_at(toks: list[str], i: int, keyword: _Keyword) -> bool:
    last = len(keyword.words) - 1
    for offset, word in enumerate(keyword.words):
        tok = toks[i + offset]
        if offset == last and keyword.prefix_last:
            if not tok.startswith(word):
                return False
        elif tok != word:
            return False
    return True


def _compile(keyword: str, theme: str, brand: bool = False) -> _Keyword:
    words = tuple(tokens(keyword.replace("*", "")))
    if not words:
        raise ValueError(f"keyword {keyword!r} has no words")
    return _Keyword(keyword, words, keyword.rstrip().endswith("*"), theme, brand)


def validate_extra(extra: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Problems with a brand's extra theme keywords, one message each (for config validation)."""
    problems = []
    for theme, keywords in (extra or {}).items():
        if theme not in KEYWORDS:
            problems.append(f"unknown theme {theme!r} (known: {', '.join(KEYWORDS)})")
            continue
        if isinstance(keywords, str) or not isinstance(keywords, Sequence):
            problems.append(f"{theme}: must be a list of keywords")
            continue
        for index, keyword in enumerate(keywords):
            if not isinstance(keyword, str) or not keyword.strip():
                problems.append(f"{theme}[{index}]: must be a non-empty string")
            elif len(keyword) > MAX_KEYWORD_CHARS:
                problems.append(f"{theme}[{index}]: longer than {MAX_KEYWORD_CHARS} characters")
            elif not tokens(keyword.replace("*", "")):
                problems.append(f"{theme}[{index}]: {keyword!r} has no words")
            elif "*" in keyword.rstrip()[:-1]:
                problems.append(f"{theme}[{index}]: '*' may only end a keyword")
    return problems


class RuleThemeClassifier:
    """Keyword and question rules with a fixed precedence; see the module docstring."""

    def __init__(self, extra: Mapping[str, Sequence[str]] | None = None) -> None:
        problems = validate_extra(extra)
        if problems:
            raise ValueError("; ".join(problems))
        keywords = [_compile(k, theme) for theme, words in KEYWORDS.items() for k in words]
        keywords += [_compile(k, theme, brand=True) for theme, words in (extra or {}).items() for k in words]
        self._themes = _Index(keywords)
        self._generic = _Index([_compile(k, "issue") for k in GENERIC_ISSUE])
        self._durations = _Index([_compile(k, "time_cost") for k in DURATIONS])
        self._resolved = _Index([_compile(k, "feedback") for k in RESOLVED])

    def classify(self, text: str, *, tone: str | None = None, language: str | None = None) -> Theme:
        toks = tokens(text)
        hits: dict[str, list[str]] = {}
        brand_hit: dict[str, bool] = {}
        trouble: list[str] = []
        for start, end, keyword in _longest(self._themes.matches(toks)):
            if keyword.theme == "issue" and _negated(toks, start):
                continue
            words = " ".join(toks[start:end])
            hits.setdefault(keyword.theme, []).append(words)
            brand_hit[keyword.theme] = brand_hit.get(keyword.theme, False) or keyword.brand
            if keyword.theme == "issue" or (keyword.source in TIME_GRIEVANCES and not _negated(toks, start)):
                trouble.append(words)
        ask = _ask(toks)
        if ask:
            hits.setdefault("solution_wanted", []).append(ask)
        generic = [" ".join(toks[s:e]) for s, e, _ in self._generic.matches(toks) if not _negated(toks, s)]
        durations = [(s, " ".join(toks[s:e])) for s, e, _ in self._durations.matches(toks)]
        waited = [w for w in (_waited(toks, s) for s, _ in durations) if w]
        found = tuple(dict.fromkeys(trouble + generic + waited))
        currency = _CURRENCY.search(text)
        if currency:
            hits.setdefault("time_cost", []).append(currency.group(0))
        question = _question(text, toks)

        def keyword_theme(name: str, rule: str) -> Theme:
            outranked = [t for t in PRECEDENCE if t != name and t in hits]
            if brand_hit.get(name):
                rule = f"brand keyword ({rule})"
            if outranked:
                rule += f"; outranks {', '.join(outranked)}"
            return Theme(name, tuple(dict.fromkeys(hits[name])), rule, found)

        if "solution_wanted" in hits:
            return keyword_theme("solution_wanted", "an explicit ask")
        resolved = [
            " ".join(toks[s:e]) for s, e, _ in _longest(self._resolved.matches(toks)) if not _pending(toks, s)
        ]
        if resolved and (tone == "positive" or (tone is None and "feedback" in hits)):
            praise = hits.get("feedback", [])
            return Theme("feedback", tuple(dict.fromkeys(resolved + praise)), "resolved, with praise", ())
        if tone == "positive" and "feedback" in hits and "time_cost" in hits:
            del hits["time_cost"]
            theme = keyword_theme("feedback", "praise in a positive post")
            return Theme(theme.name, theme.matched, theme.rule + "; money or time words read as praise", ())
        for name in ("issue", "time_cost"):
            if name in hits:
                return keyword_theme(name, "keyword")
        if generic and not (tone == "positive" and "feedback" in hits):
            return Theme("issue", tuple(dict.fromkeys(generic)), "generic problem word", found)
        if durations and tone != "positive" and "feedback" not in hits:
            words = tuple(dict.fromkeys(w for _, w in durations))
            return Theme("time_cost", words, "a duration in a post that is not praise", found)
        if "feedback" in hits:
            return keyword_theme("feedback", "keyword")
        if question:
            return Theme("question", (question[0],), question[1])
        if tone == "negative":
            service = [w for w in _SERVICE_WORDS if w in " ".join(toks)]
            return Theme("issue", tuple(service[:1]), "negative post with no theme word: a complaint")
        if tone == "positive":
            return Theme("feedback", (), "positive post with no theme word: praise")
        return Theme("other", (), "no theme word, not a question")


def _longest(matches: list[tuple[int, int, _Keyword]]) -> list[tuple[int, int, _Keyword]]:
    """At each start the longest keyword; a match overlapping a kept one of its theme is dropped."""
    kept: list[tuple[int, int, _Keyword]] = []
    end_by_theme: dict[str, int] = {}
    for match in sorted(matches, key=lambda m: (m[0], -(m[1] - m[0]))):
        theme = match[2].theme
        if match[0] < end_by_theme.get(theme, 0):
            continue
        kept.append(match)
        end_by_theme[theme] = match[1]
    return kept


def _window(toks: list[str], start: int, size: int) -> list[str]:
    before = []
    for tok in reversed(toks[max(0, start - size) : start]):
        if tok in _CLAUSE_END:
            break
        before.append(tok)
    return before


def _negated(toks: list[str], start: int) -> bool:
    return any(tok in _NEGATORS for tok in _window(toks, start, _NEGATION_WINDOW))


def _pending(toks: list[str], start: int) -> bool:
    return any(tok in _PENDING for tok in _window(toks, start, 2))


def _waited(toks: list[str], start: int) -> str | None:
    """The words that make the duration at `start` time waited, if any: "for 3 hours", "4 days later"."""
    if start + 1 < len(toks) and toks[start + 1] in _LATER:
        return " ".join(toks[max(0, start - 1) : start + 2])
    for back in (1, 2):
        if start >= back and toks[start - back] in _WAITED:
            return " ".join(toks[start - back : start + 1])
    return None


def _ask(toks: list[str]) -> str | None:
    """'please' (pls, bitte) before a word: "please add", "pls just let me"; not "more of this please"."""
    for i, tok in enumerate(toks[:-1]):
        if tok in _ASK_WORDS and toks[i + 1] not in _CLAUSE_END:
            return f"{tok} {toks[i + 1]}"
    return None


def _question(text: str, toks: list[str]) -> tuple[str, str] | None:
    if "?" in text or "¿" in text:
        return "?", "question mark"
    sentence_start = True
    for i, tok in enumerate(toks):
        if tok in _CLAUSE_END:
            sentence_start = tok in ".!?¿¡"
            continue
        if sentence_start:
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            if (
                tok in _ALWAYS_ASKS
                or (tok in _WH and nxt in _WH_NEXT)
                or (tok == "por" and nxt == "qué")
                or (tok in _AUX_FIRST and nxt and nxt not in _CLAUSE_END and nxt not in _NOT_AUX_NEXT)
            ):
                return tok, "question opener"
        sentence_start = False
    return None


@lru_cache(maxsize=64)
def _classifier(extra: tuple[tuple[str, tuple[str, ...]], ...]) -> RuleThemeClassifier:
    return RuleThemeClassifier(dict(extra))


def rule_classifier(extra: Mapping[str, Sequence[str]] | None = None) -> RuleThemeClassifier:
    """The rule-based classifier for a brand's extra keywords (built once per set of keywords)."""
    key = tuple(sorted((theme, tuple(words)) for theme, words in (extra or {}).items()))
    return _classifier(key)


def classify_theme(
    text: str,
    extra: Mapping[str, Sequence[str]] | None = None,
    *,
    tone: str | None = None,
    language: str | None = None,
) -> Theme:
    """The theme of a post under the rules above, with a brand's extra keywords if given."""
    return rule_classifier(extra).classify(text, tone=tone, language=language)
