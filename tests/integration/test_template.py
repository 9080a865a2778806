"""Checks on infra/template.yaml that cannot drift from the code.

The template is read with the loader the demo provisions moto from (`sim.provision.load_template`);
the sources come from `emberwatch.models.SOURCES` and the metric names from the `add_metric` calls in
`runtime.py`, so renaming a metric or adding a source without its schedule, alarm or dashboard entry
fails here rather than in a silent dashboard or an alarm that can never fire (or never stop firing).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from emberwatch.config import DEFAULT_ENABLED
from emberwatch.models import SOURCES

from sim.provision import TEMPLATE, load_template

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "emberwatch" / "emberwatch"
PSEUDO_PARAMETERS = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix"}

# Statements allowed `Resource: "*"`, each because the service has no resource-level permissions for
# its actions. The template must say so in a comment right above the Sid.
WILDCARD_RESOURCE_SIDS = {"ScoreToneWithComprehend"}  # comprehend:Detect* act on no resource


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def emitted_metrics(source: str) -> set[str]:
    """Metric names a module emits: every `add_metric(name="...")` in its text."""
    return set(re.findall(r'(?:add_metric|single_metric)\(\s*name="(\w+)"', source))


def metrics_identity() -> tuple[str, str]:
    """The namespace and service dimension observability.py gives every metric."""
    text = (PACKAGE / "observability.py").read_text()
    match = re.search(r'Metrics\(\s*namespace="([^"]+)",\s*service="([^"]+)"', text)
    assert match, "observability.py no longer builds Metrics(namespace=..., service=...) with literals"
    return match.group(1), match.group(2)


def metric_dimensions() -> set[str]:
    """Dimension names a metric can carry: the service, observability.py's defaults, what runtime.py adds."""
    text = (PACKAGE / "runtime.py").read_text()
    defaults = re.findall(r"set_default_dimensions\((\w+)=", (PACKAGE / "observability.py").read_text())
    assert "stage" in defaults, "every metric carries the stage (dev and prod may share an account)"
    return {"service", *defaults, *re.findall(r'add_dimension\(\s*name="(\w+)"', text)}


# ---------------------------------------------------------------- a small evaluator for parameters


def _parameter_value(template: dict[str, Any], name: str, overrides: dict[str, Any]) -> Any:
    spec = template["Parameters"][name]
    value = overrides.get(name, spec.get("Default"))
    if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
        return [item.strip() for item in value.split(",")]  # CloudFormation trims each member
    return value


def evaluate(template: dict[str, Any], value: Any, overrides: dict[str, Any] | None = None) -> Any:
    """Resolve the intrinsics that conditions and alarm settings use, for given parameter values."""
    overrides = overrides or {}
    if isinstance(value, list):
        return [evaluate(template, v, overrides) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((key, arg),) = value.items()
    if key == "Ref":
        return _parameter_value(template, arg, overrides)
    if key == "Condition":
        return evaluate(template, template["Conditions"][arg], overrides)
    if key == "Fn::Join":
        return arg[0].join(str(v) for v in evaluate(template, arg[1], overrides))
    if key == "Fn::Split":
        return evaluate(template, arg[1], overrides).split(arg[0])
    if key == "Fn::Equals":
        left, right = (evaluate(template, a, overrides) for a in arg)
        return str(left) == str(right)
    if key == "Fn::Not":
        return not evaluate(template, arg[0], overrides)
    if key == "Fn::And":
        return all(evaluate(template, a, overrides) for a in arg)
    if key == "Fn::Or":
        return any(evaluate(template, a, overrides) for a in arg)
    if key == "Fn::If":
        condition = evaluate(template, template["Conditions"][arg[0]], overrides)
        return evaluate(template, arg[1] if condition else arg[2], overrides)
    raise AssertionError(f"the test's evaluator does not know {key}")


def rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", expression)
    assert match, f"not a rate expression: {expression}"
    return int(match.group(1)) * (3600 if match.group(2).startswith("hour") else 60)


# ---------------------------------------------------------------- functions


def test_every_function_logs_to_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    assert functions
    used: set[str] = set()
    for name, function in functions.items():
        props = function["Properties"]
        ref = props.get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(ref, dict) and "Ref" in ref, f"{name}: LoggingConfig.LogGroup must !Ref a log group"
        group = template["Resources"][ref["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"].get("RetentionInDays"), f"{name}: its log group keeps events forever"
        # the name Lambda would use itself, so nothing else creates an unmanaged twin
        assert group["Properties"]["LogGroupName"] == {
            "Fn::Sub": "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]
        }, name
        assert ref["Ref"] not in used, f"{name} shares log group {ref['Ref']}"
        used.add(ref["Ref"])


def test_scan_schedules_cover_exactly_the_known_sources(template: dict[str, Any]) -> None:
    events = template["Resources"]["ScanFunction"]["Properties"]["Events"]
    scheduled = [json.loads(event["Properties"]["Input"])["detail"]["source"] for event in events.values()]
    unknown = set(scheduled) - set(SOURCES)
    assert not unknown, f"schedules for sources emberwatch.models.SOURCES does not know: {sorted(unknown)}"
    missing = set(SOURCES) - set(scheduled)
    assert not missing, f"sources without a scan schedule: {sorted(missing)}"
    assert len(scheduled) == len(set(scheduled)), f"a source is scheduled twice: {sorted(scheduled)}"


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def test_function_policies_grant_no_wildcards(template: dict[str, Any]) -> None:
    text = TEMPLATE.read_text().splitlines()
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" not in policy:
                # a SAM policy template: scoped by its arguments, which must not be "*"
                ((template_name, arguments),) = policy.items()
                for key, value in (arguments or {}).items():
                    assert value != "*", f"{name}: {template_name}.{key} is '*'"
                continue
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r}; use a scoped statement"
            for statement in _statements(policy):
                sid = statement.get("Sid", "<no Sid>")
                assert "NotAction" not in statement and "NotResource" not in statement, f"{name}: {sid}"
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                for action in actions:
                    assert action != "*" and not action.endswith(":*"), f"{name}: {sid} allows {action}"
                resources = statement["Resource"]
                resources = resources if isinstance(resources, list) else [resources]
                if "*" not in resources:
                    continue
                assert sid in WILDCARD_RESOURCE_SIDS, f"{name}: {sid} grants Resource '*'"
                line = next(i for i, line in enumerate(text) if re.search(rf"Sid: {sid}\s*$", line))
                assert text[line - 1].strip().startswith("#"), f"{name}: say above Sid {sid} why it needs '*'"


# ---------------------------------------------------------------- alarms


def test_alarms_notify_the_alert_topic(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert {"Ref": "AlertTopic"} in alarm["Properties"].get("AlarmActions", []), name


def test_alarms_watch_metrics_the_code_emits(template: dict[str, Any]) -> None:
    namespace, service = metrics_identity()
    emitted = emitted_metrics(
        (PACKAGE / "runtime.py").read_text()
        + (PACKAGE / "dispatch.py").read_text()
        + (PACKAGE / "observability.py").read_text()  # ConfigInvalid, a single metric (service only)
    )
    dimensions = metric_dimensions()
    for name, alarm in _resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if props["Namespace"] != namespace:
            continue
        assert props["MetricName"] in emitted, (
            f"{name} watches {props['MetricName']}, which runtime.py never emits "
            f'(metrics.add_metric(name="{props["MetricName"]}", ...))'
        )
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert {"service", "stage"} <= set(dims) <= dimensions, (
            f"{name}: dimensions {sorted(dims)}, emitted with {sorted(dimensions)}"
        )
        assert dims["service"] == service, name


def _staleness_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        dims["source"]: alarm
        for alarm in _resources(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ScanSucceeded"
        for dims in [{d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}]
    }


def test_every_source_has_a_staleness_alarm_switched_by_monitored_sources(template: dict[str, Any]) -> None:
    alarms = _staleness_alarms(template)
    assert set(alarms) == set(SOURCES), f"staleness alarms for {sorted(alarms)}, sources {sorted(SOURCES)}"
    parameter = template["Parameters"]["MonitoredSources"]
    assert set(parameter["AllowedValues"]) == set(SOURCES)

    def monitored(value: str) -> set[str]:
        return {
            source
            for source, alarm in alarms.items()
            if evaluate(template, {"Condition": alarm["Condition"]}, {"MonitoredSources": value})
        }

    # by default, the sources that run without credentials, and only those
    default = monitored(parameter["Default"])
    assert default == set(DEFAULT_ENABLED), f"monitored by default: {sorted(default)}"
    for source in SOURCES:  # each condition matches its own name, not a neighbour's
        assert monitored(source) == {source}, (
            f"MonitoredSources={source} monitors {sorted(monitored(source))}"
        )
        others = " , ".join(s for s in SOURCES if s != source)
        assert source not in monitored(others), f"{source} is monitored when it is not listed"


def test_staleness_windows_fit_each_schedule(template: dict[str, Any]) -> None:
    """30 minutes, or two scan intervals for a source scanned less often, for every allowed rate."""
    alarms = _staleness_alarms(template)
    for event in template["Resources"]["ScanFunction"]["Properties"]["Events"].values():
        source = json.loads(event["Properties"]["Input"])["detail"]["source"]
        expression = event["Properties"]["ScheduleExpression"]
        if isinstance(expression, dict):  # a parameter: check every value it allows
            parameter = expression["Ref"]
            cases = [{parameter: v} for v in template["Parameters"][parameter]["AllowedValues"]]
        else:
            cases = [{}]
        props = alarms[source]["Properties"]
        assert props["TreatMissingData"] == "breaching", source  # a crashed or missing run counts
        assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == 1, source
        for overrides in cases:
            rate = rate_seconds(evaluate(template, expression, overrides))
            window = int(evaluate(template, props["EvaluationPeriods"], overrides)) * int(props["Period"])
            assert window == max(1800, 2 * rate), f"{source} at {overrides or expression}: {window} s"
            assert props.get("DatapointsToAlarm") in (None, props["EvaluationPeriods"]), source


# ---------------------------------------------------------------- dashboard


def _substitute(template: dict[str, Any], body: str) -> str:
    """Fn::Sub with dummy values; every ${...} must name a parameter, resource or pseudo parameter."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # ${!Literal} is Fn::Sub's escape for a literal ${Literal}
            return "${" + match.group(2) + "}"
        name = match.group(2).split(".", 1)[0]
        known = name in template["Parameters"] or name in template["Resources"] or name in PSEUDO_PARAMETERS
        assert known, f"dashboard body references ${{{match.group(2)}}}, which the template does not define"
        return "dummy-value"

    return re.sub(r"\$\{(!?)([^}]*)\}", replace, body)


def _dashboard_metrics(body: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Each graphed metric as (namespace, name, dimension, value, ...), and the SEARCH expressions."""
    metrics: list[list[str]] = []
    searches: list[str] = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        previous: list[str] = []
        for entry in widget["properties"]["metrics"]:
            fields = [f for f in entry if not isinstance(f, dict)]
            options = next((f for f in entry if isinstance(f, dict)), {})
            if not fields:
                searches.append(options["expression"])
                continue
            # "." repeats the field at the same position in the previous metric
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            metrics.append(fields)
            previous = fields
    return metrics, searches


def test_dashboard_is_json_and_graphs_only_metrics_the_code_emits(template: dict[str, Any]) -> None:
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(_substitute(template, dashboard["Properties"]["DashboardBody"]["Fn::Sub"]))
    namespace, service = metrics_identity()
    emitted = emitted_metrics((PACKAGE / "runtime.py").read_text() + (PACKAGE / "dispatch.py").read_text())
    metrics, searches = _dashboard_metrics(body)
    graphed: set[str] = set()
    for fields in metrics:
        if fields[0] != namespace:
            continue
        dims = dict(zip(fields[2::2], fields[3::2], strict=True))
        assert fields[1] in emitted, (
            f"the dashboard graphs {fields[1]}, which runtime.py and dispatch.py never emit"
        )
        assert dims.get("service") == service and "stage" in dims and set(dims) <= metric_dimensions(), fields
        graphed.add(fields[1])
    for expression in searches:
        match = re.fullmatch(
            r"SEARCH\('\{(\w+),([\w,]+)\} MetricName=\"(\w+)\" stage=\"[\w-]+\"', '\w+', \d+\)", expression
        )
        assert match, f"unexpected dashboard expression: {expression}"
        assert match.group(1) == namespace, expression
        assert set(match.group(2).split(",")) == metric_dimensions(), expression
        assert match.group(3) in emitted, (
            f"the dashboard searches {match.group(3)}, which runtime.py and dispatch.py never emit"
        )
        graphed.add(match.group(3))
    wanted = {"MentionsStored", "SourceErrors", "IncidentsOpened", "IncidentsResolved", "NotificationsSent"}
    wanted |= {"NotificationFailures", "DigestsSent", "DigestFailures", "ScanSucceeded"}
    assert wanted <= graphed, f"not on the dashboard: {sorted(wanted - graphed)}"
    aws = {(fields[0], fields[1]) for fields in metrics}
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Duration")} <= aws
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in aws
    assert "Dashboard" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
