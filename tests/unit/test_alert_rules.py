"""The alert says which rule fired: negative-tone spikes and blind spots read differently from volume."""

from __future__ import annotations

import pytest
from emberwatch.render import render, sample_alert_context


@pytest.mark.parametrize(
    ("rule", "kind", "reason", "first_line", "subject"),
    [
        (
            "negative_spike",
            "opened",
            "",
            "FIRE: negative mentions of Acme Widgets",
            "FIRE (high): Acme Widgets negative",
        ),
        (
            "blind_spot",
            "opened",
            "3 failed runs in a row",
            "BLIND SPOT: Emberwatch cannot see Reddit",
            "BLIND SPOT: Reddit",
        ),
        ("blind_spot", "resolved", "", "ALL CLEAR: Reddit is yielding mentions", "ALL CLEAR: Reddit"),
        (
            "volume_spike",
            "opened",
            "",
            "FIRE: mentions of Acme Widgets on Reddit",
            "FIRE (high): Acme Widgets mentions",
        ),
    ],
)
def test_first_line_and_subject_name_the_rule(rule, kind, reason, first_line, subject):
    context = dict(
        sample_alert_context(),
        rule=rule,
        kind=kind,
        reason=reason,
        scope="source:reddit",
        scope_label="Reddit",
    )
    body = render("alert.txt.j2", alert=context)
    assert body.splitlines()[0].startswith(first_line)
    if reason:
        assert reason in body.splitlines()[0]
    assert subject in render("alert_subject.txt.j2", alert=context)
