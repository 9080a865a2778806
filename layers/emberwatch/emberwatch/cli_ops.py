"""The `emberwatch` commands that operate a deployment: config push, scan --once, backfill, status, forget.

Exit codes (every command): 0 ok; 1 findings or failures (a stale or failing source, a source that
failed during a scan); 2 usage error or invalid configuration; 3 AWS or network error.

Where the deployment is: `--table` / `--parameter` name the table and the configuration parameter;
otherwise `--stack NAME` (or $EMBERWATCH_STACK) reads them from the stack's outputs; otherwise
$TABLE_NAME / $CONFIG_PARAMETER.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID, EXIT_AWS = 0, 1, 2, 3
STALE_MINUTES = 30  # the staleness alarm's window
# sources the template scans less often by default: two scan intervals (YouTubeScanRate is hourly)
STALE_MINUTES_BY_SOURCE = {"youtube": 120}


class UsageError(Exception):
    """Bad arguments or missing deployment names: exit 2."""


def fail(message: str, code: int) -> int:
    print(f"emberwatch: {message}", file=sys.stderr)
    return code


def command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Map the errors every command can meet onto the documented exit codes."""

    @wraps(func)
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from .config import ConfigError

        try:
            return func(args)
        except UsageError as exc:
            return fail(str(exc), EXIT_INVALID)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_INVALID
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return fail(f"AWS error: {error.get('Code')}: {error.get('Message')}", EXIT_AWS)
        except BotoCoreError as exc:
            return fail(f"AWS error: {exc}", EXIT_AWS)

    return run


# ------------------------------------------------------------------ where the deployment is


def add_target_arguments(parser: argparse.ArgumentParser, *, table: bool, parameter: bool) -> None:
    parser.add_argument(
        "--stack", help="CloudFormation stack whose outputs name the rest ($EMBERWATCH_STACK)"
    )
    if table:
        parser.add_argument("--table", help="DynamoDB table (default: stack output TableName, $TABLE_NAME)")
    if parameter:
        parser.add_argument(
            "--parameter",
            help="SSM parameter of the configuration (default: stack output ConfigParameterName, "
            "$CONFIG_PARAMETER)",
        )


@dataclass
class Target:
    args: argparse.Namespace
    _outputs: dict[str, str] | None = None

    def outputs(self) -> dict[str, str]:
        if self._outputs is None:
            stack = getattr(self.args, "stack", None) or os.environ.get("EMBERWATCH_STACK")
            self._outputs = {}
            if stack:
                import boto3

                (found,) = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
                self._outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
        return self._outputs

    def _name(self, option: str, output: str, env: str, required: bool) -> str | None:
        value = getattr(self.args, option, None) or self.outputs().get(output) or os.environ.get(env)
        if not value and required:
            raise UsageError(f"--{option} (or --stack, or ${env}) names the deployment's {output}")
        return value or None

    def table(self, required: bool = True) -> str | None:
        return self._name("table", "TableName", "TABLE_NAME", required)

    def parameter(self, required: bool = True) -> str | None:
        return self._name("parameter", "ConfigParameterName", "CONFIG_PARAMETER", required)

    def secret(self) -> str | None:
        return (
            getattr(self.args, "secret", None)
            or self.outputs().get("SourceCredentialsSecretArn")
            or os.environ.get("CREDENTIALS_SECRET")
        )


def read_config_file(path: str) -> tuple[str, Any]:
    from .config import parse_config

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return text, parse_config(text, origin=path)


def deployed_config(target: Target, config_file: str | None) -> Any:
    """The configuration a command works with: a local file, else the deployed SSM parameter."""
    if config_file:
        return read_config_file(config_file)[1]
    import boto3

    from .config import parse_config

    name = target.parameter()
    text = boto3.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    return parse_config(text, origin=f"ssm:{name}")


# ------------------------------------------------------------------ config push


@command
def config_push(args: argparse.Namespace) -> int:
    import boto3

    from .lastgood import config_digest
    from .store import Store

    text, config = read_config_file(args.file)  # ConfigError: every error listed, nothing written, exit 2
    target = Target(args)
    name = target.parameter()
    response = boto3.client("ssm").put_parameter(
        Name=name,
        Value=text,
        Type="String",
        Overwrite=True,
        # Standard parameters hold 4 KB; a larger configuration becomes an Advanced parameter
        Tier="Intelligent-Tiering",
        Description="Emberwatch configuration, written by `emberwatch config push`",
    )
    table = target.table(required=False)
    if table:  # the functions also keep it once they read it; writing it now covers a fresh stack
        Store(table).save_last_good_config(text, config_digest(text))
    print(
        f"{args.file}: pushed to {name} (version {response['Version']}): "
        f"{len(config.brands)} brand(s), {len(config.recipients)} recipient(s)"
    )
    return EXIT_OK


# ------------------------------------------------------------------ scan --once and backfill


class MemoryTokens:
    """Session tokens for a local scan that stores nothing (Bluesky sessions, Reddit OAuth tokens)."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, str], dict[str, Any]] = {}

    def get_token(self, source: str, account: str) -> dict[str, Any] | None:
        return self.tokens.get((source, account))

    def put_token(self, source: str, account: str, token: dict[str, Any], expires_at: datetime) -> None:
        self.tokens[(source, account)] = token


def _brand_and_source(config: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    from .models import SOURCES

    if args.source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}; got {args.source!r}")
    try:
        brand = config.brand(args.brand)
    except KeyError:
        raise UsageError(f"--brand: no brand {args.brand!r} in the configuration") from None
    settings = config.source(args.source)
    if not settings.enabled:
        print(f"note: {args.source} is disabled in the configuration; scanning it anyway", file=sys.stderr)
    return brand, settings


def _credentials(target: Target, config: Any) -> Any:
    from .credentials import SecretCredentials

    own = {name: s.secret for name, s in config.sources.items() if s.secret}
    return SecretCredentials(target.secret(), per_source=own)


def mention_line(mention: Any) -> dict[str, Any]:
    """A mention as the JSON line `parse` and `scan --once` print."""
    return {
        "id": mention.id,
        "source": mention.source,
        "author": mention.author.handle,
        "author_name": mention.author.display_name,
        "followers": mention.author.followers,
        "title": mention.title,
        "text": mention.text,
        "created_at": mention.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": mention.url,
        "language": mention.language,
        "engagement": {
            "reposts": mention.engagement.reposts,
            "likes": mention.engagement.likes,
            "replies": mention.engagement.replies,
            "score": mention.engagement.score,
        },
        "parent_id": mention.parent_id,
        "conversation_id": mention.conversation_id,
    }


def _print_mentions(mentions: list[Any], fmt: str) -> None:
    for m in mentions:
        if fmt == "json":
            line = mention_line(m) | {"sentiment": m.sentiment, "theme": m.theme, "noise": list(m.noise)}
            print(json.dumps(line, ensure_ascii=False))
        else:
            text = " ".join((m.title or m.text).split())
            print(
                f"{m.created_at:%Y-%m-%d %H:%M}  {m.sentiment or '-':<8} "
                f"@{m.author.handle[:20]:<20} {text[:90]}"
            )


@command
def scan_once(args: argparse.Namespace) -> int:
    import time

    from .http import HttpClient, SourceError, new_session
    from .models import Cursor
    from .scan import enrich, scan_source
    from .sources import CredentialsError, ScanContext, get_connector

    target = Target(args)
    config = deployed_config(target, args.config)
    brand, settings = _brand_and_source(config, args)
    now = datetime.now(UTC)
    http = HttpClient(session=new_session(), deadline=time.monotonic() + args.max_seconds)
    credentials = _credentials(target, config)
    if args.store:  # the scan function's own path: cursors, counts, run record
        from .store import Store

        report = scan_source(
            args.source,
            now,
            config=config,
            store=Store(target.table(), retention_days=config.retention_days),
            http=http,
            credentials=credentials,
            brand_id=brand.id,
        )
        for r in report.reports:
            print(json.dumps({"brand": r.brand, "source": r.source, **r.stats(), "errors": r.errors}))
        return EXIT_AWS if report.failed else EXIT_OK
    connector = get_connector(args.source)
    ctx = ScanContext(http=http, now=now, settings=settings, credentials=credentials, tokens=MemoryTokens())
    found = failed = 0
    for spec in connector.specs(brand, settings):
        cursor = Cursor(brand=brand.id, source=args.source, query_key=spec.key)
        try:
            for page in connector.pages(brand, spec, cursor, ctx):
                mentions = enrich(page.mentions, brand)
                found += len(mentions)
                _print_mentions(mentions, args.format)
                print(
                    f"{spec.label}: page of {page.fetched} fetched, {len(mentions)} matching, "
                    f"{page.skipped} skipped",
                    file=sys.stderr,
                )
        except CredentialsError as exc:
            return fail(f"{exc} (put them in the credentials secret)", EXIT_INVALID)
        except SourceError as exc:
            failed += 1
            print(f"emberwatch: {spec.label}: {exc}", file=sys.stderr)
    print(f"{found} mention(s) from {args.source} for {brand.id} (nothing stored)", file=sys.stderr)
    return EXIT_AWS if failed else EXIT_OK


@contextmanager
def reaching_back(module: Any, span: timedelta) -> Iterator[bool]:
    """Let a connector's first run reach back `span` instead of its usual day (FIRST_RUN_LOOKBACK).

    False when the connector has no such setting: its API decides how far back it reaches.
    """
    if not hasattr(module, "FIRST_RUN_LOOKBACK"):
        yield False
        return
    before = module.FIRST_RUN_LOOKBACK
    module.FIRST_RUN_LOOKBACK = span
    try:
        yield True
    finally:
        module.FIRST_RUN_LOOKBACK = before


@command
def backfill(args: argparse.Namespace) -> int:
    import importlib
    import time

    from .cli_progress import Progress
    from .http import HttpClient, SourceError, new_session
    from .models import Cursor, parse_iso
    from .scan import enrich
    from .sources import CONNECTOR_MODULES, CredentialsError, ScanContext, get_connector
    from .store import Store

    try:
        since = parse_iso(args.since if "T" in args.since else f"{args.since}T00:00:00Z")
    except ValueError:
        raise UsageError(
            f"--since must be a date (2025-01-31) or an ISO 8601 time; got {args.since!r}"
        ) from None
    now = datetime.now(UTC)
    if since >= now:
        raise UsageError("--since must be in the past")
    target = Target(args)
    config = deployed_config(target, args.config)
    brand, settings = _brand_and_source(config, args)
    store = Store(target.table(), retention_days=config.retention_days)
    if since < now - timedelta(days=config.retention_days):
        print(
            f"note: mentions older than retention_days ({config.retention_days}) expire at once",
            file=sys.stderr,
        )
    connector = get_connector(args.source)
    http = HttpClient(session=new_session(), deadline=time.monotonic() + args.max_minutes * 60)
    ctx = ScanContext(
        http=http, now=now, settings=settings, credentials=_credentials(target, config), tokens=store
    )
    span = (now - since).total_seconds()
    totals = {"pages": 0, "fetched": 0, "stored": 0, "duplicates": 0}
    errors: list[str] = []
    module = importlib.import_module(CONNECTOR_MODULES[args.source])
    with (
        # a first run starts `lookback` before the top of the hour (ScanContext.first_run_start)
        reaching_back(module, ctx.first_run_start(timedelta(0)) - since) as honoured,
        Progress(f"backfill {args.source}", total=1.0) as bar,
    ):
        if not honoured:
            print(
                f"note: {args.source} reaches back only as far as its API allows (no lookback setting)",
                file=sys.stderr,
            )
        for spec in connector.specs(brand, settings):
            # a cursor of its own, never saved: the live scans' cursors are left as they are
            cursor = Cursor(brand=brand.id, source=args.source, query_key=spec.key)
            try:
                while ctx.time_left():
                    pages = 0
                    for page in connector.pages(brand, spec, cursor, ctx):
                        kept = [m for m in page.mentions if m.created_at >= since]
                        result = store.store_mentions(enrich(kept, brand))
                        pages += 1
                        totals["pages"] += 1
                        totals["fetched"] += page.fetched
                        totals["stored"] += result.stored
                        totals["duplicates"] += result.duplicates
                        if page.position is not None:
                            cursor = Cursor(brand.id, args.source, spec.key, page.position)
                        oldest = min((m.created_at for m in page.mentions), default=now)
                        bar.update(
                            max(bar.done, (now - max(oldest, since)).total_seconds() / span),
                            f"{spec.label[:30]} {oldest:%Y-%m-%d} stored {totals['stored']}",
                        )
                    if pages < settings.max_pages:  # the walk ended before its page cap: done
                        break
            except CredentialsError as exc:
                return fail(f"{exc} (put them in the credentials secret)", EXIT_INVALID)
            except SourceError as exc:
                errors.append(f"{spec.label}: {exc}")
        bar.update(1.0 if not errors else bar.done, f"stored {totals['stored']}")
    for error in errors:
        print(f"emberwatch: {error}", file=sys.stderr)
    print(
        f"backfill {brand.id}/{args.source} since {since:%Y-%m-%d %H:%M}: {totals['pages']} page(s), "
        f"{totals['fetched']} fetched, {totals['stored']} stored, {totals['duplicates']} already stored"
    )
    return EXIT_AWS if errors else EXIT_OK


# ------------------------------------------------------------------ status


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 172800:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def source_status(store: Any, config: Any, now: datetime, stale_minutes: int | None = None) -> list[dict]:
    """Per brand and source: last run, last success, last error, cursor age, and whether it is healthy."""
    from .models import SOURCES, parse_iso

    rows = []
    for brand in config.brands:
        runs = store.source_runs(brand.id)
        for source in SOURCES:
            settings = config.source(source)
            run = runs.get(source, {})
            if not settings.enabled and not run:
                continue

            def when(name: str, run: dict = run) -> datetime | None:
                return parse_iso(run[name]) if run.get(name) else None

            last_success, last_error_at = (
                when("last_success_at"),
                when("last_error_at"),
            )
            cursors = store.cursor_ages(brand.id, source)
            limit = stale_minutes or max(
                STALE_MINUTES, STALE_MINUTES_BY_SOURCE.get(source, 0), 2 * settings.every_minutes
            )
            if not settings.enabled:
                state = "disabled"
            elif last_error_at and (last_success is None or last_error_at > last_success):
                state = "failing"
            elif last_success is None or now - last_success > timedelta(minutes=limit):
                state = "stale"
            else:
                state = "ok"
            rows.append(
                {
                    "brand": brand.id,
                    "source": source,
                    "state": state,
                    "last_run_at": run.get("last_run_at"),
                    "last_success_at": run.get("last_success_at"),
                    "last_error_at": run.get("last_error_at"),
                    "last_error": run.get("last_error") if state == "failing" else None,
                    "failures": run.get("failures", 0),
                    "cursor_updated_at": max(cursors).strftime("%Y-%m-%dT%H:%M:%SZ") if cursors else None,
                    "stale_after_minutes": limit,
                }
            )
    return rows


@command
def status(args: argparse.Namespace) -> int:
    from .config import parse_config
    from .models import parse_iso
    from .store import Store

    target = Target(args)
    store = Store(target.table())
    if args.config or target.parameter(required=False):
        config = deployed_config(target, args.config)
    else:  # no parameter named: the configuration the functions last found valid
        text = store.last_good_config()
        if text is None:
            raise UsageError(
                "--parameter (or --stack, --config) is needed: the table has no configuration copy"
            )
        config = parse_config(text, origin="table:CONFIG/LASTGOOD")
    now = datetime.now(UTC)
    rows = source_status(store, config, now, args.stale_minutes)
    incidents = [
        {
            "brand": i.brand,
            "scope": i.scope,
            "rule": i.rule,
            "severity": i.severity,
            "opened_at": i.opened_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observed": i.observed,
            "expected": round(i.expected, 1),
        }
        for brand in config.brands
        for i in store.open_incidents(brand.id)
    ]
    bad = [r for r in rows if r["state"] in ("stale", "failing")]
    if args.json:
        print(json.dumps({"sources": rows, "open_incidents": incidents}, ensure_ascii=False, indent=2))
    else:

        def age(value: str | None) -> str:
            return _age(parse_iso(value) if value else None, now)

        print(
            f"{'brand':<14} {'source':<14} {'state':<9} {'last run':<10} {'last success':<13} "
            f"{'cursor':<10} error"
        )
        for r in rows:
            error = (r["last_error"] or "")[:60]
            print(
                f"{r['brand']:<14} {r['source']:<14} {r['state']:<9} {age(r['last_run_at']):<10} "
                f"{age(r['last_success_at']):<13} {age(r['cursor_updated_at']):<10} {error}"
            )
        print(f"\nopen incidents: {len(incidents)}")
        for i in incidents:
            print(
                f"  {i['brand']} {i['scope']} {i['rule']} {i['severity']} since {i['opened_at']} "
                f"({i['observed']} vs {i['expected']} expected)"
            )
        if bad:
            print(f"\n{len(bad)} source(s) stale or failing", file=sys.stderr)
    return EXIT_FINDINGS if bad else EXIT_OK


# ------------------------------------------------------------------ forget


@command
def forget(args: argparse.Namespace) -> int:
    from .cli_progress import Progress
    from .models import SOURCES
    from .store import Store

    if args.source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}; got {args.source!r}")
    handle = args.author.strip().lstrip("@")
    if not handle:
        raise UsageError("--author must name a handle")
    store = Store(Target(args).table())
    with Progress("forget: items examined") as bar:
        counts = store.forget_author(
            args.source, handle, datetime.now(UTC), brand=args.brand, progress=lambda n: bar.update(n)
        )
    print("deleted: " + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items()))
    return EXIT_OK


# ------------------------------------------------------------------ the parsers


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """One brand on one source, the configuration and the credentials to scan it with, the deployment."""
    parser.add_argument("--brand", required=True, help="brand id from the configuration")
    parser.add_argument("--source", required=True, help="x, facebook, reddit, hackernews, mastodon, ...")
    parser.add_argument("--config", help="a local YAML configuration instead of the deployed parameter")
    parser.add_argument("--secret", help="credentials secret (default: stack output, $CREDENTIALS_SECRET)")
    add_target_arguments(parser, table=True, parameter=True)


def add_commands(commands: Any, config_commands: Any) -> None:
    """Register config push, scan, backfill, status and forget on the `emberwatch` parser."""
    codes = (
        "Exit codes: 0 ok, 1 findings or failures, 2 usage error or invalid configuration, "
        "3 AWS or network error."
    )
    push = config_commands.add_parser(
        "push",
        help="validate a configuration file and write it to the deployed SSM parameter",
        description="Validates first: an invalid file is not written and every error is listed (exit 2). "
        "On success writes the parameter (the functions pick it up within a minute) and prints its version. "
        + codes,
    )
    push.add_argument("file", help="path to the YAML configuration")
    add_target_arguments(push, table=True, parameter=True)
    push.set_defaults(func=config_push)

    scan = commands.add_parser(
        "scan",
        help="scan one brand on one source now, over the network, and print what it finds",
        description="Runs the source's connector for one brand (its first-run window, usually the last day) "
        "and prints the mentions with tone and theme. Stores nothing unless --store, which runs the scan "
        "function's own path (cursors, counts, the run record) against the deployed table. " + codes,
    )
    scan.add_argument("--once", action="store_true", required=True, help="one scan, then exit (required)")
    add_stream_arguments(scan)
    scan.add_argument("--store", action="store_true", help="store into the deployed table (cursors move)")
    scan.add_argument("--format", choices=("table", "json"), default="table", help="output (default table)")
    scan.add_argument("--max-seconds", type=int, default=120, help="time budget (default 120)")
    scan.set_defaults(func=scan_once)

    back = commands.add_parser(
        "backfill",
        help="fetch a brand's mentions on one source back to a date into the deployed table",
        description="Walks the source back to --since with a cursor of its own (the live scans' cursors are "
        "not moved) and stores through the scan's path: enrichment, counts, nothing stored twice. How far "
        "back a source can go is up to its API (Reddit: a day; X recent search: 7 days). Progress on "
        "stderr. " + codes,
    )
    back.add_argument("--since", required=True, help="date (2025-01-31) or ISO 8601 time to reach back to")
    add_stream_arguments(back)
    back.add_argument("--max-minutes", type=int, default=60, help="time budget (default 60)")
    back.set_defaults(func=backfill)

    stat = commands.add_parser(
        "status",
        help="each brand and source's last run, last success, last error and cursor age; open incidents",
        description="Reads the deployed table. A source is stale when its last successful scan is older than "
        f"{STALE_MINUTES} minutes (two scan intervals for sources scanned less often), failing when its last "
        "run failed. Exit 1 when any enabled source is stale or failing, so scripts can check a deployment. "
        + codes,
    )
    stat.add_argument("--config", help="a local YAML configuration instead of the deployed parameter")
    stat.add_argument("--stale-minutes", type=int, help="override the staleness limit for every source")
    stat.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_target_arguments(stat, table=True, parameter=True)
    stat.set_defaults(func=status)

    gone = commands.add_parser(
        "forget",
        help="delete an author's stored posts (platform deletion rules, privacy requests)",
        description="Deletes the author's mentions, their author record, care-queue and ambassador entries "
        "and their posts in the top-posts lists and digest rollups; counters (numbers without names) stay. "
        "Writes an audit record with the counts and a hash of the handle, never the text. Scans the table "
        "once (there is no index by author). Safe to run again. " + codes,
    )
    gone.add_argument("--author", required=True, help="the author's handle on the source (with or without @)")
    gone.add_argument("--source", required=True, help="the source the handle belongs to")
    gone.add_argument("--brand", help="only this brand's data (default: every brand)")
    add_target_arguments(gone, table=True, parameter=False)
    gone.set_defaults(func=forget)
