"""Bad bodies and posts are cleaned or skipped, and the scan goes on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from emberwatch.config import Brand
from emberwatch.http import SourceError
from emberwatch.sources import json_body
from emberwatch.sources.hackernews import CONNECTOR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BRAND = Brand(id="acme", name="Acme Widgets", queries=('"acme widgets"',))


def test_invalid_utf8_is_replaced_and_the_page_kept():
    page = json.loads((FIXTURES / "hn_page.json").read_text())
    body = json.dumps(page).encode().replace(b"fine", b"fi\xff\xfene")
    parsed = CONNECTOR.parse(body, BRAND, '"acme widgets"')
    assert len(parsed.mentions) == 2
    assert "\ufffd" in parsed.mentions[0].text


def test_a_100_kb_post_is_stored_cut_down(store):
    page = json.loads((FIXTURES / "hn_page.json").read_text())
    page["hits"][0]["comment_text"] = "Acme Widgets " + "<p>very long complaint " * 5000
    parsed = CONNECTOR.parse(json.dumps(page).encode(), BRAND, '"acme widgets"')
    assert len(parsed.mentions[0].text) > 100_000
    assert store.store_mentions(parsed.mentions).stored == 2
    (stored,) = [
        m
        for m in store.mentions_between(
            "acme", datetime(2024, 5, 13, tzinfo=UTC), datetime(2024, 5, 14, tzinfo=UTC)
        )
        if m.native_id == "40346001"
    ]
    assert 0 < len(stored.text) <= 8000


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML page"),
        (b'{"hits": [', "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_unusable_bodies_name_what_came(body, says):
    with pytest.raises(SourceError, match=says):
        json_body(body, "hackernews")
