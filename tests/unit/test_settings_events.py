"""Environment settings and the scheduled event: both fail with messages that name what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from emberwatch.events import EventError, ScheduledEvent, scheduled_event
from emberwatch.settings import Settings, SettingsError

ENV = {"TABLE_NAME": "emberwatch-dev", "CONFIG_PARAMETER": "/emberwatch/dev/config"}
TOPIC = "arn:aws:sns:us-east-1:123456789012:emberwatch-alerts"


# ---------------------------------------------------------------- Settings.from_env


def test_minimal_environment_gives_defaults():
    settings = Settings.from_env(ENV)
    assert settings == Settings(table_name="emberwatch-dev", config_parameter="/emberwatch/dev/config")
    assert settings.stage == "dev"
    assert settings.alert_topic_arn is None


def test_full_environment_is_read_and_stripped():
    env = {
        **ENV,
        "STAGE": " prod ",
        "CREDENTIALS_SECRET": "emberwatch/creds",
        "ALERT_TOPIC_ARN": TOPIC,
        "SENDER_EMAIL": "digest@acme.example",
        "ALERT_LINK": "https://console.example",
    }
    settings = Settings.from_env(env, require=("ALERT_TOPIC_ARN", "SENDER_EMAIL"))
    assert settings.stage == "prod"
    assert settings.credentials_secret == "emberwatch/creds"
    assert settings.alert_topic_arn == TOPIC
    assert settings.sender_email == "digest@acme.example"
    assert settings.alert_link == "https://console.example"


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "from-os")
    monkeypatch.setenv("CONFIG_PARAMETER", "/from/os")
    assert Settings.from_env().table_name == "from-os"


@pytest.mark.parametrize("name", ["TABLE_NAME", "CONFIG_PARAMETER"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_required_variable_is_named(name, value):
    env = dict(ENV)
    if value is None:
        del env[name]
    else:
        env[name] = value
    with pytest.raises(SettingsError, match=f"environment variable {name} is required but not set"):
        Settings.from_env(env)


@pytest.mark.parametrize("name", ["ALERT_TOPIC_ARN", "SENDER_EMAIL"])
def test_variable_required_by_the_function_is_named(name):
    # optional in general, but the function that asks for it cannot start without it
    Settings.from_env(ENV)  # fine when not required
    with pytest.raises(SettingsError, match=f"environment variable {name} is required"):
        Settings.from_env(ENV, require=(name,))


def test_topic_that_is_not_an_arn_is_named():
    with pytest.raises(SettingsError, match=r"ALERT_TOPIC_ARN is not an ARN: 'emberwatch-alerts'"):
        Settings.from_env({**ENV, "ALERT_TOPIC_ARN": "emberwatch-alerts"})


@pytest.mark.parametrize("value", ["digest", "digest@", "@acme.example", "digest@acme", "a b@acme.example"])
def test_sender_that_is_not_an_email_is_named(value):
    with pytest.raises(SettingsError, match="SENDER_EMAIL is not an email address"):
        Settings.from_env({**ENV, "SENDER_EMAIL": value})


def test_config_parameter_must_be_an_ssm_path():
    with pytest.raises(
        SettingsError, match=r"CONFIG_PARAMETER must be an SSM parameter name starting with '/'"
    ):
        Settings.from_env({**ENV, "CONFIG_PARAMETER": "emberwatch-config"})


def test_settings_error_is_a_runtime_error():
    assert issubclass(SettingsError, RuntimeError)


# ---------------------------------------------------------------- ScheduledEvent


NOW = datetime(2024, 5, 13, 14, 5, tzinfo=UTC)


def test_parses_the_envelope_the_schedules_send():
    # Given the event a scan schedule sends (as documented in docs/design.md)
    event = scheduled_event("hackernews", NOW, brand="acme")
    # When it is parsed
    parsed = ScheduledEvent.parse(event)
    # Then "now" comes from `time` and the work from `detail`
    assert parsed.time == NOW
    assert parsed.time.tzinfo is not None
    assert parsed.id == "scan-hackernews-20240513T140500"
    assert parsed.detail == {"source": "hackernews", "brand": "acme"}
    assert parsed.source() == "hackernews"


def test_scheduled_event_has_the_documented_shape():
    event = scheduled_event(None, NOW, kind="detect")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "emberwatch.scheduler"
    assert event["time"] == "2024-05-13T14:05:00Z"
    assert event["detail"] == {}
    assert event["id"] == "detect-all-20240513T140500"


def test_parses_the_literal_design_doc_event():
    event = {
        "version": "0",
        "id": "a1b2c3d4-execution",
        "detail-type": "Scheduled Event",
        "source": "emberwatch.scheduler",
        "time": "2024-05-13T14:05:00Z",
        "detail": {"source": "feed"},
    }
    parsed = ScheduledEvent.parse(event)
    assert parsed.id == "a1b2c3d4-execution"
    assert parsed.source() == "feed"


def test_time_with_an_offset_is_converted_to_utc():
    parsed = ScheduledEvent.parse({"time": "2024-05-13T16:05:00+02:00"})
    assert parsed.time == NOW
    assert parsed.time.utcoffset() == timedelta(0)


def test_naive_time_is_taken_as_utc():
    parsed = ScheduledEvent.parse({"time": "2024-05-13T14:05:00"})
    assert parsed.time == NOW


def test_missing_detail_and_id_default_to_empty():
    parsed = ScheduledEvent.parse({"time": "2024-05-13T14:05:00Z", "detail": None})
    assert parsed.detail == {}
    assert parsed.id == ""


def test_digest_period_defaults_to_daily_and_accepts_weekly():
    assert ScheduledEvent.parse(scheduled_event(None, NOW)).period() == "daily"
    assert ScheduledEvent.parse(scheduled_event(None, NOW, period="weekly")).period() == "weekly"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], r"event must be an object, got list"),
        ("2024-05-13T14:05:00Z", r"event must be an object, got str"),
        (None, r"event must be an object, got NoneType"),
        ({"detail": {}}, r"event field 'time' is missing"),
        ({"time": 1715609100}, r"event field 'time' is missing"),
        ({"time": "yesterday"}, r"event field 'time' is not ISO 8601: 'yesterday'"),
        ({"time": "2024-13-45T99:00:00Z"}, r"event field 'time' is not ISO 8601"),
        (
            {"time": "2024-05-13T14:05:00Z", "detail": ["hackernews"]},
            r"event field 'detail' must be an object",
        ),
        ({"time": "2024-05-13T14:05:00Z", "detail": "hackernews"}, r"event field 'detail' must be an object"),
    ],
)
def test_wrong_shapes_are_rejected_naming_the_field(event, message):
    with pytest.raises(EventError, match=message):
        ScheduledEvent.parse(event)


@pytest.mark.parametrize("detail", [{}, {"source": "myspace"}, {"source": None}, {"source": ["feed"]}])
def test_scan_event_without_a_known_source_names_detail_source(detail):
    event = ScheduledEvent.parse({"time": "2024-05-13T14:05:00Z", "detail": detail})
    with pytest.raises(EventError, match=r"event field 'detail.source' must be one of .*hackernews"):
        event.source()


def test_unknown_period_names_detail_period():
    event = ScheduledEvent.parse(scheduled_event(None, NOW, period="monthly"))
    with pytest.raises(
        EventError, match=r"event field 'detail.period' must be daily or weekly; got 'monthly'"
    ):
        event.period()


def test_event_error_is_a_value_error():
    assert issubclass(EventError, ValueError)
