"""Language of a post: the source's own when given, else script, else stopwords; None when unsure."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from emberwatch.enrich.language import FUNCTION_WORDS, detect_language, language_scores, normalise_declared

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "enrich_eval.jsonl"


# ---------------------------------------------------------------- the source's own language


@pytest.mark.parametrize(
    ("declared", "code"),
    [
        ("en", "en"),
        ("pt-BR", "pt"),
        ("zh_Hant", "zh"),
        ("DE", "de"),
        ("fil", "fil"),
        ("und", None),
        ("zxx", None),
        ("qme", None),
        ("", None),
        (None, None),
        ("not a tag", None),
    ],
)
def test_declared_tags_are_normalised(declared, code):
    assert normalise_declared(declared) == code


def test_the_sources_language_is_trusted_over_detection():
    assert detect_language("Die App ist schon wieder kaputt und der Support antwortet nicht", "en") == "en"


@pytest.mark.parametrize("declared", ["und", "zxx", None])
def test_detection_runs_when_the_source_declares_no_language(declared):
    assert (
        detect_language("Die App ist schon wieder kaputt und der Support antwortet nicht", declared) == "de"
    )


# ---------------------------------------------------------------- scripts


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("الخدمة سيئة جدا والتطبيق لا يعمل", "ar"),
        ("اینترنت قطع شده و پشتیبانی جواب نمی‌دهد", "fa"),
        ("ایپ کام نہیں کر رہی ہے", "ur"),
        ("השירות של אקמי גרוע מאוד", "he"),
        ("Приложение Acme опять не работает", "ru"),
        ("Додаток Acme знову не працює, жах", "uk"),
        ("Η εφαρμογή της Acme δεν λειτουργεί", "el"),
        ("Acmeのアプリがまた落ちた", "ja"),
        ("Acme的应用又崩溃了", "zh"),
        ("애크미 앱이 또 다운됐어요", "ko"),
        ("แอป Acme ล่มอีกแล้ว", "th"),
        ("Acme ऐप फिर से बंद हो गया है", "hi"),
    ],
)
def test_non_latin_scripts_decide_even_beside_a_latin_brand_name(text, code):
    assert detect_language(text) == code


def test_a_single_foreign_word_does_not_decide():
    assert detect_language("Acme support was great, спасибо") != "ru"


# ---------------------------------------------------------------- stopwords


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The app is down again and nobody at support answers", "en"),
        ("Die App ist schon wieder kaputt und der Support antwortet nicht", "de"),
        ("La aplicación no funciona y nadie del soporte responde", "es"),
        ("L'application ne marche pas et le support ne répond pas", "fr"),
        ("O aplicativo não funciona e o suporte não responde", "pt"),
        ("L'app non funziona e il supporto non risponde mai", "it"),
        ("De app werkt niet en de klantenservice reageert niet", "nl"),
        ("Appen fungerar inte och supporten svarar inte", "sv"),
    ],
)
def test_latin_languages_by_their_function_words(text, code):
    assert detect_language(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "acme down again 😡",
        "lol",
        "",
        "   ",
        "https://acme.example/status",
        "@die_acme https://de.example/die/der/das ok",
    ],
)
def test_too_little_evidence_is_none(text):
    assert detect_language(text) is None


def test_words_shared_by_languages_count_for_each_in_part():
    # "de" is Spanish, French, Portuguese, Dutch and Swedish: a fifth of a point each, not a whole one
    scores = language_scores("de")
    assert scores["es"] == scores["fr"] == scores["pt"] == scores["nl"] == scores["sv"] == pytest.approx(0.2)
    assert scores["en"] == scores["de"] == 0
    assert "und" in FUNCTION_WORDS and "the" in FUNCTION_WORDS


def test_letters_only_one_language_uses_add_evidence():
    assert language_scores("straße")["de"] == 1.0
    assert language_scores("año")["es"] == 1.0


# ---------------------------------------------------------------- the corpus


def test_corpus_languages_are_never_wrong_and_mostly_decided():
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    detected = [(row["language"], detect_language(row["text"]), row["text"]) for row in rows]
    wrong = [(e, g, t) for e, g, t in detected if g is not None and g != e]
    decided = sum(g is not None for _, g, _ in detected) / len(detected)
    assert not wrong, wrong
    assert decided >= 0.8, f"only {decided:.0%} decided"


def test_detection_is_fast():
    texts = [row["text"] for row in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines())] * 20
    started = time.perf_counter()
    for text in texts:
        detect_language(text)
    per_post = (time.perf_counter() - started) / len(texts)
    assert per_post < 0.0005  # measured about 7 µs; the bound only catches an accident
