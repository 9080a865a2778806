"""Bad input to enrichment: every post gets a label and a reason, nothing raises, and the work is capped."""

from __future__ import annotations

import json

import pytest
from emberwatch.enrich import MAX_ANALYSED_CHARS, analysed_text, enrich
from emberwatch.enrich.sentiment import LABELS, MAX_CHARS, default_analyzer
from emberwatch.enrich.themes import THEMES

HUNDRED_KB = ("the acme app is down again and support is not answering " * 1800)[:100_000]

BAD = {
    "empty": "",
    "whitespace": " \n\t  ",
    "only controls": "\x00\x01\x1f\x7f",
    "emoji only": "😡😡😡",
    "one emoji": "🙂",
    "mixed scripts": "Acme приложение не работает 😡 アプリが落ちる app down",
    "a script with no lexicon": "Заказ не пришёл, поддержка молчит",
    "control characters": "acme\x00app\x07is\x1bdown\x7f again\u200b\u202e!!",
    "lone surrogates": "acme \ud83d broken \udc00 again",
    "100 KB of text": HUNDRED_KB,
    "100 KB, one word": "a" * 100_000,
    "100 KB of emoji": "😡" * 50_000,
}


@pytest.mark.parametrize("text", list(BAD.values()), ids=list(BAD))
def test_bad_input_gets_a_label_and_a_reason_and_never_raises(text):
    result = enrich(text)
    assert result.sentiment in LABELS
    assert result.theme in THEMES
    assert result.sentiment_reasons, "every tone says why"
    assert result.theme_rule
    # what is stored and printed must encode: no lone surrogate or control character survives
    encoded = json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded


@pytest.mark.parametrize("text", ["", " \n\t  ", "\x00\x01\x1f\x7f", "\u200b\u200b"])
def test_a_post_with_nothing_to_read_is_neutral_other_with_the_reason(text):
    result = enrich(text)
    assert (result.sentiment, result.theme) == ("neutral", "other")
    assert result.sentiment_reasons == ("no text",)
    assert result.theme_rule == "no text"


def test_control_characters_and_invisible_marks_read_as_spaces():
    assert analysed_text("acme\x00app\x07is\x1bdown\x7f\u200b\u202e!") == "acme app is down   !"
    result = enrich("acme\x00app\x07is\x1bdown\x7f again")
    assert (result.sentiment, result.theme) == ("negative", "issue")
    assert "is down" in result.theme_matched


def test_lone_surrogates_are_dropped_before_analysis():
    cleaned = analysed_text("acme \ud83d broken \udc00 again")
    cleaned.encode("utf-8")  # would raise on a lone surrogate
    result = enrich("acme \ud83d broken \udc00 again")
    assert (result.sentiment, result.theme) == ("negative", "issue")


def test_a_100_kb_post_is_read_only_up_to_the_cap():
    # Given a 100 KB post whose words repeat
    assert len(analysed_text(HUNDRED_KB)) == MAX_ANALYSED_CHARS < len(HUNDRED_KB)
    # Then it is enriched exactly as its first MAX_ANALYSED_CHARS characters are
    whole, capped = enrich(HUNDRED_KB), enrich(HUNDRED_KB[:MAX_ANALYSED_CHARS])
    assert (whole.sentiment, whole.sentiment_score, whole.theme, whole.theme_matched) == (
        capped.sentiment,
        capped.sentiment_score,
        capped.theme,
        capped.theme_matched,
    )
    # and tone reads fewer still: what follows its MAX_CHARS does not change the score
    tail = "wonderful brilliant perfect love it " * 200
    assert default_analyzer().score(HUNDRED_KB[:MAX_CHARS] + tail) == default_analyzer().score(
        HUNDRED_KB[:MAX_CHARS]
    )


def test_emoji_only_posts_are_read_through_the_emoji():
    assert enrich("😡😡😡").sentiment == "negative"
    assert enrich("🙂").sentiment == "positive"
    flames = enrich("🔥🔥🔥")  # hype as often as disaster: neutral, and it says how it read them
    assert flames.sentiment == "neutral"
    assert any("🔥" in reason for reason in flames.sentiment_reasons)


def test_mixed_scripts_keep_the_words_that_can_be_read():
    result = enrich("Acme приложение не работает 😡 アプリが落ちる app down")
    assert result.sentiment == "negative"
    assert result.theme == "issue"


def test_a_language_without_tone_words_says_neutral_means_unread():
    result = enrich("Заказ не пришёл, поддержка молчит")
    assert result.language == "ru"
    assert result.sentiment == "neutral"
    assert any("no tone words known for language 'ru'" in reason for reason in result.sentiment_reasons)
