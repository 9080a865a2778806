"""`emberwatch classify`: how the scanner reads a user's own posts, one JSON object per input line."""

from __future__ import annotations

import io
import json

import pytest
from emberwatch.cli import main
from emberwatch.enrich import enrich

KEYS = {"sentiment", "sentiment_score", "theme", "language", "theme_rule", "noise", "story"}


def run(monkeypatch, capsys, stdin: str, *args: str) -> tuple[int, list[dict], str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["classify", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_plain_text_lines(monkeypatch, capsys):
    code, lines, err = run(
        monkeypatch,
        capsys,
        "Great, another outage @acme 🙄\nThanks Acme, the replacement arrived and works perfectly\n",
    )
    assert code == 0
    assert err == ""
    assert [line["line"] for line in lines] == [1, 2]
    assert all(set(line) >= KEYS for line in lines)
    assert (lines[0]["sentiment"], lines[0]["theme"]) == ("negative", "issue")
    assert "sarcasm: eye-roll, great, <trouble>" in lines[0]["sentiment_reasons"]
    assert (lines[1]["sentiment"], lines[1]["theme"]) == ("positive", "feedback")


def test_json_lines_with_fields(monkeypatch, capsys):
    stdin = (
        json.dumps(
            {"id": "p1", "text": "Seit heute Morgen geht nichts.", "title": "Totalausfall", "language": "de"}
        )
        + "\n"
        + json.dumps({"text": "Wow https://news.example/acme?utm_source=x", "author": "jane"})
        + "\n"
    )
    code, lines, _ = run(monkeypatch, capsys, stdin)
    assert code == 0
    assert lines[0]["id"] == "p1"
    assert (lines[0]["language"], lines[0]["theme"]) == ("de", "issue")
    assert lines[1]["story_basis"] == "link https://news.example/acme"


def test_the_output_is_the_scanners_enrichment(monkeypatch, capsys):
    text = "Acme checkout keeps crashing on iOS, lost my cart twice 😡"
    _, lines, _ = run(monkeypatch, capsys, text + "\n")
    expected = enrich(text, mention_id="line:1").as_dict()
    assert lines[0] == {"line": 1} | expected


def test_a_malformed_line_gets_an_error_object_and_exit_1(monkeypatch, capsys):
    stdin = "\n".join(
        [
            "Acme app down again",
            '{"text": "broken json',
            "",
            '{"text": 3}',
            '{"title": "no text"}',
            '{"text": "ok", "language": 7}',
            '{"text": "Does Acme ship to Canada?"}',
        ]
    )
    code, lines, err = run(monkeypatch, capsys, stdin)
    assert code == 1
    assert "4 line(s) could not be read" in err
    by_line = {line["line"]: line for line in lines}
    assert sorted(by_line) == [1, 2, 4, 5, 6, 7]  # the blank line 3 is skipped, numbering is not
    assert by_line[2]["error"].startswith("not valid JSON (Unterminated string")
    assert by_line[4] == {"line": 4, "error": "'text' must be a non-empty string"}
    assert by_line[5] == {"line": 5, "error": "'text' must be a non-empty string"}
    assert by_line[6] == {"line": 6, "error": "'language' must be a string"}
    assert by_line[7]["theme"] == "question"


def test_a_json_line_that_is_not_an_object(monkeypatch, capsys):
    # only lines starting with "{" are read as JSON; anything else is the post's text
    code, lines, _ = run(monkeypatch, capsys, '["a"]\n{}\n')
    assert code == 1
    assert lines[0]["theme"] == "other"
    assert lines[1] == {"line": 2, "error": "'text' must be a non-empty string"}


def test_repeats_by_one_author_within_the_input_are_noise(monkeypatch, capsys):
    post = {"text": "Acme app down again, can't log in", "author": "jane"}
    _, lines, _ = run(monkeypatch, capsys, f"{json.dumps(post)}\n{json.dumps(post)}\n")
    assert lines[0]["noise"] == []
    assert lines[1]["noise"] == ["repeated: same text as line:1 by the same author"]


def test_brand_theme_keywords_from_a_file(monkeypatch, capsys, tmp_path):
    keywords = tmp_path / "themes.yaml"
    keywords.write_text("issue: [blackout, 'no dial tone']\n", encoding="utf-8")
    code, lines, _ = run(monkeypatch, capsys, "The blackout hit again\n", "--theme-keywords", str(keywords))
    assert code == 0
    assert (lines[0]["theme"], lines[0]["theme_rule"]) == ("issue", "brand keyword (keyword)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("complaint: [x]\n", "unknown theme 'complaint'"),
        ("- issue\n", "must map themes to keyword lists"),
        ("issue: [unclosed\n", "is not YAML"),
    ],
)
def test_invalid_theme_keywords_are_a_usage_error(monkeypatch, capsys, tmp_path, content, message):
    keywords = tmp_path / "themes.yaml"
    keywords.write_text(content, encoding="utf-8")
    code, lines, err = run(monkeypatch, capsys, "text\n", "--theme-keywords", str(keywords))
    assert code == 2
    assert lines == []
    assert message in err


def test_a_missing_theme_keywords_file(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "text\n", "--theme-keywords", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err
