"""A configuration that became invalid in SSM: the functions keep the last good one, count ConfigInvalid
and go on watching; never stop."""

from __future__ import annotations

import itertools
import json

import pytest
import responses
from emberwatch.config import ConfigError
from emberwatch.events import scheduled_event
from emberwatch.runtime import Runtime, due
from emberwatch.settings import Settings

from tests.conftest import CONFIG_YAML, push_config
from tests.integration.test_scan_handler import NOW, hn_page, serve_hn

BROKEN = CONFIG_YAML.replace("window_minutes: 30", "window_minutes: 7") + "colour: red\n"


def runtime_for(stack) -> Runtime:
    """A fresh container: the function's own environment from the template."""
    return Runtime(settings=Settings.from_env(stack.function_environment("ScanFunction")))


def emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' in line]


def config_invalid_datapoints(text: str) -> list[dict]:
    return [line for line in emf_lines(text) if "ConfigInvalid" in line]


@pytest.fixture
def emf(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_a_warm_container_keeps_its_config_when_ssm_turns_invalid(aws, stack, store, emf, capsys, caplog):
    runtime = runtime_for(stack)
    good = runtime.config
    assert good.detection.window_minutes == 30
    capsys.readouterr()

    # When someone edits the parameter into something invalid
    push_config(aws, stack, BROKEN)
    kept = runtime.config
    again = runtime.config

    # Then the container goes on with the last good configuration
    assert kept is good and again is good
    # every read of the invalid text counts ConfigInvalid (service dimension only), the alarm watches it
    (first, _second) = config_invalid_datapoints(capsys.readouterr().out)
    assert first["ConfigInvalid"] == [1.0] or first["ConfigInvalid"] == 1.0
    assert first["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "stage"]]
    assert first["stage"] == "dev"
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Emberwatch"
    # the errors are logged once, each with its line and field
    logged = list({id(r): r for r in caplog.records if "invalid" in r.getMessage()}.values())
    assert len(logged) == 1  # (caplog may see a record through two handlers: counted by identity)
    errors = logged[0].errors
    assert any("ssm:/emberwatch/dev/config:" in e and "detection.window_minutes" in e for e in errors)
    assert any("colour: unknown field" in e for e in errors)

    # And a fixed configuration is picked up again
    push_config(aws, stack, CONFIG_YAML.replace("min_mentions: 10", "min_mentions: 11"))
    assert runtime.config.detection.min_mentions == 11


def test_a_fresh_container_falls_back_on_the_copy_in_the_table(aws, stack, store):
    # Given a container saw the good configuration (and kept a copy in the table)
    assert runtime_for(stack).config.brands
    assert "acme widgets" in store.last_good_config()

    # When the parameter turns invalid and a new container starts
    push_config(aws, stack, BROKEN)
    config = runtime_for(stack).config

    # Then it runs with the last good configuration from the table
    assert config.brand("acme").name == "Acme Widgets" and config.detection.window_minutes == 30
    # and the invalid text never replaced the copy
    assert "colour" not in store.last_good_config()


def test_without_any_good_configuration_the_error_lists_every_problem(aws, stack, store):
    push_config(aws, stack, BROKEN)
    with pytest.raises(ConfigError) as info:
        _ = runtime_for(stack).config
    message = str(info.value)
    assert "detection.window_minutes: must be a multiple of 5" in message
    assert "colour: unknown field" in message
    assert "no earlier valid configuration" in message


@responses.activate
def test_the_scan_handler_keeps_watching_with_an_invalid_config(aws, stack, store, handler, lambda_context):
    calls: list[dict] = []
    serve_hn({'"acme widgets"': [hn_page()]}, calls)
    app = handler("scan")
    app.lambda_handler(scheduled_event("hackernews", NOW.replace(minute=0)), lambda_context)

    push_config(aws, stack, BROKEN)
    result = app.lambda_handler(scheduled_event("hackernews", NOW), lambda_context)

    # the scan ran (with the last good configuration) instead of failing
    assert "acme" in result["brands"] and result["brands"]["acme"]["errors"] == []


def test_a_source_scanned_every_15_minutes_runs_on_one_tick_in_three():
    from datetime import timedelta

    ticks = [NOW + timedelta(minutes=5 * i, seconds=17) for i in range(12)]
    assert all(due(t, 5) for t in ticks)
    runs = [t for t in ticks if due(t, 15)]
    assert len(runs) == 4
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(runs))
