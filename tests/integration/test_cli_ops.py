"""The operating commands against moto: config push, status, forget, scan --once, backfill; exit codes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import responses
from emberwatch.cli import main
from emberwatch.models import Author, Engagement, Incident, Mention

from tests.conftest import CONFIG_YAML
from tests.integration.test_scan_handler import HN_URL, hn_page, serve_hn

NOW = datetime.now(UTC).replace(microsecond=0)


def names(stack) -> list[str]:
    return [
        "--table",
        stack.physical["MentionsTable"]["Ref"],
        "--parameter",
        stack.physical["ConfigParameter"]["Ref"],
    ]


def ssm_value(aws, stack) -> dict:
    return aws.client("ssm").get_parameter(Name=stack.physical["ConfigParameter"]["Ref"])["Parameter"]


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML, encoding="utf-8")
    return path


# ---------------------------------------------------------------- config push


def test_push_writes_a_valid_config_and_prints_the_version(aws, stack, store, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML.replace("min_mentions: 10", "min_mentions: 14"), encoding="utf-8")
    before = ssm_value(aws, stack)["Version"]

    code = main(["config", "push", str(path), *names(stack)])

    assert code == 0
    out = capsys.readouterr().out
    after = ssm_value(aws, stack)
    assert after["Version"] == before + 1 and f"(version {after['Version']})" in out
    assert "min_mentions: 14" in after["Value"]
    assert "min_mentions: 14" in store.last_good_config()  # the functions' fallback copy too


def test_push_of_an_invalid_config_writes_nothing_and_lists_every_error(aws, stack, store, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "brands:\n  - id: Bad Id\n    queries: []\nsources:\n  myspace: {}\nretention_days: 0\n",
        encoding="utf-8",
    )
    before = ssm_value(aws, stack)

    code = main(["config", "push", str(path), *names(stack)])

    assert code == 2
    err = capsys.readouterr().err
    for expected in (
        f"{path}:2: brands[0].id: must be lowercase",
        f"{path}:3: brands[0].queries: must not be empty",
        f"{path}:5: sources.myspace: unknown source",
        f"{path}:6: retention_days: must be between 1 and 3650",
    ):
        assert expected in err
    assert ssm_value(aws, stack) == before
    assert store.last_good_config() is None


def test_push_finds_the_parameter_through_the_stack_outputs(aws, stack, store, config_file, capsys):
    parameter = stack.physical["ConfigParameter"]["Ref"]
    aws.client("cloudformation").create_stack(
        StackName="emberwatch-test",
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "ConfigParameterName": {"Value": parameter},
                    "TableName": {"Value": stack.physical["MentionsTable"]["Ref"]},
                },
            }
        ),
    )
    assert main(["config", "push", str(config_file), "--stack", "emberwatch-test"]) == 0
    assert parameter in capsys.readouterr().out
    assert store.last_good_config() == CONFIG_YAML


def test_push_without_a_target_is_a_usage_error(aws, config_file, monkeypatch, capsys):
    for name in ("EMBERWATCH_STACK", "CONFIG_PARAMETER", "TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert main(["config", "push", str(config_file)]) == 2
    assert "--parameter (or --stack" in capsys.readouterr().err


def test_validate_exits_2_on_an_invalid_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("brands:\n  - id: acme\n", encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 2
    assert f"{path}:2: brands[0].queries: is required" in capsys.readouterr().err


# ---------------------------------------------------------------- status


def test_status_lists_runs_cursors_and_incidents_and_fails_on_a_stale_source(aws, stack, store, capsys):
    from emberwatch.models import Cursor

    store.record_run("acme", "hackernews", NOW - timedelta(minutes=4), error=None, stats={"stored": 3})
    store.record_run("acme", "feed", NOW - timedelta(minutes=50), error=None, stats={})
    store.record_run("acme", "mastodon", NOW - timedelta(minutes=3), error="mastodon: HTTP 503", stats={})
    store.save_cursor(Cursor("acme", "hackernews", "hn:1"), {"since": 1}, NOW - timedelta(minutes=4))
    store.open_incident(
        Incident(
            brand="acme",
            scope="brand",
            rule="volume_spike",
            opened_at=NOW - timedelta(minutes=20),
            status="open",
            severity="high",
            observed=40,
            expected=6.0,
            peak=40,
            notified_level=0,
            last_seen_at=NOW - timedelta(minutes=5),
        )
    )

    code = main(["status", "--json", *names(stack)])

    assert code == 1  # feed is stale, mastodon failing, stackexchange never ran
    report = json.loads(capsys.readouterr().out)
    states = {row["source"]: row["state"] for row in report["sources"]}
    assert states["hackernews"] == "ok"
    assert states["feed"] == "stale"
    assert states["mastodon"] == "failing"
    assert states["stackexchange"] == "stale"  # enabled by default, never ran
    assert "x" not in states  # off and never run: not listed
    hn = next(row for row in report["sources"] if row["source"] == "hackernews")
    assert hn["cursor_updated_at"] == (NOW - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mastodon = next(row for row in report["sources"] if row["source"] == "mastodon")
    assert mastodon["last_error"] == "mastodon: HTTP 503"
    (incident,) = report["open_incidents"]
    assert incident["rule"] == "volume_spike" and incident["severity"] == "high"


def test_status_is_0_when_every_enabled_source_is_fresh(aws, stack, store, capsys):
    for source in ("hackernews", "feed", "stackexchange", "mastodon"):
        store.record_run("acme", source, NOW - timedelta(minutes=2), error=None, stats={})
    assert main(["status", *names(stack)]) == 0
    out = capsys.readouterr().out
    assert "open incidents: 0" in out and "acme" in out


def test_status_reads_the_table_copy_when_no_parameter_is_named(aws, stack, store, monkeypatch, capsys):
    monkeypatch.delenv("CONFIG_PARAMETER", raising=False)
    store.save_last_good_config(CONFIG_YAML, "sha")
    code = main(["status", "--table", stack.physical["MentionsTable"]["Ref"], "--json"])
    assert code == 1 and json.loads(capsys.readouterr().out)["sources"]


def test_an_aws_error_exits_3(aws, stack, config_file, capsys):
    assert main(["status", "--table", "no-such-table", "--config", str(config_file)]) == 3
    assert "AWS error: ResourceNotFoundException" in capsys.readouterr().err


# ---------------------------------------------------------------- forget


def post(n: int, author: str, created: datetime, *, text: str = "Acme Widgets broke again") -> Mention:
    return Mention(
        source="hackernews",
        native_id=str(n),
        brand="acme",
        query='"acme widgets"',
        author=Author(author, display_name=author.title(), followers=10),
        text=text,
        created_at=created,
        url=f"https://news.ycombinator.com/item?id={n}",
        engagement=Engagement(likes=100 - n),
        sentiment="negative",
    )


def test_forget_deletes_the_authors_posts_and_derived_items_once(aws, stack, store, capsys):
    table = stack.physical["MentionsTable"]["Ref"]
    dynamo = aws.client("dynamodb")
    day = NOW.replace(hour=10, minute=0, second=0) - timedelta(days=1)
    store.store_mentions(
        [
            post(1, "Mallory", day),
            post(2, "mallory", day + timedelta(minutes=7)),
            post(3, "alice", day + timedelta(minutes=9)),
        ]
    )

    def items() -> list[dict]:
        return [
            {k: next(iter(v.values())) for k, v in item.items()}
            for item in dynamo.scan(TableName=table, ConsistentRead=True)["Items"]
        ]

    before = items()
    assert any(i["pk"].startswith("WAIT#") and i.get("author") == "Mallory" for i in before)
    assert any(i["pk"] == "A#acme#hackernews#mallory" for i in before)

    code = main(["forget", "--author", "@MALLORY", "--source", "hackernews", "--table", table])

    assert code == 0
    out = capsys.readouterr().out
    # the author record (and its weekly items, whatever the store keeps per author)
    assert "2 mentions" in out and "2 waiting" in out and "2 top entries" in out
    after = items()
    text = json.dumps(after)
    assert "mallory" not in text.lower().replace("forget", "")  # no item names the author any more
    assert any(i["pk"] == "M#acme#hackernews:3" for i in after)  # alice's post stays
    top = next(i for i in after if i["pk"].startswith("TOP#"))
    assert "hackernews:1" not in json.dumps(top) and "hackernews:3" in json.dumps(top)
    (audit,) = [i for i in after if i["pk"] == "AUDIT#forget"]
    assert audit["deleted_mentions"] == "2" and "text" not in audit and len(audit["author_sha256"]) == 64
    counts = [i for i in after if i["pk"].startswith("C#")]
    assert counts  # counters (numbers, no names) stay

    # a second run finds nothing more and says so
    assert main(["forget", "--author", "mallory", "--source", "hackernews", "--table", table]) == 0
    assert "0 mentions" in capsys.readouterr().out


def test_forget_removes_the_author_from_the_digest_rollups(aws, stack, store, capsys):
    # Given a well-followed author whose post is an influential voice and a theme example in the rollup
    table = stack.physical["MentionsTable"]["Ref"]
    famous = replace(
        post(1, "BigVoice", NOW - timedelta(hours=3), text="Acme Widgets outage, support never answers"),
        author=Author("BigVoice", "Big Voice", followers=90_000),
        theme="issue",
    )
    store.store_mentions([famous, post(2, "alice", NOW - timedelta(hours=3), text="Acme Widgets outage too")])
    dynamo = aws.client("dynamodb")

    def rollup_text() -> str:
        items = dynamo.scan(TableName=table, ConsistentRead=True)["Items"]
        return json.dumps([i for i in items if i["pk"]["S"].startswith("R#")])

    assert "bigvoice" in rollup_text().lower()

    assert main(["forget", "--author", "bigvoice", "--source", "hackernews", "--table", table]) == 0

    assert "bigvoice" not in rollup_text().lower()
    assert "rollup entries" in capsys.readouterr().out


def test_forget_limited_to_another_brand_touches_nothing(aws, stack, store, capsys):
    table = stack.physical["MentionsTable"]["Ref"]
    store.store_mentions([post(1, "mallory", NOW - timedelta(hours=2))])
    args = ["forget", "--author", "mallory", "--source", "hackernews", "--brand", "globex", "--table", table]
    assert main(args) == 0
    assert "0 mentions" in capsys.readouterr().out
    assert store.get_mentions("acme", ["hackernews:1"])


def test_forget_rejects_an_unknown_source(aws, stack, capsys):
    args = ["forget", "--author", "x", "--source", "myspace", "--table", "t"]
    assert main(args) == 2


# ---------------------------------------------------------------- scan --once and backfill


@responses.activate
def test_scan_once_prints_what_it_finds_and_stores_nothing(aws, stack, store, config_file, capsys):
    calls: list[dict] = []
    serve_hn({'"acme widgets"': [hn_page()]}, calls)

    args = ["scan", "--once", "--brand", "acme", "--source", "hackernews", "--config", str(config_file)]
    code = main([*args, "--format", "json"])

    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["author"] for line in lines} == {"tptacekish", "jdoe"}
    assert all(line["sentiment"] in ("positive", "negative", "neutral") for line in lines)
    assert calls and all(c["query"] == '"acme widgets"' for c in calls[:1])
    assert store.get_mentions("acme", [f"hackernews:{line['id'].split(':')[1]}" for line in lines]) == []


@responses.activate
def test_scan_once_reports_a_network_failure_with_exit_3(aws, config_file, capsys):
    responses.add(responses.GET, HN_URL, status=503)
    args = ["scan", "--once", "--brand", "acme", "--source", "hackernews", "--config", str(config_file)]
    assert main([*args, "--max-seconds", "1"]) == 3
    assert "emberwatch:" in capsys.readouterr().err


def test_scan_once_names_an_unknown_brand(config_file, capsys):
    args = ["scan", "--once", "--brand", "nope", "--source", "hackernews", "--config", str(config_file)]
    assert main(args) == 2
    assert "no brand 'nope'" in capsys.readouterr().err


@responses.activate
def test_backfill_reaches_back_to_the_date_and_stores_through_the_store(aws, stack, store, capsys):
    calls: list[dict] = []
    serve_hn({'"acme widgets"': [hn_page()]}, calls)
    since = datetime(2024, 5, 1, tzinfo=UTC)

    code = main(
        ["backfill", "--since", "2024-05-01", "--brand", "acme", "--source", "hackernews", *names(stack)]
    )

    assert code == 0
    captured = capsys.readouterr()
    assert "2 stored" in captured.out
    assert "backfill hackernews" in captured.err  # the progress line
    # the connector was asked for everything since the date, not its usual last day
    first = calls[0]["numericFilters"]
    assert (
        f"created_at_i>={int(since.timestamp()) - 3600}" in first or str(int(since.timestamp()))[:6] in first
    )
    stored = list(store.mentions_between("acme", since, datetime(2024, 5, 14, tzinfo=UTC)))
    assert {m.author.handle for m in stored} == {"tptacekish", "jdoe"}
    # the live scan's cursor was not touched
    assert store.get_cursors("acme", "hackernews", ["x"])["x"].version == 0
    # a second backfill stores nothing twice
    assert (
        main(
            ["backfill", "--since", "2024-05-01", "--brand", "acme", "--source", "hackernews", *names(stack)]
        )
        == 0
    )
    assert "0 stored, 2 already stored" in capsys.readouterr().out


def test_backfill_rejects_a_bad_date(config_file, capsys):
    args = ["backfill", "--since", "last tuesday", "--brand", "acme", "--source", "hackernews"]
    assert main([*args, "--config", str(config_file), "--table", "t"]) == 2
    assert "--since must be a date" in capsys.readouterr().err


# ---------------------------------------------------------------- help


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["config"],
        ["config", "push"],
        ["scan"],
        ["backfill"],
        ["status"],
        ["forget"],
        ["config", "validate"],
    ],
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: emberwatch" in capsys.readouterr().out
