"""Point 2, alert channels: Slack, Teams, PagerDuty and signed webhooks failing (5xx, throttling,
timeouts, resets, HTML answers) are retried within the run, then carried to the next run: every
channel receives the notification exactly once, and a webhook body always carries a valid signature.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from emberwatch.channels import PAGERDUTY_URL, verify
from emberwatch.detect import DetectReport, deliver_pending

from tests.integration.test_channels_delivery import (
    HMAC_KEY,
    HOOK,
    NOW,
    SLACK,
    TEAMS,
    dispatcher,
    incident,
    ok_everywhere,
    secrets,  # noqa: F401 (a fixture)
)
from tests.reliability.faults import FAULT_KINDS, SourceFaults
from tests.reliability.ledger import record

pytestmark = pytest.mark.reliability

URLS = {"slack": SLACK, "teams": TEAMS, "pager": PAGERDUTY_URL, "hook": HOOK}
# a fault inside one run's retries, and one that outlasts the run (carried to the next)
CASES = [(kind, rate) for kind in FAULT_KINDS for rate in (0.5, 1.0)]


@pytest.mark.parametrize(("kind", "rate"), CASES, ids=[f"{k}-{int(r * 100)}pct" for k, r in CASES])
def test_channel_faults_deliver_every_channel_exactly_once(aws, stack, store, secrets, kind, rate):  # noqa: F811
    notify = dispatcher(store, stack)
    opened = incident()
    store.open_incident(opened)
    delivered: list[str] = []
    reports = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ok_everywhere(rsps)
        # an HTML page (200 from a proxy or portal, or a CDN's 502) is not a delivery: retried next run
        with SourceFaults(rate=rate, seed=len(kind), kinds=(kind,), html_statuses=(200, 502)) as faults:
            for k in range(4):  # the faults' run, then the next runs (five minutes apart)
                faults.active = k == 0
                report = DetectReport()
                if opened.pending_kind:  # as the detector does: only what is still owed
                    deliver_pending(
                        opened,
                        None,
                        NOW + k * timedelta(minutes=5),
                        store=store,
                        notify=notify,
                        report=report,
                    )
                reports.append(report)
        for call in rsps.calls:
            delivered.append(call.request.url)
            if call.request.url == HOOK:
                headers = call.request.headers
                body = (
                    call.request.body if isinstance(call.request.body, bytes) else call.request.body.encode()
                )
                assert verify(
                    HMAC_KEY.encode(),
                    headers["X-Emberwatch-Timestamp"],
                    body,
                    headers["X-Emberwatch-Signature"],
                    now=NOW.timestamp(),
                )
    counts = {name: delivered.count(url) for name, url in URLS.items()}
    lost = sum(1 for n in counts.values() if n == 0)
    duplicates = sum(max(0, n - 1) for n in counts.values())
    record(
        "aws faults",
        faults=faults.total,
        survived=faults.total if not (lost or duplicates) else 0,
        lost=lost,
        duplicates=duplicates,
        channel_fault=kind,
        failures_per_run=[len(r.failures) for r in reports],
    )
    assert faults.total > 0
    assert counts == dict.fromkeys(URLS, 1), (counts, [r.failures for r in reports])
    assert opened.pending_kind is None
