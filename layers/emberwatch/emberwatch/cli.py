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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
