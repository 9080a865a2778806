"""The `emberwatch` command.

Exit codes: 0 ok; 1 findings or failures (a check failed, a source is stale or failing); 2 usage error
or invalid configuration; 3 AWS or network error. The commands that operate a deployment live in
cli_ops.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _config_validate(args: argparse.Namespace) -> int:
    from .config import ConfigError, parse_config

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"emberwatch: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        config = parse_config(text, origin=str(path))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{path}: ok ({len(config.brands)} brand(s), {len(config.recipients)} recipient(s))")
    return 0


def _parse(args: argparse.Namespace) -> int:
    import json

    from .config import Brand
    from .http import SourceError
    from .query import QueryError, parse_query
    from .sources import get_connector

    try:
        connector = get_connector(args.source)
    except ValueError as exc:
        print(f"emberwatch: {exc}", file=sys.stderr)
        return 2
    try:
        body = sys.stdin.buffer.read() if args.file in (None, "-") else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"emberwatch: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    query = None
    if args.query:
        try:
            query = parse_query(args.query)
        except QueryError as exc:
            print(f"emberwatch: --query: {exc}", file=sys.stderr)
            return 2
    brand = Brand(id=args.brand, name=args.brand, queries=(args.query,) if args.query else ())
    try:
        parsed = connector.parse(body, brand, args.query or "")
    except SourceError as exc:
        print(f"emberwatch: {exc}", file=sys.stderr)
        return 1
    from .cli_ops import mention_line

    for mention in parsed.mentions:
        line = mention_line(mention)
        if query is not None:
            haystack = f"{mention.title or ''}\n{mention.text}"
            line["matches"] = query.matches(haystack, mention.language)
        print(json.dumps(line, ensure_ascii=False))
    for reason in parsed.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    print(f"{len(parsed.mentions)} mention(s), {len(parsed.skipped)} skipped", file=sys.stderr)
    return 0


def _classify(args: argparse.Namespace) -> int:
    import json

    from .enrich import RecentTexts, enrich
    from .enrich.themes import validate_extra

    def problem_with(item: object) -> str | None:
        if not isinstance(item, dict):
            return "a JSON line must be an object with a 'text' field"
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            return "'text' must be a non-empty string"
        for name in ("title", "language", "url", "author"):
            if item.get(name) is not None and not isinstance(item[name], str):
                return f"'{name}' must be a string"
        return None

    extra = None
    if args.theme_keywords:
        import yaml

        try:
            extra = yaml.safe_load(Path(args.theme_keywords).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"emberwatch: cannot read {args.theme_keywords}: {exc.strerror}", file=sys.stderr)
            return 2
        except yaml.YAMLError as exc:
            print(f"emberwatch: {args.theme_keywords} is not YAML: {exc}", file=sys.stderr)
            return 2
        problems = validate_extra(extra) if isinstance(extra, dict) else ["must map themes to keyword lists"]
        for problem in problems:
            print(f"emberwatch: {args.theme_keywords}: {problem}", file=sys.stderr)
        if problems:
            return 2
    recent = RecentTexts()  # repeats by one author within the input, as the scanner sees them
    failed = 0
    for number, line in enumerate(sys.stdin, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        item: object = {"text": line}
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                item = f"not valid JSON ({exc.msg} at column {exc.colno})"
        problem = item if isinstance(item, str) else problem_with(item)
        if problem or not isinstance(item, dict):
            failed += 1
            print(json.dumps({"line": number, "error": problem}, ensure_ascii=False))
            continue
        result = enrich(
            item["text"],
            title=item.get("title"),
            url=item.get("url"),
            author=item.get("author"),
            language=item.get("language"),
            mention_id=f"line:{number}",
            brand_themes=extra,
            recent=recent,
        )
        head = {"line": number} | ({"id": item["id"]} if "id" in item else {})
        print(json.dumps(head | result.as_dict(), ensure_ascii=False))
    if failed:
        print(f"emberwatch: {failed} line(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _detect(args: argparse.Namespace) -> int:
    from .detect_cli import main as detect_main

    return detect_main(args)


def _digest_preview(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from .config import ConfigError, Recipient, load_config, parse_config
    from .digest import DigestService, compose_email, period_ending
    from .models import parse_iso

    table = args.table or os.environ.get("TABLE_NAME")
    if not table:
        print("emberwatch: --table (or TABLE_NAME) names the deployed table", file=sys.stderr)
        return 2
    try:
        if args.config:
            config = parse_config(Path(args.config).read_text(encoding="utf-8"), origin=args.config)
        else:
            config = load_config(args.config_parameter or os.environ.get("CONFIG_PARAMETER", ""))
        brand = config.brand(args.brand)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyError:
        print(f"emberwatch: --brand: no brand {args.brand!r} in the configuration", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"emberwatch: cannot read the configuration: {exc}", file=sys.stderr)
        return 2
    from .store import Store

    now = parse_iso(args.at) if args.at else datetime.now(UTC)
    period = period_ending(now, args.period, args.timezone)
    sender = args.sender or os.environ.get("SENDER_EMAIL") or "digest@example.com"
    service = DigestService(config=config, store=Store(table), sender=sender, ses=object())
    context = service.context_for(brand, period, now)
    recipient = Recipient(
        email="preview@example.com", name="Preview", brands=(brand.id,), timezone=args.timezone
    )
    message = compose_email(context, sender=sender, recipient=recipient, now=now)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"digest-{brand.id}-{args.period}-{period.start:%Y-%m-%d}"
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    base.with_suffix(".html").write_text(html.get_content() if html else "", encoding="utf-8")
    base.with_suffix(".txt").write_text(text.get_content() if text else "", encoding="utf-8")
    base.with_suffix(".eml").write_bytes(message.as_bytes())
    print(f"{base}.html, .txt and .eml written (not sent): {context['totals']['mentions']} mentions")
    return 0


def _alert_test(args: argparse.Namespace) -> int:
    """`emberwatch alert test --channel NAME`: one marked test alert through one configured channel."""
    import os
    from datetime import UTC, datetime

    from .config import ConfigError, parse_config

    path = Path(args.config)
    try:
        config = parse_config(path.read_text(encoding="utf-8"), origin=str(path))
    except OSError as exc:
        print(f"emberwatch: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    channel = config.channels.get(args.channel)
    if channel is None:
        print(
            f"emberwatch: no channel {args.channel!r} in {path} (known: {', '.join(config.channels)})",
            file=sys.stderr,
        )
        return 2
    try:
        brand = config.brand(args.brand) if args.brand else config.brands[0]
    except (KeyError, IndexError):
        print(f"emberwatch: --brand: no brand {args.brand!r} in {path}", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    from .alerts import SnsAlerter
    from .channels import ChannelError, ChannelSender, test_message
    from .http import HttpClient

    topic = args.topic_arn or os.environ.get("ALERT_TOPIC_ARN")
    if channel.type == "sns" and not topic:
        print("emberwatch: the sns channel needs --topic-arn or $ALERT_TOPIC_ARN", file=sys.stderr)
        return 2
    try:
        sns = None
        if channel.type == "sns":
            sns = SnsAlerter(topic, store=None, brands={brand.id: brand}, link=config.alert_link)  # type: ignore[arg-type]
        sender = ChannelSender(config.channels, http=HttpClient(attempts=2), sns=sns)
        sender.send(
            channel.name, test_message(brand, channel.name, datetime.now(UTC), config.alert_link, args.kind)
        )
    except ChannelError as exc:
        print(f"emberwatch: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"emberwatch: AWS error for channel {channel.name}: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # Powertools' GetParameterError wraps a missing or unreadable secret
        if type(exc).__name__ in ("GetParameterError", "TransformParameterError"):
            print(
                f"emberwatch: channel {channel.name}: cannot read secret {channel.secret}: {exc}",
                file=sys.stderr,
            )
            return 3
        raise
    print(f"test alert ({args.kind}) sent through {channel.name} ({channel.type}) for {brand.id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emberwatch", description="Emberwatch social listening: operate and check a deployment."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="work with the configuration file")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser(
        "validate",
        help="check a configuration file and name every invalid field",
        description="Lists every error as <file>:<line>: <field>: <problem>. Exit 0 valid, 2 invalid.",
    )
    validate.add_argument("file", help="path to the YAML configuration")
    validate.set_defaults(func=_config_validate)
    from .cli_ops import add_commands

    add_commands(commands, config_commands)  # config push, scan --once, backfill, status, forget

    parse = commands.add_parser(
        "parse",
        help="print the mentions one raw API response body yields (the scanner's own parsing code)",
        description="Reads one response body of a source's API (a file, or stdin) and prints one JSON object "
        "per mention; skipped items and why go to stderr. Exit 1 when the body itself is unusable.",
    )
    parse.add_argument(
        "--source", required=True, help="x, facebook, reddit, hackernews, mastodon, bluesky, ..."
    )
    parse.add_argument("--query", help='a watch-term query: adds "matches" to each line')
    parse.add_argument("--brand", default="brand", help="brand id to put on the mentions (default: brand)")
    parse.add_argument("file", nargs="?", help="the response body (default: stdin)")
    parse.set_defaults(func=_parse)

    classify = commands.add_parser(
        "classify",
        help="print how posts read: tone, theme, language, noise and story (the scanner's own code)",
        description="Reads posts from stdin, one a line: plain text, or JSON objects with 'text' and "
        "optionally 'title', 'language', 'url', 'author', 'id'. Prints one JSON object per line with "
        "sentiment, sentiment_score, theme, language and why. An unreadable line gets an error object "
        "with its line number; exit 1 if any.",
    )
    classify.add_argument(
        "--theme-keywords",
        metavar="FILE",
        help="YAML mapping a theme to a brand's extra keywords, e.g. {issue: [blackout, 'no dial tone']}",
    )
    classify.set_defaults(func=_classify)
    from .detect_cli import add_arguments as detect_arguments

    detect = commands.add_parser(
        "detect",
        help="score a time series with the detector: CSV timestamp,value on stdin, timestamp,score,alert out",
        description="Reads CSV with a timestamp,value header from stdin (ISO 8601 timestamps in time order, "
        "value = a count of events) and writes timestamp,score,alert for every row as it is read, with the "
        "Lambda's own baseline and thresholds. A bad row stops with its line number on stderr, exit 2.",
    )
    detect_arguments(detect)  # --min-count --p-value --ratio --window-minutes --baseline-days
    detect.set_defaults(func=_detect)
    digest = commands.add_parser("digest", help="work with the managers' digest")
    digest_commands = digest.add_subparsers(dest="digest_command", required=True)
    preview = digest_commands.add_parser(
        "preview",
        help="render a brand's digest from the deployed table into out/ without sending it",
        description="Builds the digest exactly as the digest function would for the last complete period "
        "and writes .html, .txt and .eml files. Needs AWS credentials for the table and configuration.",
    )
    preview.add_argument("--brand", required=True, help="brand id from the configuration")
    preview.add_argument("--period", choices=("daily", "weekly"), default="daily")
    preview.add_argument("--timezone", default="UTC", help="IANA zone the period is cut in (default UTC)")
    preview.add_argument("--at", help="pretend it is this ISO 8601 time (default: now)")
    preview.add_argument("--table", help="DynamoDB table (default: $TABLE_NAME)")
    preview.add_argument("--config", help="a local YAML configuration file instead of the SSM parameter")
    preview.add_argument("--config-parameter", help="SSM parameter name (default: $CONFIG_PARAMETER)")
    preview.add_argument("--sender", help="From address shown (default: $SENDER_EMAIL)")
    preview.add_argument("--out", default="out", help="folder to write to (default: out)")
    preview.set_defaults(func=_digest_preview)
    alert = commands.add_parser("alert", help="work with the alert channels")
    alert_commands = alert.add_subparsers(dest="alert_command", required=True)
    alert_test = alert_commands.add_parser(
        "test",
        help="send a test alert through one configured channel (SNS, Slack, Teams, PagerDuty, webhook)",
        description="Reads the channel's secret (AWS credentials needed) and sends one test alert marked "
        "TEST. PagerDuty: --kind resolved closes the test incident again. Exit 0 sent, 1 the channel "
        "refused it, 2 usage or configuration error, 3 AWS error (e.g. the secret cannot be read).",
    )
    alert_test.add_argument(
        "--channel", required=True, help="channel name from the configuration's channels:"
    )
    alert_test.add_argument("--config", required=True, help="the YAML configuration file")
    alert_test.add_argument("--brand", help="brand id to name in the test (default: the first)")
    alert_test.add_argument("--kind", choices=("opened", "resolved"), default="opened")
    alert_test.add_argument(
        "--topic-arn", help="the alert topic for the sns channel (default: $ALERT_TOPIC_ARN)"
    )
    alert_test.set_defaults(func=_alert_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
