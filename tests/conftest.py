"""The project's own moto fixtures (the old pytest-moto plugin does not work with moto 5).

- `aws`: an in-process `mock_aws` account with fake credentials, fresh per test.
- `stack`: the resources of infra/template.yaml created in that account (tables, topic,
  queues, parameters, secrets), so tests cannot drift from the template.
- `handler(name, stack)`: imports functions/<name>/app.py as Lambda would, with the
  function's environment resolved from the template.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sim.provision import Stack, provision

ROOT = Path(__file__).resolve().parent.parent
SENDER = "digest@acme.example"

CONFIG_YAML = """
brands:
  - id: acme
    name: Acme Widgets
    queries:
      - '"acme widgets" OR acmewidgets'
    feeds:
      - https://alerts.example/alerts/feeds/1/2
sources:
  hackernews:
    base_url: https://hn.example/api/v1
detection:
  window_minutes: 30
  min_mentions: 10
recipients:
  - email: lead@acme.example
    name: Care Lead
    brands: [acme]
    timezone: UTC
"""


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, and never a real endpoint, for every test."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


@pytest.fixture(autouse=True)
def _emberwatch_logs_reach_caplog(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Powertools' Logger stops propagation at "emberwatch": hand its records to caplog directly."""
    logger = logging.getLogger("emberwatch")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="emberwatch")
    yield
    logger.removeHandler(caplog.handler)


@pytest.fixture(autouse=True)
def _clear_parameter_cache() -> Iterator[None]:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield
    parameters.clear_caches()


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def stack(aws: boto3.Session) -> Stack:
    created = provision(aws, parameters={"SenderEmail": SENDER, "Stage": "dev"})
    aws.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    push_config(aws, created, CONFIG_YAML)
    return created


def push_config(session: boto3.Session, stack: Stack, text: str) -> None:
    from aws_lambda_powertools.utilities import parameters

    name = stack.physical["ConfigParameter"]["Ref"]
    session.client("ssm").put_parameter(Name=name, Value=text, Type="String", Overwrite=True)
    parameters.clear_caches()


@pytest.fixture
def store(stack: Stack, aws: boto3.Session) -> Any:
    from emberwatch.store import Store

    return Store(stack.physical["MentionsTable"]["Ref"], aws.client("dynamodb"))


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object Powertools reads."""

    function_name: str = "emberwatch-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:emberwatch-test"
    aws_request_id: str = ""
    remaining_ms: int = 240_000

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_handler(name: str, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import functions/<name>/app.py fresh, with the environment the template gives the function."""
    logical = {"scan": "ScanFunction", "detect": "DetectFunction", "digest": "DigestFunction"}[name]
    for key, value in stack.function_environment(logical).items():
        monkeypatch.setenv(key, value)
    path = ROOT / "functions" / name / "app.py"
    module_name = f"emberwatch_handler_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    def _load(name: str) -> Any:
        return load_handler(name, stack, monkeypatch)

    return _load


os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


class LambdaKilled(BaseException):
    """A run dying mid-way (timeout, out of memory): nothing in the handler can catch it."""


def assert_refresh_failure_recorded(store, source: str, brand: str = "acme") -> None:
    """A failed re-read of the watched posts is counted in the run's stats and is not a failed run
    (no blind spot)."""
    import json as _json

    run = store.source_runs(brand)[source]
    assert run["failures"] == 0 and "last_error" not in run
    assert _json.loads(run["last_stats"])["refresh_errors"] == 1
