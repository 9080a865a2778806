"""The digest and alert templates, rendered with the sample contexts, and the render module's filters."""

from __future__ import annotations

import ast
import copy
import html
import importlib.util
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jinja2.exceptions import UndefinedError

REPO = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("emberwatch") is None:  # not pip-installed: use the layer source
    sys.path.insert(0, str(REPO / "layers" / "emberwatch"))

from emberwatch import render  # noqa: E402

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>'
TRACKING_PIXEL = '<img src="http://t.example/p.gif">'
DASH = "\u2013"  # en dash
MINUS = "\u2212"
TIMES = "\u00d7"
WEEK = f"7{DASH}13 May 2024"
TAG = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")


@pytest.fixture(autouse=True)
def _fresh_environment():
    render.environment.cache_clear()
    yield
    render.environment.cache_clear()


@pytest.fixture
def digest():
    return render.sample_digest_context()


@pytest.fixture
def alert():
    return render.sample_alert_context()


def _html(digest):
    return render.render("digest.html.j2", digest=digest)


def _text(digest):
    return render.render("digest.txt.j2", digest=digest)


def _alert(alert):
    return render.render("alert.txt.j2", alert=alert)


def _subject(alert):
    return render.render("alert_subject.txt.j2", alert=alert)


# --------------------------------------------------------------------------- module and environment


def test_render_module_imports_only_jinja2_and_stdlib():
    tree = ast.parse((REPO / "layers/emberwatch/emberwatch/render.py").read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) == {"jinja2"}


def test_templates_dir_prefers_the_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(render.TEMPLATES_ENV_VAR, str(tmp_path))
    assert render.templates_dir() == tmp_path


def test_templates_dir_falls_back_to_the_repository(monkeypatch):
    monkeypatch.delenv(render.TEMPLATES_ENV_VAR, raising=False)
    monkeypatch.setattr(render, "LAYER_TEMPLATES_DIR", Path("/nonexistent/emberwatch_templates"))
    assert render.templates_dir() == REPO / "templates"


def test_templates_dir_names_every_place_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv(render.TEMPLATES_ENV_VAR, raising=False)
    monkeypatch.setattr(render, "LAYER_TEMPLATES_DIR", tmp_path / "layer")
    monkeypatch.setattr(render, "REPO_TEMPLATES_DIR", tmp_path / "repo")
    with pytest.raises(FileNotFoundError) as caught:
        render.templates_dir()
    message = str(caught.value)
    assert render.TEMPLATES_ENV_VAR in message
    assert str(tmp_path / "layer") in message
    assert str(tmp_path / "repo") in message


def test_env_var_pointing_nowhere_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(render.TEMPLATES_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=render.TEMPLATES_ENV_VAR):
        render.templates_dir()


def test_environment_is_cached_and_escapes_only_html():
    env = render.environment()
    assert render.environment() is env
    assert env.autoescape("digest.html.j2") is True
    assert env.autoescape("digest.txt.j2") is False
    assert env.autoescape("alert.txt.j2") is False


def test_strict_undefined_catches_a_missing_key(digest, alert):
    del digest["unsubscribe_url"]
    with pytest.raises(UndefinedError):
        _html(digest)
    with pytest.raises(UndefinedError):
        _text(digest)
    del alert["incident_key"]
    with pytest.raises(UndefinedError):
        _alert(alert)


def test_strict_undefined_catches_a_missing_nested_key(digest, alert):
    del digest["totals"]["negative_share"]
    with pytest.raises(UndefinedError):
        _html(digest)
    del alert["brand"]["name"]
    with pytest.raises(UndefinedError):
        _subject(alert)


# --------------------------------------------------------------------------- filters


def test_dt_formats_aware_datetimes_in_utc():
    moment = datetime(2024, 5, 13, 14, 5, tzinfo=UTC)
    assert render.format_dt(moment) == "Mon 13 May 2024, 14:05 UTC"
    assert render.format_dt(moment.astimezone(tz=None)) == "Mon 13 May 2024, 14:05 UTC"
    assert render.format_dt(moment, "short") == "Mon 13 May, 14:05 UTC"
    assert render.format_dt(moment, "time") == "14:05 UTC"
    assert render.format_dt(moment, "date") == "Mon 13 May 2024"
    assert render.format_dt(moment, "%Y-%m-%d") == "2024-05-13"
    assert render.format_dt(None) == DASH
    with pytest.raises(ValueError, match="naive"):
        render.format_dt(datetime(2024, 5, 13, 14, 5))


def test_number_filters():
    assert render.format_num(1234567) == "1,234,567"
    assert render.format_num(22.6) == "22.6"
    assert render.format_num(1500.0) == "1,500"
    assert render.format_num(9.3805, 1) == "9.4"
    assert render.format_pct(0.123) == "12%"
    assert render.format_pct(0.001) == "<1%"
    assert render.format_pct(0) == "0%"
    assert render.format_pct(None) == DASH
    assert render.format_signed_pct(0.25) == "+25%"
    assert render.format_signed_pct(-0.1) == f"{MINUS}10%"
    assert render.format_signed_pct(0.001) == "±0%"
    assert render.format_signed_pct(None) == "new"


def test_duration_filter():
    assert render.format_duration(45) == "45 min"
    assert render.format_duration(125) == "2 h 05 min"
    assert render.format_duration(60 * 27 + 3) == "1 d 3 h"
    assert render.format_duration(timedelta(minutes=90)) == "1 h 30 min"
    assert render.format_duration(None) == DASH


def test_truncate_text_cuts_at_a_word_boundary():
    text = "one two three four five six seven eight nine ten"
    assert render.truncate_text(text, 100) == text
    cut = render.truncate_text(text, 20)
    assert cut == "one two three four…"
    assert len(cut) <= 20
    assert len(render.truncate_text("x" * 500)) == 280
    assert render.truncate_text("x" * 500).endswith("…")
    assert render.truncate_text(None) == ""


def test_oneline_collapses_all_whitespace():
    assert render.oneline("  a\nb\r\n\tc   d \u2028e ") == "a b c d e"
    assert render.oneline(None) == ""


# --------------------------------------------------------------------------- samples follow the contracts


def test_samples_follow_the_contracts(digest, alert):
    from emberwatch.config import Brand
    from emberwatch.digest import build_digest, period_ending

    built = build_digest(
        Brand(id="acme", name="Acme", queries=("acme",)),
        period_ending(datetime(2024, 5, 14, 7, tzinfo=UTC), "weekly", "UTC"),
        current=[], previous=[], top=[], incidents=[], now=datetime(2024, 5, 14, 7, tzinfo=UTC),
        unsubscribe_url="mailto:x@example.com",
    )  # fmt: skip
    # the sample has every key the real digest has, so templates tested on it work on real digests
    assert set(digest) == set(built)
    assert set(digest["period"]) == set(built["period"]) == {"kind", "title", "start", "end", "label", "zone"}
    assert set(digest["care"]) == set(built["care"])
    assert all(set(m) == set(built["headline"][0]) for m in digest["headline"])
    assert all(set(t) == set(built["themes"][0]) for t in digest["themes"])
    assert set(digest["totals"]) == {
        "mentions", "previous_mentions", "change", "negative", "negative_share",
        "previous_negative_share", "sources",
    }  # fmt: skip
    assert len(digest["timeline"]) == 7
    assert all(set(b) == {"label", "mentions", "negative", "bar", "negative_bar"} for b in digest["timeline"])
    assert max(b["bar"] for b in digest["timeline"]) == 1
    assert sum(s["mentions"] for s in digest["by_source"]) == digest["totals"]["mentions"]
    posts = digest["top_posts"]
    assert len(posts) == 5 and len({p["source"] for p in posts}) == 5
    assert all(
        set(p) == {"id", "source", "source_label", "author", "created_at", "title", "text", "url",
                   "engagement", "sentiment"}
        for p in posts
    )  # fmt: skip
    assert len(digest["incidents"]) == 2
    assert {i["status"] for i in digest["incidents"]} == {"open", "resolved"}
    assert set(alert) == {
        "kind", "brand", "scope", "scope_label", "rule", "rule_label", "severity", "observed", "expected",
        "ratio", "window_minutes", "since", "now", "resolved_at", "sources", "posts", "incident_key", "link",
    }  # fmt: skip
    for moment in (digest["generated_at"], alert["since"], *(p["created_at"] for p in posts)):
        assert moment.tzinfo is not None


# --------------------------------------------------------------------------- digest, HTML


def test_digest_html_shows_the_key_facts(digest):
    out = _html(digest)
    assert "Acme Widgets" in out
    assert "Weekly digest" in out and WEEK in out
    assert "5,562" in out and "+40%" in out and "3,980" in out
    assert "24%" in out and "1,330" in out
    for source in digest["by_source"]:
        assert source["label"] in out
    assert "2,180" in out and "39%" in out
    for bucket in digest["timeline"]:
        assert bucket["label"] in out
    for post in digest["top_posts"]:
        assert f'href="{html.escape(post["url"])}"' in out
        assert html.escape(post["author"]) in out
    assert out.count("View post") == 5
    for incident in digest["incidents"]:
        assert incident["key"] in out
    assert "CRITICAL" in out and "WARNING" in out and "Still open" in out
    assert "6 h 05 min" in out
    assert "Mon 13 May 2024, 06:45 UTC" in out
    assert "212" in out and "22.6" in out
    assert f'href="{digest["unsubscribe_url"]}"' in out
    assert "Tue 14 May 2024, 07:00 UTC" in out


def test_digest_html_is_email_safe(digest):
    out = _html(digest)
    lowered = out.lower()
    assert '<html lang="en"' in out
    assert "<script" not in lowered
    assert "<svg" not in lowered
    assert "<img" not in lowered
    assert "javascript:" not in lowered
    assert "<link" not in lowered
    assert "max-width:600px" in out
    tables = re.findall(r"<table\b[^>]*>", out)
    assert tables and all('role="presentation"' in t for t in tables)
    # a hidden preheader comes first in the body
    body = out[out.index("<body") :]
    assert "display:none" in body[:400] and "5,562 mentions" in body[:800]


def test_digest_html_escapes_hostile_post_text(digest):
    post = digest["top_posts"][0]
    post["title"] = "<b>bold</b> title"
    post["author"] = '<a href="http://evil.example">x</a>'
    out = _html(digest)
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in out
    assert "&lt;img src=&#34;http://t.example/p.gif&#34;&gt;" in out
    assert "&lt;b&gt;bold&lt;/b&gt; title" in out
    assert 'href="http://evil.example"' not in out


def test_digest_html_drops_non_http_links(digest):
    digest["top_posts"][0]["url"] = "javascript:alert(1)"
    out = _html(digest)
    assert "javascript:" not in out.lower()
    assert out.count("View post") == 4


def test_digest_html_truncates_long_posts(digest):
    long_post = digest["top_posts"][2]
    assert len(long_post["text"]) > 280
    out = _html(digest)
    ending = long_post["text"][-60:]
    assert html.escape(ending) not in out
    assert "everything was…" in out


def test_digest_html_keeps_rtl_and_emoji(digest):
    out = _html(digest)
    assert "تحديث أجهزة Acme Widgets" in out
    assert "🙌" in out and "🔧✨" in out
    assert out.count('dir="auto"') >= len(digest["top_posts"])
    text_cells = re.findall(r"<td dir=\"auto\"[^>]*>([^<]*)</td>", out)
    assert any("تحديث" in cell for cell in text_cells)


def test_digest_html_timeline_bars_use_two_colours(digest):
    out = _html(digest)
    assert out.count('bgcolor="#dc2626"') == len(digest["timeline"])  # each day had negative mentions
    assert out.count('bgcolor="#60a5fa"') >= len(digest["timeline"])


def test_digest_html_without_incidents_or_posts(digest):
    digest["incidents"] = []
    digest["top_posts"] = []
    digest["totals"]["change"] = None
    out = _html(digest)
    assert "No incidents in this period" in out
    assert "No mentions in this period" in out
    assert ">new<" in out


def test_digest_html_groups_labels_of_long_timelines(digest):
    digest["timeline"] = [
        {"label": f"{hour:02d}:00", "mentions": hour, "negative": 0, "bar": hour / 23, "negative_bar": 0.0}
        for hour in range(24)
    ]
    out = _html(digest)
    assert "00:00" in out and "21:00" in out and "01:00" not in out
    assert "peak 23" in out


# --------------------------------------------------------------------------- digest, text


def test_digest_text_has_the_same_facts_and_no_markup(digest):
    out = _text(digest)
    for fact in (
        "Acme Widgets",
        "Weekly digest",
        WEEK,
        "5,562",
        "+40%",
        "3,980",
        "24%",
        "1,330",
        "Hacker News",
        "2,180",
        "CRITICAL",
        "WARNING",
        "still open",
        "6 h 05 min",
        f"9.4{TIMES}",
    ):
        assert fact in out
    for post in digest["top_posts"]:
        assert post["url"] in out
    for incident in digest["incidents"]:
        assert incident["key"] in out
    assert digest["unsubscribe_url"] in out
    assert "█" in out and "▒" in out
    # The only markup-looking text is the hostile post, shown verbatim (text/plain is never escaped).
    assert HOSTILE_SCRIPT in out and "&lt;" not in out
    digest["top_posts"][4]["text"] = "A harmless post."
    assert not TAG.search(_text(digest))


def test_digest_text_fits_72_columns(digest):
    for line in _text(digest).splitlines():
        assert len(line) <= 72 or "http" in line, line


def test_digest_text_truncates_and_keeps_rtl_and_emoji(digest):
    out = _text(digest)
    assert "everything was…" in out
    assert digest["top_posts"][2]["text"][-40:] not in out
    assert "تحديث" in out and "🙌" in out


# --------------------------------------------------------------------------- alert


def test_alert_first_line_says_what_happened(alert):
    out = _alert(alert)
    assert out.splitlines()[0] == f"FIRE: mentions of Acme Widgets are 9.4{TIMES} the usual level"

    alert.update(kind="escalated", severity="critical", ratio=14.0)
    assert _alert(alert).splitlines()[0].startswith(f"ESCALATED: mentions of Acme Widgets are now 14{TIMES}")

    alert.update(kind="resolved", resolved_at=alert["now"] + timedelta(minutes=40))
    resolved = _alert(alert)
    assert resolved.splitlines()[0] == "ALL CLEAR: mentions of Acme Widgets are back to the usual level"
    assert "Resolved:  Mon 13 May 2024, 07:45 UTC (after 1 h 00 min)" in resolved


def test_alert_names_a_source_scope(alert):
    alert.update(scope="source:hackernews", scope_label="Hacker News")
    out = _alert(alert)
    assert (
        out.splitlines()[0] == f"FIRE: mentions of Acme Widgets on Hacker News are 9.4{TIMES} the usual level"
    )


def test_alert_without_a_baseline(alert):
    alert.update(ratio=None, expected=0.0)
    first = _alert(alert).splitlines()[0]
    assert first.startswith("FIRE:") and "212" in first and "usually none" in first


def test_alert_body_has_the_facts(alert):
    out = _alert(alert)
    for fact in (
        "Brand:     Acme Widgets",
        "Scope:     All sources",
        "Rule:      Volume spike",
        "Severity:  HIGH",
        "212 mentions in 15 min (expected 22.6)",
        "Since:     Mon 13 May 2024, 06:45 UTC (20 min ago)",
        "Hacker News 97",
        "Mastodon 13",
        alert["incident_key"],
        alert["link"],
    ):
        assert fact in out, fact
    for post in alert["posts"]:
        assert post["url"] in out
    assert "412 engagements" in out and "06:41 UTC" in out
    assert not TAG.search(out)


def test_alert_posts_are_one_lined_truncated_and_capped_at_five(alert):
    base = alert["posts"][0]
    alert["posts"] = [dict(base, url=f"https://example.com/{n}") for n in range(7)]
    alert["posts"][0]["text"] = "line one\n\nline two " + "word " * 80
    out = _alert(alert)
    assert "https://example.com/4" in out and "https://example.com/5" not in out
    text_line = next(line for line in out.splitlines() if "line one" in line)
    assert "line one line two" in text_line
    assert text_line.strip().endswith("…") and len(text_line.strip()) <= 200


def test_alert_keeps_rtl_and_emoji(alert):
    out = _alert(alert)
    assert "😡" in out and "העדכון האחרון של Acme Widgets" in out


def test_alert_link_is_optional(alert):
    alert["link"] = None
    out = _alert(alert)
    assert "Details:" not in out
    assert alert["incident_key"] in out


@pytest.mark.parametrize("kind", ["opened", "escalated", "resolved"])
def test_alert_subject_is_one_short_ascii_line(alert, kind):
    alert.update(kind=kind, resolved_at=alert["now"] if kind == "resolved" else None)
    subject = _subject(alert)
    assert "\n" not in subject and subject == subject.strip()
    assert len(subject) < 100
    assert subject.isascii()
    assert "Acme Widgets" in subject
    assert {"opened": "FIRE", "escalated": "ESCALATED", "resolved": "ALL CLEAR"}[kind] in subject


def test_alert_subject_stays_short_with_a_long_brand(alert):
    alert["brand"] = {"id": "long", "name": "The Extremely Long And Verbose Brand Name Incorporated " * 3}
    alert.update(scope="source:stackexchange", scope_label="Stack Exchange")
    subject = _subject(alert)
    assert len(subject) < 100 and "\n" not in subject and subject.endswith("...")


def test_alert_subject_content(alert):
    assert _subject(alert) == "[Emberwatch] FIRE (high): Acme Widgets mentions 9.4x usual"


def test_samples_are_not_shared_between_calls():
    first = render.sample_digest_context()
    first["top_posts"].clear()
    assert render.sample_digest_context()["top_posts"]
    assert copy.deepcopy(render.sample_alert_context()) == render.sample_alert_context()
