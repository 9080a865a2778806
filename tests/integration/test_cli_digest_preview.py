"""emberwatch digest preview renders from the table into files and sends nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from emberwatch.cli import main
from emberwatch.models import Author, Engagement, Mention
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from tests.conftest import CONFIG_YAML

DAY = datetime(2024, 5, 13, tzinfo=UTC)


def test_preview_writes_html_text_and_eml_without_sending(store, tmp_path, capsys):
    store.store_mentions(
        [
            Mention(
                source="hackernews",
                native_id=str(n),
                brand="acme",
                query='"acme widgets"',
                author=Author(f"u{n}"),
                text=f"Acme Widgets post {n} <script>x</script>",
                created_at=DAY + timedelta(hours=n),
                url=f"https://news.ycombinator.com/item?id={n}",
                engagement=Engagement(likes=n),
            )
            for n in range(12)
        ]
    )
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML)
    code = main(
        [
            "digest",
            "preview",
            "--brand",
            "acme",
            "--at",
            "2024-05-14T08:00:00Z",
            "--table",
            store.table,
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    html = (tmp_path / "out" / "digest-acme-daily-2024-05-13.html").read_text()
    text = (tmp_path / "out" / "digest-acme-daily-2024-05-13.txt").read_text()
    assert "Acme Widgets" in html and "&lt;script&gt;" in html and "<script>x" not in html
    assert "12" in text
    assert (tmp_path / "out" / "digest-acme-daily-2024-05-13.eml").exists()
    assert list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages) == []
    assert "not sent" in capsys.readouterr().out


def test_preview_names_an_unknown_brand(store, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML)
    code = main(["digest", "preview", "--brand", "nope", "--table", store.table, "--config", str(config)])
    assert code == 2 and "no brand 'nope'" in capsys.readouterr().err


def test_weekly_preview_covers_the_seven_days(store, tmp_path):
    store.store_mentions(
        [
            Mention(
                source="reddit",
                native_id=f"w{n}",
                brand="acme",
                query='"acme widgets"',
                author=Author(f"u{n}"),
                text=f"Acme Widgets week post {n}",
                created_at=DAY - timedelta(days=6) + timedelta(hours=10 * n),
                url=f"https://www.reddit.com/r/x/comments/w{n}/",
                theme="feedback",
            )
            for n in range(15)
        ]
    )
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML)
    args = ["digest", "preview", "--brand", "acme", "--period", "weekly", "--at", "2024-05-14T08:00:00Z"]
    code = main([*args, "--table", store.table, "--config", str(config), "--out", str(tmp_path / "out")])
    assert code == 0
    text = (tmp_path / "out" / "digest-acme-weekly-2024-05-07.txt").read_text()
    assert "Weekly digest" in text and "07 May – 13 May 2024" in text
    assert re.search(r"^  Mentions +15 +none before$", text, re.M)
    assert "Feedback: 15" in text
    assert list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages) == []
