"""Enrichment: tone, theme, language, noise and story of a post, each with its reasons.

Pure functions over a post's values; the scanner and `emberwatch classify` run the same code.
Only VADER's lexicon costs anything to load, and it loads on the first tone, not on import.

    enrich(text, title=..., url=..., author=..., language=..., raw=..., source=...) -> Enrichment
    enrich_mention(mention) -> Enrichment            # the same, from a Mention
    enrich_mentions(mentions, analyzer=...) -> [...]  # one batch call for Comprehend

Raw fields a connector may set and enrichment honours: `raw["urls"]` (expanded links of the post),
`raw["repost_of"]` / `raw["reblog_of"]` / `raw["quote_of"]` (the original's mention id),
`raw["original_text"]` (the reposted original's text), `raw["bot"]` (the source flags the
account as automated); X's `raw["referenced"]` is read as it is.

What is read is cleaned first (`analysed_text`): control characters and lone surrogates become
spaces, and only the first MAX_ANALYSED_CHARS (5,000) count: a 100 KB post costs what a 5 KB one does.
Empty text gets `neutral` / `other` with the reason "no text".

Tone and theme settle each other once (`settle_tone`): a neutral post that reports a fault or a
delay is negative ("checkout is not working on Firefox"); a question or an ask whose only tone is
politeness ("which plan includes family sharing?", "please add X, thanks") is neutral.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .language import detect_language
from .noise import RecentTexts, noise_reasons
from .sentiment import Tone, ToneAnalyzer, default_analyzer
from .stories import find_story, repost_parent
from .themes import Theme, ThemeClassifier, rule_classifier

__all__ = [
    "Enrichment",
    "RecentTexts",
    "analysed_text",
    "enrich",
    "enrich_mention",
    "enrich_mentions",
    "scored_text",
    "settle_tone",
]

MAX_ANALYSED_CHARS = 5_000  # tone reads the first 3,000 of these; themes, language and noise all of them
TROUBLE_SCORE = -0.25  # where a neutral fault report lands: negative, but milder than any tone word
POLITE_UP_TO = 0.6  # a question's or an ask's positive lean up to this is politeness, not praise
PLAIN_QUESTION_DOWN_TO = -0.5  # a question's negative lean down to this is its topic, not a complaint
# C0 and C1 controls except tab and newline, zero-width and direction marks, lone surrogates
_UNREADABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Enrichment:
    sentiment: str
    sentiment_score: float
    language: str | None
    theme: str
    theme_rule: str
    theme_matched: tuple[str, ...]
    noise: tuple[str, ...]
    story: str
    sentiment_reasons: tuple[str, ...] = ()
    story_basis: str = ""

    def mention_fields(self) -> dict[str, Any]:
        """The values for `Mention.with_enrichment(**...)`."""
        return {
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "language": self.language,
            "theme": self.theme,
            "story": self.story,
            "noise": self.noise,
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: what `emberwatch classify` prints."""
        return {
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "theme": self.theme,
            "language": self.language,
            "theme_rule": self.theme_rule,
            "theme_matched": list(self.theme_matched),
            "sentiment_reasons": list(self.sentiment_reasons),
            "noise": list(self.noise),
            "story": self.story,
            "story_basis": self.story_basis,
        }


def scored_text(text: str, title: str | None = None) -> str:
    """What tone, theme and language read: the title too, unless the text already starts with it."""
    if title and title.strip() and title.strip() not in text:
        return analysed_text(f"{title.strip()}\n\n{text}")
    return analysed_text(text)


def analysed_text(text: str) -> str:
    """The first MAX_ANALYSED_CHARS of a post, control characters and lone surrogates as spaces."""
    return _UNREADABLE.sub(" ", text[:MAX_ANALYSED_CHARS])


def settle_tone(tone: Tone, theme: Theme) -> Tone:
    """The tone once the theme is known: fault reports are negative, polite questions and asks neutral."""
    if tone.label == "neutral" and theme.trouble:
        words = ", ".join(theme.trouble[:3])
        return Tone("negative", min(tone.score, TROUBLE_SCORE), (*tone.reasons, f"reports trouble ({words})"))
    if (
        tone.label == "positive"
        and theme.name in ("question", "solution_wanted")
        and tone.score < POLITE_UP_TO
    ):
        why = f"a {theme.name.replace('_', ' ')} with mild positive words ({tone.score:+.2f}) is neutral"
        return Tone("neutral", tone.score, (*tone.reasons, why))
    if tone.label == "negative" and theme.name == "question" and tone.score > PLAIN_QUESTION_DOWN_TO:
        why = f"a plain question with mild negative words ({tone.score:+.2f}) is neutral"
        return Tone("neutral", tone.score, (*tone.reasons, why))
    return tone


def _main_link(source: str | None, url: str | None, raw: Mapping[str, Any]) -> str | None:
    """The link a post is, not just carries: a feed entry's article, a Hacker News story's URL."""
    if source == "feed":
        return url
    if source == "hackernews" and raw.get("kind") == "story" and isinstance(raw.get("link"), str):
        return str(raw["link"])
    return None


def enrich(
    text: str,
    *,
    title: str | None = None,
    url: str | None = None,
    author: str | None = None,
    author_name: str | None = None,
    language: str | None = None,
    raw: Mapping[str, Any] | None = None,
    source: str | None = None,
    mention_id: str | None = None,
    brand_themes: Mapping[str, Sequence[str]] | None = None,
    recent: RecentTexts | None = None,
    analyzer: ToneAnalyzer | None = None,
    tone: Tone | None = None,
    themes: ThemeClassifier | None = None,
) -> Enrichment:
    """Tone, theme, language, noise and story of one post.

    `language` is the source's own (trusted when given); `brand_themes` the brand's extra theme
    keywords; `recent` the container's RecentTexts for repeats; `analyzer` the brand's tone backend
    (VADER by default) or `tone` an already computed one; `themes` replaces the rule classifier.
    """
    raw = raw or {}
    body = scored_text(text, title)
    text = analysed_text(text)
    lang = detect_language(body, language)
    if not body.strip():
        tone, theme = Tone("neutral", 0.0, ("no text",)), Theme("other", (), "no text")
    else:
        if tone is None:
            tone = (analyzer or default_analyzer()).score(body, lang)
        theme = (themes or rule_classifier(brand_themes)).classify(body, tone=tone.label, language=lang)
        tone = settle_tone(tone, theme)
    noise = noise_reasons(
        body,
        author=author,
        author_name=author_name,
        mention_id=mention_id,
        recent=recent,
        is_bot=raw.get("bot") is True,
    )
    urls = raw.get("urls")
    original = raw.get("original_text")
    story = find_story(
        text,
        link=_main_link(source, url, raw),
        links=[u for u in urls if isinstance(u, str)] if isinstance(urls, list) else (),
        repost_of=repost_parent(source, raw),
        original_text=original if isinstance(original, str) and original.strip() else None,
        mention_id=mention_id,
    )
    return Enrichment(
        sentiment=tone.label,
        sentiment_score=tone.score,
        language=lang,
        theme=theme.name,
        theme_rule=theme.rule,
        theme_matched=theme.matched,
        noise=tuple(noise),
        story=story.key,
        sentiment_reasons=tone.reasons,
        story_basis=story.basis,
    )


def _fields(mention: Any) -> dict[str, Any]:
    author = getattr(mention, "author", None)
    return {
        "title": getattr(mention, "title", None),
        "url": getattr(mention, "url", None),
        "author": getattr(author, "handle", None),
        "author_name": getattr(author, "display_name", None),
        "language": getattr(mention, "language", None),
        "raw": getattr(mention, "raw", None),
        "source": getattr(mention, "source", None),
        "mention_id": getattr(mention, "id", None),
    }


def enrich_mention(
    mention: Any,
    *,
    brand_themes: Mapping[str, Sequence[str]] | None = None,
    recent: RecentTexts | None = None,
    analyzer: ToneAnalyzer | None = None,
    tone: Tone | None = None,
) -> Enrichment:
    """`enrich` over a Mention (anything with its attributes)."""
    return enrich(
        mention.text,
        brand_themes=brand_themes,
        recent=recent,
        analyzer=analyzer,
        tone=tone,
        **_fields(mention),
    )


def enrich_mentions(
    mentions: Sequence[Any],
    *,
    brand_themes: Mapping[str, Sequence[str]] | None = None,
    recent: RecentTexts | None = None,
    analyzer: ToneAnalyzer | None = None,
) -> list[Enrichment]:
    """`enrich_mention` over a page, scoring tone in one `score_many` (Comprehend: 25 per call)."""
    analyzer = analyzer or default_analyzer()
    bodies = [scored_text(m.text, getattr(m, "title", None)) for m in mentions]
    languages = [
        detect_language(body, getattr(m, "language", None)) for body, m in zip(bodies, mentions, strict=True)
    ]
    tones = analyzer.score_many(bodies, languages)
    return [
        enrich_mention(m, brand_themes=brand_themes, recent=recent, tone=t)
        for m, t in zip(mentions, tones, strict=True)
    ]
