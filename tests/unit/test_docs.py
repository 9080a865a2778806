"""The configuration example in the README is a valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from emberwatch.config import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_example_is_valid() -> None:
    section = README.read_text().split("## Configuration", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "README has a yaml example under Configuration"
    config = parse_config(block.group(1), origin="README.md")
    assert [b.id for b in config.brands] == ["acme"]
    assert config.detection.escalate_factor == 2.0
    assert config.recipients[0].timezone == "Europe/Berlin"
