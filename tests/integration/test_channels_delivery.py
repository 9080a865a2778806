"""Channels against moto (Secrets Manager, SSM, DynamoDB) and `responses` (the webhooks' HTTP).

Each notification goes to each routed channel once: a retried or concurrent run sends nothing
twice, and a channel that fails is retried the next run without re-sending to those that worked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import responses
from emberwatch.alerts import AlertBuilder, SnsAlerter
from emberwatch.channels import PAGERDUTY_URL, ChannelSender, Dispatcher, verify
from emberwatch.config import parse_config
from emberwatch.detect import DetectReport, deliver_pending
from emberwatch.http import HttpClient
from emberwatch.models import Incident

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
TEAMS = "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/ghi/jkl"
HOOK = "https://hooks.acme.example/emberwatch"
HMAC_KEY = "whsec-test-key"
NOW = datetime(2024, 5, 13, 7, 5, tzinfo=UTC)
CONFIG = """
brands:
  - id: acme
    name: Acme Widgets
    queries: [acme]
channels:
  slack: {type: slack, secret: emberwatch/test/channels/slack}
  teams: {type: teams, secret: /emberwatch/test/channels/teams}
  pager: {type: pagerduty, secret: emberwatch/test/channels/pagerduty}
  hook: {type: webhook, secret: emberwatch/test/channels/hook}
routing:
  - channels: [sns, slack, teams, pager, hook]
alert_link: https://runbooks.acme.example/social-fire
"""


@pytest.fixture
def secrets(aws):
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="emberwatch/test/channels/slack", SecretString=json.dumps({"url": SLACK}))
    sm.create_secret(Name="emberwatch/test/channels/pagerduty", SecretString="R0UTINGKEY")
    sm.create_secret(
        Name="emberwatch/test/channels/hook", SecretString=json.dumps({"url": HOOK, "hmac_key": HMAC_KEY})
    )
    boto3.client("ssm").put_parameter(
        Name="/emberwatch/test/channels/teams", Value=TEAMS, Type="SecureString"
    )


def incident(kind: str = "opened") -> Incident:
    return Incident(
        brand="acme",
        scope="brand",
        rule="volume_spike",
        opened_at=NOW - timedelta(minutes=20),
        status="open",
        severity="high",
        observed=80,
        expected=8.0,
        peak=80,
        notified_level=80,
        last_seen_at=NOW,
        pending_kind=kind,
        pending_level=80,
    )


def dispatcher(store, stack=None, *, sns_client=None):
    config = parse_config(CONFIG)
    brands = {b.id: b for b in config.brands}
    topic = stack.physical["AlertTopic"]["Ref"] if stack else "arn:aws:sns:us-east-1:123456789012:none"
    sns = SnsAlerter(topic, store=store, brands=brands, link=config.alert_link, client=sns_client)
    http = HttpClient(sleep=lambda _s: None)
    sender = ChannelSender(config.channels, http=http, sns=sns, wall=lambda: NOW.timestamp())
    return Dispatcher(config, AlertBuilder(store=store, brands=brands, link=config.alert_link), sender)


def ok_everywhere(rsps: responses.RequestsMock) -> None:
    rsps.post(SLACK, body="ok")
    rsps.post(TEAMS, body="1")
    rsps.post(PAGERDUTY_URL, status=202, json={"status": "success", "dedup_key": "x"})
    rsps.post(HOOK, status=204)


def test_one_notification_goes_once_to_every_routed_channel_in_its_format(aws, stack, store, secrets, caplog):
    notify = dispatcher(store, stack)
    report = DetectReport()
    with responses.RequestsMock() as rsps:
        ok_everywhere(rsps)
        opened = incident()
        store.open_incident(opened)
        deliver_pending(opened, None, NOW, store=store, notify=notify, report=report)
        calls = {call.request.url: call.request for call in rsps.calls}
    assert report.failures == []
    assert [n.rsplit("@", 1)[1] for n in report.notifications] == ["sns", "slack", "teams", "pager", "hook"]
    assert set(calls) == {SLACK, TEAMS, PAGERDUTY_URL, HOOK}
    assert json.loads(calls[SLACK].body)["blocks"][0]["type"] == "header"
    teams = json.loads(calls[TEAMS].body)
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    pd = json.loads(calls[PAGERDUTY_URL].body)
    assert pd["event_action"] == "trigger" and pd["routing_key"] == "R0UTINGKEY"
    assert pd["dedup_key"] == opened.key
    # the webhook is signed with the key from the secret, over the exact bytes sent
    hook = calls[HOOK]
    assert verify(
        HMAC_KEY.encode(),
        hook.headers["X-Emberwatch-Timestamp"],
        hook.body,
        hook.headers["X-Emberwatch-Signature"],
        now=NOW.timestamp(),
    )
    assert hook.headers["X-Emberwatch-Delivery"] == f"{opened.key}#opened#80"
    for request in calls.values():  # every request with a timeout, TLS verified
        assert request.req_kwargs["timeout"] and request.req_kwargs["verify"] not in (False, None)
    # no URL, routing key or HMAC key in the logs
    assert not any(s in caplog.text for s in (SLACK, TEAMS, "R0UTINGKEY", HMAC_KEY, "XXXXSECRET"))

    # When a run that crashed before saving the incident is retried (the copy still owes it), nothing
    # is sent twice
    again = DetectReport()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ok_everywhere(rsps)
        deliver_pending(incident(), None, NOW, store=store, notify=notify, report=again)
        assert len(rsps.calls) == 0
    assert again.notifications == []


def test_a_failing_channel_is_retried_next_run_without_resending_to_the_others(aws, stack, store, secrets):
    notify = dispatcher(store, stack)
    opened = incident()
    store.open_incident(opened)
    first = DetectReport()
    with responses.RequestsMock() as rsps:
        ok_everywhere(rsps)
        rsps.replace(responses.POST, PAGERDUTY_URL, status=503)  # PagerDuty down for the whole run
        deliver_pending(opened, None, NOW, store=store, notify=notify, report=first)
        pager_calls = [c for c in rsps.calls if c.request.url == PAGERDUTY_URL]
    assert len(pager_calls) == 4  # retried within the run's budget (HttpClient.attempts)
    assert len(first.notifications) == 4 and len(first.failures) == 1 and "via pager" in first.failures[0]
    assert "R0UTINGKEY" not in first.failures[0]
    stored = store.active_incident("acme", "brand", "volume_spike")
    assert opened.pending_kind == stored.pending_kind == "opened"  # still owed to PagerDuty

    # Next run: only PagerDuty is called, once
    second = DetectReport()
    with responses.RequestsMock() as rsps:
        rsps.post(PAGERDUTY_URL, status=202, json={"status": "success"})
        deliver_pending(opened, None, NOW + timedelta(minutes=5), store=store, notify=notify, report=second)
        assert [c.request.url for c in rsps.calls] == [PAGERDUTY_URL]
    assert second.notifications == [f"opened:{opened.key}@pager"] and second.failures == []
    assert opened.pending_kind is None


def test_throttled_channel_answer_is_retried_within_the_run_and_sent_once(aws, stack, store, secrets):
    notify = dispatcher(store, stack)
    opened = incident()
    store.open_incident(opened)
    report = DetectReport()
    with responses.RequestsMock() as rsps:
        ok_everywhere(rsps)
        rsps.replace(responses.POST, SLACK, status=429, headers={"Retry-After": "1"})
        rsps.add(responses.POST, SLACK, body="ok")  # the next attempt goes through
        deliver_pending(opened, None, NOW, store=store, notify=notify, report=report)
        slack_calls = [c for c in rsps.calls if c.request.url == SLACK]
    assert len(slack_calls) == 2 and report.failures == []
    assert report.notifications.count(f"opened:{opened.key}@slack") == 1


def test_a_channel_claimed_by_a_concurrent_run_keeps_the_notification_pending(aws, stack, store, secrets):
    notify = dispatcher(store, stack)
    opened = incident()
    store.open_incident(opened)
    # another run is sending to Slack right now (claimed, not completed)
    assert store.claim(f"N#{opened.key}", "opened#80#slack", NOW, ttl_days=1, lease_seconds=120)
    report = DetectReport()
    with responses.RequestsMock() as rsps:
        ok_everywhere(rsps)
        rsps.remove(responses.POST, SLACK)
        deliver_pending(opened, None, NOW, store=store, notify=notify, report=report)
    assert "@slack" not in " ".join(report.notifications) and len(report.notifications) == 4
    assert opened.pending_kind == "opened"  # if that run fails, the next run still owes Slack


def test_resolve_goes_to_pagerduty_as_resolve_with_the_same_dedup_key(aws, stack, store, secrets):
    notify = dispatcher(store, stack)
    closed = incident("resolved")
    closed.status, closed.resolved_at = "resolved", NOW
    store.open_incident(closed)
    with responses.RequestsMock() as rsps:
        ok_everywhere(rsps)
        deliver_pending(closed, None, NOW, store=store, notify=notify, report=DetectReport())
        (pd,) = [json.loads(c.request.body) for c in rsps.calls if c.request.url == PAGERDUTY_URL]
    assert pd == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": closed.key}


def test_a_secret_without_the_needed_field_fails_naming_where_not_what(aws, stack, store, secrets):
    boto3.client("secretsmanager").put_secret_value(
        SecretId="emberwatch/test/channels/hook", SecretString=json.dumps({"url": HOOK})
    )
    notify = dispatcher(store, stack)
    opened = incident()
    store.open_incident(opened)
    report = DetectReport()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ok_everywhere(rsps)
        deliver_pending(opened, None, NOW, store=store, notify=notify, report=report)
    (failure,) = report.failures
    assert "emberwatch/test/channels/hook has no 'hmac_key'" in failure and HOOK not in failure


def test_secrets_are_json_objects_or_the_bare_value(aws):
    from emberwatch.channels import read_secret

    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="emberwatch/test/channels/a", SecretString='{"url": "https://x.example/h"}')
    sm.create_secret(Name="emberwatch/test/channels/b", SecretString="00112233445566778899\n")
    boto3.client("ssm").put_parameter(Name="/emberwatch/test/channels/c", Value="k3y", Type="SecureString")
    assert read_secret("emberwatch/test/channels/a") == {"url": "https://x.example/h"}
    assert read_secret("emberwatch/test/channels/b") == "00112233445566778899"  # digits, not a number
    assert read_secret("/emberwatch/test/channels/c") == "k3y"  # SSM SecureString, decrypted
