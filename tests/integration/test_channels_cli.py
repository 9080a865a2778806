"""`emberwatch alert test --channel NAME --config FILE` against moto secrets and `responses`."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import responses
from emberwatch.channels import PAGERDUTY_URL
from emberwatch.cli import main

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
CONFIG = """
brands:
  - id: acme
    name: Acme Widgets
    queries: [acme]
channels:
  slack: {type: slack, secret: emberwatch/test/channels/slack}
  pager: {type: pagerduty, secret: /emberwatch/test/channels/pagerduty}
  missing: {type: teams, secret: emberwatch/test/channels/nothing-here}
"""


@pytest.fixture
def config_file(aws, tmp_path: Path) -> Path:
    boto3.client("secretsmanager").create_secret(
        Name="emberwatch/test/channels/slack", SecretString=json.dumps({"url": SLACK})
    )
    boto3.client("ssm").put_parameter(
        Name="/emberwatch/test/channels/pagerduty", Value="R0UTINGKEY", Type="SecureString"
    )
    path = tmp_path / "emberwatch.yaml"
    path.write_text(CONFIG)
    return path


def test_alert_test_sends_one_marked_alert_through_the_channel(config_file, capsys):
    with responses.RequestsMock() as rsps:
        rsps.post(SLACK, body="ok")
        assert main(["alert", "test", "--channel", "slack", "--config", str(config_file)]) == 0
        (call,) = rsps.calls
    body = json.loads(call.request.body)
    assert body["text"].startswith("TEST alert for Acme Widgets via slack")
    assert "sent through slack" in capsys.readouterr().out


def test_alert_test_pagerduty_trigger_then_resolve_use_the_same_test_key(config_file):
    with responses.RequestsMock() as rsps:
        rsps.post(PAGERDUTY_URL, status=202, json={"status": "success"})
        args = ["alert", "test", "--channel", "pager", "--config", str(config_file)]
        assert main(args) == 0
        assert main([*args, "--kind", "resolved"]) == 0
        trigger, resolve = (json.loads(c.request.body) for c in rsps.calls)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "emberwatch-test|acme|pager"


def test_alert_test_errors_are_clear_and_have_their_exit_codes(config_file, capsys):
    args = ["alert", "test", "--config", str(config_file), "--channel"]
    assert main([*args, "nope"]) == 2
    assert "no channel 'nope'" in capsys.readouterr().err
    with responses.RequestsMock() as rsps:
        rsps.post(SLACK, status=404, body="no_service")
        assert main([*args, "slack"]) == 1
    err = capsys.readouterr().err
    assert "channel slack: HTTP 404" in err and "XXXXSECRET" not in err
    assert main([*args, "missing"]) == 3
    assert "cannot read secret emberwatch/test/channels/nothing-here" in capsys.readouterr().err
