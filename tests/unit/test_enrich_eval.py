"""The hand-labelled evaluation set (tests/fixtures/enrich_eval.jsonl) and the accuracy it holds.

A behaviour regression test: the figures `make bench-enrich` prints must stay above the targets
(sentiment accuracy 0.80, theme macro F1 0.75) when rules change.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest
from emberwatch.enrich.sentiment import LABELS
from emberwatch.enrich.themes import THEMES

BENCH = Path(__file__).resolve().parents[2] / "bench" / "enrich_eval.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("enrich_eval", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows(bench):
    return bench.load_rows()


def test_the_set_is_large_varied_and_validly_labelled(rows):
    assert len(rows) >= 300
    assert len({row["text"] for row in rows}) == len(rows), "no mention twice"
    for row in rows:
        assert row["text"].strip()
        assert row["sentiment"] in LABELS, row
        assert row["theme"] in THEMES, row
        assert row["split"] in ("tuned", "dev", "holdout"), row
        assert row["source"] in {
            *("x", "reddit", "hackernews", "mastodon", "bluesky", "youtube", "feed", "stackexchange"),
            "facebook",
        }, row
    splits = Counter(row["split"] for row in rows)
    assert splits["holdout"] >= 80
    assert {row["sentiment"] for row in rows} == set(LABELS)
    assert {row["theme"] for row in rows} == set(THEMES)
    non_english = sum(row["language"] != "en" for row in rows) / len(rows)
    assert 0.12 <= non_english <= 0.25, f"{non_english:.0%} not English"
    assert len({row["source"] for row in rows}) >= 6


def test_the_bench_scores_are_the_textbook_ones(bench):
    expected = ["a", "a", "b", "b", "c"]
    got = ["a", "b", "b", "b", "a"]
    result = bench.scores(expected, got, ["a", "b", "c"])
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.per_class["a"][:3] == pytest.approx((0.5, 0.5, 0.5))
    assert result.per_class["b"][:3] == pytest.approx((2 / 3, 1.0, 0.8))
    assert result.per_class["c"][:3] == (0.0, 0.0, 0.0)
    assert result.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_accuracy_and_macro_f1_stay_above_the_targets(bench, rows):
    sentiment, theme = bench.evaluate(rows)
    report = (
        f"sentiment accuracy {sentiment.accuracy:.3f}, theme macro F1 {theme.macro_f1:.3f}; "
        "run `make bench-enrich` (and `python bench/enrich_eval.py --misses both`) to see why"
    )
    assert sentiment.accuracy >= 0.80, report
    assert theme.macro_f1 >= 0.75, report
