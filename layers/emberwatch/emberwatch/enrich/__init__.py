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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .language import detect_language
from .noise import RecentTexts, noise_reasons
from .sentiment import Tone, ToneAnalyzer, default_analyzer
from .stories import find_story, repost_parent
from .themes import ThemeClassifier, rule_classifier

__all__ = ["Enrichment", "RecentTexts", "enrich", "enrich_mention", "enrich_mentions", "scored_text"]


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
        return f"{title.strip()}\n\n{text}"
    return text


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
    lang = detect_language(body, language)
    if tone is None:
        tone = (analyzer or default_analyzer()).score(body, lang)
    theme = (themes or rule_classifier(brand_themes)).classify(body, tone=tone.label, language=lang)
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
