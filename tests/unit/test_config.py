"""Configuration YAML: a full file parses into the dataclasses; every error names its field path."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from emberwatch.config import (
    AppConfig,
    Brand,
    ConfigError,
    Detection,
    Recipient,
    SourceSettings,
    parse_config,
)

FULL = textwrap.dedent(
    """
    brands:
      - id: acme
        name: Acme Widgets
        queries:
          - '"acme widgets" OR acmewidgets'
          - 'acme (outage OR down) -stock'
        feeds:
          - https://www.google.com/alerts/feeds/1/2
        languages: [en, de]
      - id: globex-2
        queries: [globex]
    sources:
      hackernews:
        base_url: https://hn.example/api/v1/
        max_pages: 5
      feed:
        enabled: false
    detection:
      window_minutes: 15
      baseline_days: 14
      min_mentions: 20
      min_ratio: 4
      p_value: 0.0001
      escalate_factor: 3
      resolve_after_quiet_runs: 12
    recipients:
      - email: lead@acme.example
        name: Care Lead
        brands: [acme]
        cadence: weekly
        timezone: Europe/Berlin
      - email: all@acme.example
    alert_link: https://console.example/incidents
    retention_days: 30
    """
)

BASE = "brands:\n  - id: acme\n    queries: [acme]\n"


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, origin="test.yaml")
    return str(info.value)


# ---------------------------------------------------------------- valid


def test_full_config_parses_into_the_dataclasses():
    config = parse_config(FULL)

    assert isinstance(config, AppConfig)
    assert config.brands == (
        Brand(
            id="acme",
            name="Acme Widgets",
            queries=('"acme widgets" OR acmewidgets', "acme (outage OR down) -stock"),
            feeds=("https://www.google.com/alerts/feeds/1/2",),
            languages=("en", "de"),
        ),
        Brand(id="globex-2", name="globex-2", queries=("globex",)),  # name defaults to the id
    )
    assert config.sources == {
        # a trailing slash on base_url is dropped
        "hackernews": SourceSettings(
            name="hackernews", enabled=True, base_url="https://hn.example/api/v1", max_pages=5
        ),
        "feed": SourceSettings(name="feed", enabled=False),
    }
    assert config.detection == Detection(
        window_minutes=15,
        baseline_days=14,
        min_mentions=20,
        min_ratio=4.0,
        p_value=0.0001,
        escalate_factor=3.0,
        resolve_after_quiet_runs=12,
    )
    assert isinstance(config.detection.min_ratio, float)  # an integer in YAML becomes the field's type
    assert config.recipients == (
        Recipient(
            email="lead@acme.example",
            name="Care Lead",
            brands=("acme",),
            cadence="weekly",
            timezone="Europe/Berlin",
        ),
        # no brands: every brand; cadence and zone default to daily, UTC
        Recipient(email="all@acme.example", name=None, brands=("acme", "globex-2")),
    )
    assert config.alert_link == "https://console.example/incidents"
    assert config.retention_days == 30


def test_lookups_on_the_parsed_config():
    config = parse_config(FULL)
    assert config.brand("globex-2").queries == ("globex",)
    with pytest.raises(KeyError):
        config.brand("nope")
    assert config.source("hackernews").max_pages == 5
    # an unconfigured source gets the defaults
    # sources needing credentials are off unless configured; the zero-config ones are on
    assert config.source("reddit") == SourceSettings(name="reddit", enabled=False)
    assert config.source("stackexchange").enabled and config.source("mastodon").enabled


def test_minimal_config_takes_the_defaults():
    config = parse_config(BASE)
    assert config.detection == Detection()
    assert config.sources == {}
    assert config.recipients == ()
    assert config.alert_link is None
    assert config.retention_days == 90


def test_empty_document_is_an_empty_config():
    assert parse_config("") == AppConfig()


def test_strings_are_stripped():
    config = parse_config("brands:\n  - id: ' acme '\n    queries: ['  acme  ']\n")
    assert config.brands[0].id == "acme"
    assert config.brands[0].queries == ("acme",)


# ---------------------------------------------------------------- invalid: one error each, field named


INVALID = [
    pytest.param("brands: {acme: 1}\n", "brands: must be a list", id="brands-not-list"),
    pytest.param("brands:\n  - id: acme\n", "brands[0].queries: is required", id="queries-missing"),
    pytest.param(
        "brands:\n  - id: acme\n    queries: []\n", "brands[0].queries: must not be empty", id="queries-empty"
    ),
    pytest.param(
        "brands:\n  - id: acme\n    queries: acme\n",
        "brands[0].queries: must be a list of strings",
        id="queries-not-list",
    ),
    pytest.param(
        BASE + "  - id: globex\n    queries: [globex, '', 3]\n",
        "brands[1].queries[1]: must be a non-empty string",
        id="query-item-empty",
    ),
    pytest.param("brands:\n  - queries: [acme]\n", "brands[0].id: is required", id="id-missing"),
    pytest.param(
        "brands:\n  - id: Acme Widgets\n    queries: [acme]\n",
        "brands[0].id: must be lowercase letters, digits and dashes",
        id="id-bad-chars",
    ),
    pytest.param(
        BASE + "  - id: acme\n    queries: [acme2]\n", "brands[1].id: duplicate brand id 'acme'", id="id-dup"
    ),
    pytest.param(
        BASE + "    feeds: [https://ok.example/f, ftp://old.example/f]\n",
        "brands[0].feeds[1]: must be an http(s) URL",
        id="feed-not-http",
    ),
    pytest.param(BASE + "    colour: red\n", "brands[0].colour: unknown field", id="brand-unknown-field"),
    pytest.param("brands:\n  - just-a-string\n", "brands[0]: must be a mapping, got str", id="brand-not-map"),
    pytest.param(BASE + "sources:\n  myspace: {}\n", "sources.myspace: unknown source", id="source-unknown"),
    pytest.param(
        BASE + "sources:\n  hackernews:\n    enabled: yes please\n",
        "sources.hackernews.enabled: must be true or false",
        id="source-enabled",
    ),
    pytest.param(
        BASE + "sources:\n  feed:\n    base_url: feeds.example\n",
        "sources.feed.base_url: must be an http(s) URL",
        id="source-base-url",
    ),
    pytest.param(
        BASE + "sources:\n  hackernews:\n    max_pages: 0\n",
        "sources.hackernews.max_pages: must be between 1 and 1000, got 0",
        id="source-max-pages",
    ),
    pytest.param(
        BASE + "sources:\n  hackernews:\n    pages: 3\n",
        "sources.hackernews.pages: unknown field",
        id="source-unknown-field",
    ),
    pytest.param(
        BASE + "detection:\n  window_minutes: 7\n",
        "detection.window_minutes: must be a multiple of 5",
        id="window-multiple",
    ),
    pytest.param(
        BASE + "detection:\n  window_minutes: 2\n",
        "detection.window_minutes: must be between 5 and 360, got 2",
        id="window-range",
    ),
    pytest.param(
        BASE + "detection:\n  baseline_days: 7.5\n",
        "detection.baseline_days: must be an integer",
        id="baseline-float",
    ),
    pytest.param(
        BASE + "detection:\n  min_mentions: true\n",
        "detection.min_mentions: must be an integer",
        id="min-mentions-bool",
    ),
    pytest.param(
        BASE + "detection:\n  min_ratio: lots\n", "detection.min_ratio: must be a number", id="ratio-string"
    ),
    pytest.param(
        BASE + "detection:\n  p_value: 0.9\n",
        "detection.p_value: must be between 1e-12 and 0.5, got 0.9",
        id="p-value-range",
    ),
    pytest.param(
        BASE + "detection:\n  escalate_factor: 1\n",
        "detection.escalate_factor: must be between 1.1 and 100",
        id="escalate-range",
    ),
    pytest.param(
        BASE + "detection:\n  quiet_runs: 3\n", "detection.quiet_runs: unknown field", id="detection-unknown"
    ),
    pytest.param(
        BASE + "recipients:\n  - name: Nobody\n", "recipients[0].email: is required", id="email-missing"
    ),
    pytest.param(
        BASE + "recipients:\n  - email: ok@acme.example\n  - email: not-an-address\n",
        "recipients[1].email: is not an email address: 'not-an-address'",
        id="email-bad",
    ),
    pytest.param(
        BASE + "recipients:\n  - email: a@acme.example\n    brands: [acme, globex]\n",
        "recipients[0].brands[1]: unknown brand 'globex'",
        id="recipient-brand-unknown",
    ),
    pytest.param(
        BASE + "recipients:\n  - email: a@acme.example\n    cadence: hourly\n",
        "recipients[0].cadence: must be daily or weekly",
        id="cadence",
    ),
    pytest.param(
        BASE
        + "recipients:\n  - email: ok@acme.example\n  - email: b@acme.example\n    timezone: Mars/Olympus\n",
        "recipients[1].timezone: unknown time zone 'Mars/Olympus'",
        id="timezone",
    ),
    pytest.param(
        BASE + "recipients: lead@acme.example\n", "recipients: must be a list", id="recipients-not-list"
    ),
    pytest.param(BASE + "retention: 30\n", "retention: unknown field", id="top-unknown"),
    pytest.param("- a\n- b\n", "(top level): must be a mapping, got list", id="top-not-map"),
    pytest.param(
        BASE + "sources: [hackernews]\n", "sources: must be a mapping, got list", id="sources-not-map"
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_config_names_the_field(text, expected):
    message = errors_of(text)
    assert message.startswith("invalid configuration:")
    # every error line is "<origin>:<line>: <path>: <message>"
    assert re.search(rf"test\.yaml:\d+: {re.escape(expected)}", message), message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (BASE + "retention_days: 0\n", "retention_days"),
        (BASE + "alert_link: ''\n", "alert_link"),
    ],
)
def test_invalid_top_level_scalars_name_the_field(text, field):
    message = errors_of(text)
    assert field in message
    assert "must be" in message


def test_a_single_problem_is_reported_once():
    # the range error for window_minutes does not also produce a "multiple of 5" error
    message = errors_of(BASE + "detection:\n  window_minutes: 3\n")
    assert message.count("detection.window_minutes") == 1


def test_several_errors_are_reported_together():
    text = textwrap.dedent(
        """
        brands:
          - id: Bad Id
            queries: []
          - id: ok
            queries: [ok]
            feeds: [not-a-url]
        sources:
          myspace: {}
        detection:
          window_minutes: 12
        recipients:
          - email: nope
            cadence: monthly
            timezone: Nowhere/Special
        """
    )
    message = errors_of(text)
    lines = message.splitlines()[1:]
    paths = [line.strip().split(": ")[1] for line in lines]
    assert paths == [
        "brands[0].id",
        "brands[0].queries",
        "brands[1].feeds[0]",
        "sources.myspace",
        "detection.window_minutes",
        "recipients[0].email",
        "recipients[0].cadence",
        "recipients[0].timezone",
    ]


def test_invalid_yaml_is_reported_with_the_origin():
    with pytest.raises(ConfigError, match=r"^test.yaml:\d+: not valid YAML") as info:
        parse_config("brands: [\n  - id: acme\n", origin="test.yaml")
    assert info.value.__cause__ is not None


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_unparseable_query_is_rejected_naming_the_query():
    # Given a watch term with an unbalanced parenthesis, When the configuration is loaded,
    # Then it fails fast naming brands[0].queries[1] rather than loading and having every scan
    # silently skip the term (sources/feed.py and sources/hackernews.py only log a warning).
    message = errors_of("brands:\n  - id: acme\n    queries: [acme, 'acme (outage OR down']\n")
    assert "brands[0].queries[1]" in message


# ---------------------------------------------------------------- lines, the example file, sources


def test_every_error_names_the_line_of_its_field():
    text = textwrap.dedent(
        """\
        brands:
          - id: acme
            queries:
              - acme
              - ''
            feeds: [https://ok.example/f,
                    ftp://old.example/f]
          - name: No Id
            queries: [x]
        sources:
          hackernews:
            max_pages: 0
        recipients:
          - email: nope
        """
    )
    lines = errors_of(text).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "test.yaml:7: brands[0].feeds[1]: must be an http(s) URL",
        "test.yaml:5: brands[0].queries[1]: must be a non-empty string",
        # a missing field points at its nearest parent that is in the file: the list item
        "test.yaml:8: brands[1].id: is required",
        "test.yaml:12: sources.hackernews.max_pages: must be between 1 and 1000, got 0",
        "test.yaml:14: recipients[0].email: is not an email address: 'nope'",
    ]


def test_a_yaml_syntax_error_names_its_line():
    with pytest.raises(ConfigError, match=r"^test.yaml:3: not valid YAML"):
        parse_config("brands:\n  - id: acme\n    queries: acme: widgets\n", origin="test.yaml")


def test_the_example_file_is_valid_and_covers_every_section():
    path = Path(__file__).resolve().parents[2] / "config.example.yaml"
    text = path.read_text(encoding="utf-8")
    config = parse_config(text, origin=str(path))
    import yaml

    raw = yaml.safe_load(text)
    assert set(raw) == {
        "brands",
        "sources",
        "detection",
        "channels",
        "routing",
        "recipients",
        "alert_link",
        "retention_days",
    }
    # every field of a brand, a source, detection, a recipient appears at least once
    assert set(Brand.__slots__) - {"id"} <= set(raw["brands"][0]) | {"id"}
    source_fields = {"enabled", "base_url", "max_pages", "schedule", "secret"}
    assert source_fields <= {key for item in raw["sources"].values() for key in item}
    assert set(raw["detection"]) == set(Detection.__slots__)
    recipient_fields = {key for item in raw["recipients"] for key in item}
    assert recipient_fields == {
        "email",
        "name",
        "brands",
        "cadence",
        "timezone",
        "weekday",
        "hour",
        "sections",
    }
    assert config.source("stackexchange").every_minutes == 15
    assert config.source("reddit").secret == "emberwatch/dev/reddit"


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [("rate(5 minutes)", 5), ("rate(10 minutes)", 10), ("rate(30 minutes)", 30)],
)
def test_a_source_schedule_becomes_minutes(schedule, minutes):
    config = parse_config(BASE + f"sources:\n  hackernews:\n    schedule: {schedule}\n")
    assert config.source("hackernews").every_minutes == minutes
    assert config.source("feed").every_minutes == 5


@pytest.mark.parametrize(
    "schedule", ["rate(1 hour)", "rate(7 minutes)", "every 5 minutes", "cron(0 * * * ? *)"]
)
def test_a_schedule_the_alarms_cannot_follow_is_rejected(schedule):
    message = errors_of(BASE + f"sources:\n  hackernews:\n    schedule: '{schedule}'\n")
    assert re.search(
        r"test\.yaml:6: sources\.hackernews\.schedule: must be one of rate\(5 minutes\)", message
    )


def test_a_source_secret_must_be_a_secret_name():
    message = errors_of(BASE + "sources:\n  x:\n    secret: 'https://vault.example/x'\n")
    assert "test.yaml:6: sources.x.secret: is not a secret name" in message
