"""Tone of care posts: VADER plus the care rules, Comprehend behind the same interface, cold start."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from emberwatch.enrich import sentiment
from emberwatch.enrich.sentiment import (
    NEGATIVE_AT,
    POSITIVE_AT,
    ComprehendTone,
    Tone,
    label_for,
    sarcasm_cues,
    score,
    tone_analyzer,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "enrich_eval.jsonl"

# ---------------------------------------------------------------- cold start


def test_importing_enrichment_does_not_load_vader_the_first_score_does():
    # Given a fresh interpreter (the scanner's cold start)
    code = (
        "import sys, emberwatch.enrich, emberwatch.enrich.sentiment as s\n"
        "print('vaderSentiment' in sys.modules, s.default_analyzer().loaded)\n"
        "s.score('the app is down again')\n"
        "print('vaderSentiment' in sys.modules, s.default_analyzer().loaded)\n"
    )
    # When the package is imported, then a post is scored
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then the lexicon was loaded by the score, not by the import
    assert out.split("\n")[:2] == ["False False", "True True"]


# ---------------------------------------------------------------- labels and thresholds


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (-1.0, "negative"),
        (NEGATIVE_AT, "negative"),
        (-0.049, "neutral"),
        (0.0, "neutral"),
        (POSITIVE_AT - 0.001, "neutral"),
        (POSITIVE_AT, "positive"),
        (1.0, "positive"),
    ],
)
def test_label_thresholds(value, label):
    assert label_for(value) == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("@AcmeSupport the app has been down for 2 hours and I can't log in", "negative"),
        ("Acme checkout keeps crashing on iOS, lost my cart twice", "negative"),
        ("Acme support agent was rude and hung up on me", "negative"),
        ("The Acme app isn't working", "negative"),
        ("Still waiting for my refund, three weeks now", "negative"),
        ("Shoutout to the Acme team, fixed my billing mix-up in 5 minutes. Brilliant!", "positive"),
        ("Loving the new Acme app update, so much faster", "positive"),
        ("Does Acme ship to Canada?", "neutral"),
        ("Acme Corp announces Q3 earnings call for October 24", "neutral"),
    ],
)
def test_care_posts_read_as_a_care_agent_reads_them(text, label):
    assert score(text).label == label


@pytest.mark.parametrize(
    "text",
    [
        "@acme please add a dark mode",
        "Need help resetting my Acme password",
        "Would love an option to export reports to CSV",
        "Can someone from Acme DM me? Thanks in advance",
    ],
)
def test_requests_are_neutral_not_positive(text):
    # "please", "help", "would love" and "thanks in advance" ask; they do not praise
    assert score(text).label == "neutral"


# ---------------------------------------------------------------- negation, intensifiers, emphasis


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Acme is not bad", 1),
        ("I don't love the new Acme app", -1),
        ("Had mine for 5 years, zero problems", 1),
        ("Das ist nicht gut", -1),
        ("Keine Probleme, alles super", 1),
        ("Pas mal du tout, la nouvelle appli", 1),
        ("Sin problemas, todo perfecto", 1),
        ("No funciona nada bien", -1),
    ],
)
def test_negation_turns_the_tone_in_english_german_french_and_spanish(text, sign):
    # a negated problem word reads positive, a negated praise word negative
    assert score(text).score * sign > 0


def test_a_negator_does_not_reach_past_a_comma():
    # "jamais" negates "répond", not "nul" in the next clause
    tone = score("Le service client ne répond jamais, c'est nul.")
    assert tone.label == "negative"


def test_intensifiers_caps_and_exclamation_marks_strengthen_the_tone():
    plain = score("Acme is bad").score
    boosted = score("Acme is really bad").score
    shouted = score("Acme is REALLY BAD!!!").score
    assert shouted < boosted < plain < 0
    # "super" before a tone word is an intensifier, not praise
    assert score("super frustrating").score < score("frustrating").score < 0


# ---------------------------------------------------------------- emoji


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Acme app down again 😡😡", "negative"),
        ("Acme 🤬", "negative"),
        ("Acme support 👎", "negative"),
        ("Got my Acme order 👍", "positive"),
        ("Acme 😍", "positive"),
        ("Acme delivered early 🙌🎉", "positive"),
    ],
)
def test_emoji_carry_tone(text, label):
    assert score(text).label == label


def test_an_emoji_read_as_a_word_is_negated_like_the_word():
    assert score("not 👍").label == "negative"
    assert any("👍" in reason for reason in score("not 👍").reasons)


# ---------------------------------------------------------------- sarcasm


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("Great, another outage. Third one this week @acme", "great, <trouble>"),
        ("Your update deleted my lists. Thanks for nothing, Acme.", "thanks for nothing"),
        ("Love waiting 3 days for a reply from Acme support", "love waiting"),
        ("Acme billing is just perfect /s", "/s"),
        ("Yeah right, 'next day delivery' Acme", "yeah right"),
        ("Acme customer service 🙄", "eye-roll"),
        ("Oh wonderful, the Acme app logged me out again", "oh wonderful ... again"),
        ("Best service ever... not", "... not"),
        ("So glad I pay for this", "so glad I pay"),
        ("Just what I needed, another crash", "just what I needed"),
        ("What a surprise, Acme is down again", "what a surprise"),
    ],
)
def test_sarcasm_cues_make_a_positive_sounding_post_negative(text, cue):
    # Given a post VADER alone reads as positive or neutral
    tone = score(text)
    # Then the cue is named and the label is negative
    assert cue in sarcasm_cues(text)
    assert tone.label == "negative"
    assert any(reason.startswith("sarcasm") for reason in tone.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "Great, thanks for the quick fix!",
        "Oh great, it's working again!",
        "Amazing! Got my order 2 days early",
        "Love how easy the new Acme app is",
        "Thanks a lot for sorting out my bill so fast",
        "Wow, the outage is over already, thank you Acme",
    ],
)
def test_sincere_praise_is_not_taken_for_sarcasm(text):
    assert sarcasm_cues(text) == []
    assert score(text).label == "positive"


def test_sarcasm_leaves_an_already_negative_score_alone():
    text = "Acme app down again, absolutely useless 🙄"
    tone = score(text)
    assert tone.label == "negative"
    assert "sarcasm: eye-roll" in tone.reasons
    assert not any("turns the score" in r for r in tone.reasons)


# ---------------------------------------------------------------- explanation and invariants


def test_reasons_say_what_moved_the_score():
    tone = score("The Acme app isn't working 😡")
    assert tone.reasons[0].startswith("vader ")
    assert "phrase 'not working' (-2.0)" in tone.reasons
    assert "emoji 😡 read as 'angry'" in tone.reasons


def test_every_care_phrase_starts_at_a_word_boundary():
    # the phrases are matched as one alternation behind a single \b (see sentiment._rules)
    assert all(pattern.startswith(r"\b") for pattern, _, _ in sentiment._PHRASES)


def test_a_long_post_is_scored_on_its_first_characters():
    long_text = "Acme is terrible. " + "filler words here. " * 2000
    assert score(long_text).label == "negative"


# ---------------------------------------------------------------- Comprehend


@pytest.fixture
def comprehend(aws):
    return aws.client("comprehend")


def test_comprehend_single_post_through_moto(comprehend):
    # moto implements DetectSentiment with one canned NEUTRAL answer: this proves the request
    # shape and the mapping of that answer, not Comprehend's judgement
    tone = ComprehendTone(comprehend).score("I love the new Acme app", "en")
    assert tone.label == "neutral"
    assert tone.reasons[0].startswith("comprehend NEUTRAL")
    assert -0.01 < tone.score < 0.01


def _result(index: int, sentiment: str, positive: float, negative: float) -> dict:
    rest = max(0.0, 1 - positive - negative)
    return {
        "Index": index,
        "Sentiment": sentiment,
        "SentimentScore": {"Positive": positive, "Negative": negative, "Neutral": rest, "Mixed": 0.0},
    }


def test_comprehend_batches_25_posts_a_call_and_maps_every_sentiment():
    # moto does not implement BatchDetectSentiment; botocore's Stubber checks each request
    # against the real API model instead of a hand-written fake
    client = boto3.client("comprehend", region_name="us-east-1")
    texts = [f"post {i}" for i in range(27)]
    first = [_result(i, "NEUTRAL", 0.1, 0.1) for i in range(25)]
    first[0] = _result(0, "POSITIVE", 0.9, 0.05)
    first[1] = _result(1, "NEGATIVE", 0.02, 0.95)
    first[2] = _result(2, "MIXED", 0.3, 0.6)
    first[3] = _result(3, "MIXED", 0.6, 0.3)
    with Stubber(client) as stub:
        stub.add_response(
            "batch_detect_sentiment",
            {"ResultList": first, "ErrorList": []},
            {"TextList": texts[:25], "LanguageCode": "en"},
        )
        stub.add_response(
            "batch_detect_sentiment",
            {
                "ResultList": [_result(0, "POSITIVE", 0.8, 0.1)],
                "ErrorList": [{"Index": 1, "ErrorCode": "INTERNAL_SERVER_ERROR", "ErrorMessage": "x"}],
            },
            {"TextList": texts[25:], "LanguageCode": "en"},
        )
        tones = ComprehendTone(client).score_many(texts)
        stub.assert_no_pending_responses()
    assert [t.label for t in tones[:5]] == ["positive", "negative", "negative", "neutral", "neutral"]
    assert tones[0].score == pytest.approx(0.85)
    assert tones[25].label == "positive"
    # the one document Comprehend failed on is scored by VADER, and says so
    assert tones[26].reasons[0] == "comprehend error INTERNAL_SERVER_ERROR; vader used"


def test_comprehend_groups_posts_by_language_and_leaves_unsupported_languages_to_vader():
    client = boto3.client("comprehend", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "batch_detect_sentiment",
            {"ResultList": [_result(0, "NEGATIVE", 0.0, 0.9)], "ErrorList": []},
            {"TextList": ["Die App funktioniert nicht"], "LanguageCode": "de"},
        )
        tones = ComprehendTone(client).score_many(
            ["Die App funktioniert nicht", "De app werkt niet, slecht"], ["de", "nl"]
        )
        stub.assert_no_pending_responses()
    assert tones[0].reasons[0].startswith("comprehend NEGATIVE")
    assert tones[1].reasons[0] == "comprehend does not read 'nl'; vader used"


def test_a_failed_comprehend_call_falls_back_to_vader():
    client = boto3.client("comprehend", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("detect_sentiment", service_error_code="ThrottlingException")
        tone = ComprehendTone(client).score("Acme app down again 😡", "en")
    assert tone.label == "negative"
    assert tone.reasons[0] == "comprehend failed (ClientError); vader used"


def test_comprehend_gets_at_most_5000_bytes():
    client = boto3.client("comprehend", region_name="us-east-1")
    text = "é" * 4000  # 8,000 bytes
    clipped = "é" * 2500
    with Stubber(client) as stub:
        stub.add_response(
            "detect_sentiment",
            {"Sentiment": "NEUTRAL", "SentimentScore": {"Positive": 0.0, "Negative": 0.0, "Neutral": 1.0}},
            {"Text": clipped, "LanguageCode": "fr"},
        )
        ComprehendTone(client).score(text, "fr")
        stub.assert_no_pending_responses()


def test_the_brand_setting_picks_the_analyzer():
    assert tone_analyzer("vader") is sentiment.default_analyzer()
    client = boto3.client("comprehend", region_name="us-east-1")
    assert isinstance(tone_analyzer("comprehend", comprehend_client=client), ComprehendTone)
    with pytest.raises(ValueError, match="needs a Comprehend client"):
        tone_analyzer("comprehend")
    with pytest.raises(ValueError, match="unknown tone analyzer 'bert'"):
        tone_analyzer("bert")


def test_tone_is_a_value():
    assert Tone("neutral", 0.0) == Tone("neutral", 0.0, ())


# ---------------------------------------------------------------- the labelled corpus


def _confusion(pairs: list[tuple[str, str]]) -> str:
    counts = Counter(pairs)
    labels = sorted({label for pair in pairs for label in pair})
    width = max(len(label) for label in labels) + 2
    lines = ["expected \\ got".ljust(width + 6) + "".join(label.rjust(width) for label in labels)]
    for expected in labels:
        row = "".join(str(counts[(expected, got)]).rjust(width) for got in labels)
        lines.append(expected.ljust(width + 6) + row)
    return "\n".join(lines)


def test_corpus_sentiment_accuracy_is_at_least_85_percent():
    # the rows the analyzer was first written against; test_enrich_eval holds the whole set's figures
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row["split"] == "tuned"]
    assert len(rows) >= 60
    pairs = [(row["sentiment"], score(row["text"], row["language"]).label) for row in rows]
    accuracy = sum(expected == got for expected, got in pairs) / len(pairs)
    misses = "\n".join(
        f"  {expected:8} -> {got:8} {row['text']}"
        for row, (expected, got) in zip(rows, pairs, strict=True)
        if expected != got
    )
    assert accuracy >= 0.85, f"sentiment accuracy {accuracy:.2f}\n{_confusion(pairs)}\nmisses:\n{misses}"
