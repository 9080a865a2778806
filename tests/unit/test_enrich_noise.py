"""Noise: bots, giveaways, link spam, repeats and tag spam, each with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from emberwatch.enrich.noise import RecentTexts, bot_reason, fingerprint, noise_reasons

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "enrich_eval.jsonl"


def codes(reasons: list[str]) -> list[str]:
    return [reason.split(":", 1)[0] for reason in reasons]


# ---------------------------------------------------------------- bots


@pytest.mark.parametrize(
    "handle",
    [
        "dealsbot",
        "acme_bot",
        "Bot_Acme",
        "newsbot42",
        "AutoModerator",
        "rssfeed_acme",
        "alerts@botsin.space",
        "statusbot.bsky.social",
    ],
)
def test_bot_like_authors(handle):
    assert codes(noise_reasons("Acme X2 now 20% off", author=handle)) == ["bot"]


@pytest.mark.parametrize(
    "handle", ["talbot", "abbot", "robotics_fan", "bottlecap", "jane", "jane@mastodon.social"]
)
def test_people_whose_names_contain_bot_are_not_bots(handle):
    assert bot_reason(handle) is None


def test_a_display_name_or_the_source_can_say_bot():
    assert bot_reason("acme_status", "Acme Status (bot)") == "bot: display name 'Acme Status (bot)' says bot"
    assert noise_reasons("Acme status: all systems normal", author="acme_status", is_bot=True) == [
        "bot: the source flags the account as automated"
    ]


# ---------------------------------------------------------------- giveaways


@pytest.mark.parametrize(
    "text",
    [
        "GIVEAWAY! Retweet to win a free Acme X2",
        "Follow & RT to win an Acme X2 🎁",
        "like and retweet to win!",
        "Win a free Acme blender, link in bio",
        "Tag 3 friends and follow to enter",
        "#Gewinnspiel: Acme verlost 3 Router",
        "Sorteo de un Acme X2 entre nuestros seguidores",
        "Jeu concours : gagnez une Acme X2",
    ],
)
def test_giveaways_and_contests(text):
    assert codes(noise_reasons(text)) == ["giveaway"]


@pytest.mark.parametrize(
    "text",
    [
        "I want to win back my data from Acme",
        "Acme won an award for its support",
        "Giving away my old Acme X1? no",
    ],
)
def test_ordinary_posts_about_winning_are_not_giveaways(text):
    assert noise_reasons(text) == []


# ---------------------------------------------------------------- links


def test_more_links_than_words():
    assert noise_reasons("https://a.example/x https://b.example/y deal") == [
        "link_spam: 2 link(s), 1 word(s)"
    ]


def test_many_links():
    text = "deals " + " ".join(f"https://shop.example/{i}" for i in range(4)) + " on everything acme today"
    assert noise_reasons(text) == ["link_spam: 4 links"]


@pytest.mark.parametrize(
    "text", ["Acme sale bit.ly/abc", "Big acme sale today https://bit.ly/abc tinyurl.com/x"]
)
def test_nothing_but_shortened_links(text):
    assert codes(noise_reasons(text)) == ["link_spam"]


@pytest.mark.parametrize(
    "text",
    [
        # X wraps every link in t.co: that says nothing about the poster
        "Acme app down again https://t.co/abc",
        "My Acme router drops wifi every evening, my notes are at bit.ly/abc for anyone curious",
        "Acme status page says all good https://status.acme.example but it is not",
    ],
)
def test_a_post_with_a_link_is_not_link_spam(text):
    assert noise_reasons(text) == []


# ---------------------------------------------------------------- tags


def test_hashtag_and_cashtag_spam():
    assert "tag_spam: 6 hashtags" in noise_reasons("#acme #deal #sale #promo #discount #router")
    assert noise_reasons("$ACME $BTC $ETH to the moon 🚀") == ["tag_spam: 3 cashtags"]
    assert noise_reasons("Acme earnings beat, $ACME up 3% #earnings") == []


# ---------------------------------------------------------------- repeats


def test_the_same_text_by_the_same_author_is_a_repeat():
    recent = RecentTexts()
    first = noise_reasons("Acme app down again, can't log in", author="jane", mention_id="x:1", recent=recent)
    # case, punctuation, emoji, links and numbers do not make a post new
    again = noise_reasons(
        "ACME app DOWN again!!! can't log in 😡 https://t.co/x",
        author="Jane",
        mention_id="x:2",
        recent=recent,
    )
    assert first == []
    assert again == ["repeated: same text as x:1 by the same author"]


def test_a_different_author_or_the_same_post_again_is_not_a_repeat():
    recent = RecentTexts()
    noise_reasons("Acme app down again, can't log in", author="jane", mention_id="x:1", recent=recent)
    assert (
        noise_reasons("Acme app down again, can't log in", author="bob", mention_id="x:3", recent=recent)
        == []
    )
    # a retried page enriches the same mention twice: not a repeat of itself
    assert (
        noise_reasons("Acme app down again, can't log in", author="jane", mention_id="x:1", recent=recent)
        == []
    )


def test_short_replies_are_not_repeats():
    recent = RecentTexts()
    noise_reasons("thanks!", author="jane", mention_id="1", recent=recent)
    assert noise_reasons("Thanks!", author="jane", mention_id="2", recent=recent) == []


def test_recent_texts_forget_the_oldest_beyond_their_size():
    recent = RecentTexts(maxsize=2)
    for i, text in enumerate(["first post about acme", "second post about acme", "third post about acme"]):
        recent.first("jane", fingerprint(text), str(i))
    assert len(recent) == 2
    assert recent.first("jane", fingerprint("first post about acme"), "9") is None  # forgotten
    assert recent.first("jane", fingerprint("third post about acme"), "9") == "2"


def test_fingerprints_ignore_what_bots_vary():
    assert fingerprint("Deal #1234: Acme X2 for $99 https://a.example/1") == fingerprint(
        "deal #5678 - acme x2 for $79!! https://a.example/2"
    )
    assert fingerprint("Acme app down") != fingerprint("Acme app up")


# ---------------------------------------------------------------- care posts are not noise


def test_no_care_post_in_the_corpus_is_noise():
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    recent = RecentTexts()
    flagged = {
        row["text"]: reasons
        for i, row in enumerate(rows)
        if (reasons := noise_reasons(row["text"], author=f"user{i}", mention_id=str(i), recent=recent))
    }
    assert flagged == {}
