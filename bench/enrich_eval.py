"""Enrichment benchmark: tone and theme of 450 hand-labelled mentions, and the CPU time it takes.

The set is tests/fixtures/enrich_eval.jsonl: one mention a line with `text`, `source`, `language`,
the hand labels `sentiment` and `theme` (what a care team would say, not what the code says) and
`split`: `tuned` (the first 112, written while the rules were first written), `dev` (three batches,
each written before a round of rule changes and looked at during it) and `holdout` (written before
the first of those rounds, never looked at row by row while tuning: its figures are the honest
estimate of how the rules do on posts they have not seen).

Each mention goes through `emberwatch.enrich.enrich`, the default offline path the scanner runs
(VADER and the care rules, theme rules, language, noise, story; no Comprehend). A source that
declares a language (X, Mastodon, Bluesky) passes it, as the connectors do; the others are detected.

CPU time is `time.process_time` over several passes of the whole set, after one warm-up pass (the
lexicon loads once per container). Bad input (empty, emoji only, 100 KB, control characters,
lone surrogates) is timed separately and does not count in ms_per_mention.

Last line: `enrich sentiment_acc=<accuracy> theme_macro_f1=<macro F1> ms_per_mention=<CPU ms per mention>`
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EVAL_SET = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "enrich_eval.jsonl"
SENTIMENTS = ("positive", "neutral", "negative")
THEMES = ("issue", "solution_wanted", "time_cost", "feedback", "question", "other")
SPLITS = ("tuned", "dev", "holdout")
DECLARING_SOURCES = frozenset({"x", "mastodon", "bluesky"})  # sources whose API tags a post's language


@dataclass(frozen=True, slots=True)
class Scores:
    """Accuracy, macro F1 and per-class (precision, recall, F1, support) of one label."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, tuple[float, float, float, int]]
    confusion: Counter[tuple[str, str]]


def load_rows(path: Path = EVAL_SET) -> list[dict[str, str]]:
    """The evaluation set, one dict a mention."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def declared_language(row: dict[str, str]) -> str | None:
    return row["language"] if row.get("source") in DECLARING_SOURCES else None


def predict(rows: Sequence[dict[str, str]]) -> list[object]:
    """The default enrichment of every row (an `Enrichment` each)."""
    from emberwatch.enrich import enrich

    return [enrich(row["text"], source=row.get("source"), language=declared_language(row)) for row in rows]


def scores(expected: Sequence[str], got: Sequence[str], labels: Sequence[str]) -> Scores:
    """Accuracy, per-class precision/recall/F1 and their unweighted mean (macro F1) over `labels`."""
    confusion = Counter(zip(expected, got, strict=True))
    per_class = {}
    for label in labels:
        tp = confusion[(label, label)]
        predicted = sum(n for (_, g), n in confusion.items() if g == label)
        support = sum(n for (e, _), n in confusion.items() if e == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = (precision, recall, f1, support)
    accuracy = sum(e == g for e, g in zip(expected, got, strict=True)) / len(expected) if expected else 0.0
    present = [label for label in labels if per_class[label][3]]
    macro = sum(per_class[label][2] for label in present) / len(present) if present else 0.0
    return Scores(accuracy, macro, per_class, confusion)


def evaluate(rows: Sequence[dict[str, str]]) -> tuple[Scores, Scores]:
    """(sentiment scores, theme scores) of the default path over `rows`."""
    results = predict(rows)
    sentiment = scores([r["sentiment"] for r in rows], [e.sentiment for e in results], SENTIMENTS)  # type: ignore[attr-defined]
    theme = scores([r["theme"] for r in rows], [e.theme for e in results], THEMES)  # type: ignore[attr-defined]
    return sentiment, theme


def print_table(title: str, result: Scores, labels: Sequence[str]) -> None:
    print(f"\n{title}: accuracy {result.accuracy:.3f}, macro F1 {result.macro_f1:.3f}")
    print(f"  {'label':<16} {'precision':>9} {'recall':>7} {'F1':>6} {'n':>5}")
    for label in labels:
        precision, recall, f1, support = result.per_class[label]
        print(f"  {label:<16} {precision:>9.3f} {recall:>7.3f} {f1:>6.3f} {support:>5}")
    width = max(len(label) for label in labels) + 1
    print(
        f"  confusion (rows: hand label, columns: predicted)\n  {'':<{width}}"
        + "".join(f"{label[:8]:>9}" for label in labels)
    )
    for expected in labels:
        counts = "".join(f"{result.confusion[(expected, got)]:>9}" for got in labels)
        print(f"  {expected:<{width}}{counts}")


def cpu_ms_per_mention(rows: Sequence[dict[str, str]], repeats: int) -> float:
    """CPU ms per mention of the whole default enrichment (tone, theme, language, noise, story)."""
    from emberwatch.enrich import RecentTexts, enrich

    prepared = [(row["text"], row.get("source"), declared_language(row)) for row in rows]
    enrich("warm up: the lexicon loads once per container")
    recent = RecentTexts()
    started = time.process_time()
    for round_ in range(repeats):
        for i, (text, source, language) in enumerate(prepared):
            enrich(
                text,
                source=source,
                language=language,
                author=f"u{i}",
                mention_id=f"{round_}:{i}",
                recent=recent,
            )
    return 1000 * (time.process_time() - started) / (repeats * len(prepared))


BAD_INPUT = {
    "empty": "",
    "whitespace": " \n\t ",
    "emoji only": "😡😡😡",
    "mixed scripts": "Acme приложение не работает 😡 アプリが落ちる app down",
    "control characters": "acme\x00app\x07is\x1bdown\x7f again\u200b\u202e!!",
    "lone surrogates": "acme \ud83d broken \udc00 again",
    "100 KB of text": ("the acme app is down again and support is not answering " * 1800)[:100_000],
    "100 KB, one word": "a" * 100_000,
}


def bad_input(repeats: int = 20) -> None:
    from emberwatch.enrich import enrich

    print("\nbad input (CPU ms per call, median of runs; label, theme and the first reason)")
    for name, text in BAD_INPUT.items():
        runs = []
        for _ in range(repeats):
            started = time.process_time()
            result = enrich(text)
            runs.append(1000 * (time.process_time() - started))
        runs.sort()
        reason = (result.sentiment_reasons or ("",))[0]
        print(
            f"  {name:<20} {runs[len(runs) // 2]:>7.3f} ms  {result.sentiment:<8} {result.theme:<15} "
            f"{result.theme_rule[:40]!r} {reason[:40]!r}"
        )


def misses(rows: Sequence[dict[str, str]], which: str) -> None:
    results = predict(rows)
    for row, result in zip(rows, results, strict=True):
        s_ok = row["sentiment"] == result.sentiment  # type: ignore[attr-defined]
        t_ok = row["theme"] == result.theme  # type: ignore[attr-defined]
        if (which == "sentiment" and s_ok) or (which == "theme" and t_ok) or (s_ok and t_ok):
            continue
        print(
            f"  [{row['split']}] sent {row['sentiment']}->{result.sentiment} "  # type: ignore[attr-defined]
            f"theme {row['theme']}->{result.theme} ({result.theme_rule}): {row['text']}"  # type: ignore[attr-defined]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="passes over the set for the CPU time")
    parser.add_argument(
        "--misses",
        choices=("sentiment", "theme", "both"),
        help="list the wrong rows of the tuned and dev splits (the holdout's are never listed)",
    )
    args = parser.parse_args(argv)

    rows = load_rows()
    if args.misses:
        misses([r for r in rows if r["split"] != "holdout"], args.misses)
        return 0
    languages = Counter(r["language"] for r in rows)
    print(
        f"evaluation set {len(rows)} mentions: "
        + ", ".join(f"{s} {sum(r['split'] == s for r in rows)}" for s in SPLITS)
        + f"; non-English {sum(n for code, n in languages.items() if code != 'en')} "
        + "("
        + ", ".join(f"{code} {n}" for code, n in languages.most_common() if code != "en")
        + ")"
    )
    print("sources " + ", ".join(f"{s} {n}" for s, n in Counter(r["source"] for r in rows).most_common()))

    sentiment, theme = evaluate(rows)
    print_table("sentiment", sentiment, SENTIMENTS)
    print_table("theme", theme, THEMES)

    print(f"\n{'subset':<22} {'n':>4} {'sentiment acc':>14} {'theme macro F1':>15} {'theme acc':>10}")
    subsets = [(f"split {s}", [r for r in rows if r["split"] == s]) for s in SPLITS]
    subsets.append(("not English", [r for r in rows if r["language"] != "en"]))
    for name, subset in subsets:
        s, t = evaluate(subset)
        print(f"{name:<22} {len(subset):>4} {s.accuracy:>14.3f} {t.macro_f1:>15.3f} {t.accuracy:>10.3f}")

    holdout = [r for r in rows if r["split"] == "holdout"]
    held_sentiment, held_theme = evaluate(holdout)
    print_table("holdout sentiment (rows never looked at while tuning)", held_sentiment, SENTIMENTS)
    print_table("holdout theme", held_theme, THEMES)

    from emberwatch.enrich.language import detect_language

    detected = [detect_language(r["text"]) for r in rows]
    right = sum(d == r["language"] for d, r in zip(detected, rows, strict=True))
    undecided = sum(d is None for d in detected)
    print(
        f"\nlanguage (detected, no source tag): right {right}, undecided {undecided}, "
        f"wrong {len(rows) - right - undecided} of {len(rows)}"
    )

    bad_input()
    per_mention = cpu_ms_per_mention(rows, args.repeats)
    print(f"\nCPU per mention: {per_mention:.3f} ms ({args.repeats} passes, default path, no Comprehend)")
    print(
        f"enrich sentiment_acc={sentiment.accuracy:.2f} theme_macro_f1={theme.macro_f1:.2f} "
        f"ms_per_mention={per_mention:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
