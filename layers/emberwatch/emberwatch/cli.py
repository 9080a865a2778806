"""The `emberwatch` command. Exit codes: 0 ok, 1 the check failed, 2 usage error."""

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
        return 1
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
    for mention in parsed.mentions:
        line = {
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
        if query is not None:
            haystack = f"{mention.title or ''}\n{mention.text}"
            line["matches"] = query.matches(haystack, mention.language)
        print(json.dumps(line, ensure_ascii=False))
    for reason in parsed.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    print(f"{len(parsed.mentions)} mention(s), {len(parsed.skipped)} skipped", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emberwatch", description="Emberwatch social listening: operate and check a deployment."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="work with the configuration file")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser(
        "validate", help="check a configuration file and name every invalid field"
    )
    validate.add_argument("file", help="path to the YAML configuration")
    validate.set_defaults(func=_config_validate)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
