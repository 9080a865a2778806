"""The output of `sam build` is what Lambda will run: check its shape and import it like Lambda does.

Runs only when selected (`make build-check`, i.e. `pytest -m build`), after `sam build`. Each function is
imported in a fresh Python 3.13 process whose path is laid out as in Lambda: the function's folder
(/var/task), the emberwatch layer's `python/` folder (/opt/python), then only what the Lambda runtime
itself provides (boto3 and its dependencies). Site-packages are off (`-S`), so a dependency missing from
the layer fails here instead of being found in a developer's virtualenv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.build

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
LAYER_PYTHON = BUILD / "EmberwatchLayer" / "python"
TEMPLATES = BUILD / "TemplatesLayer" / "emberwatch_templates"
FUNCTIONS = ("ScanFunction", "DetectFunction", "DigestFunction", "DispatchFunction", "ScanWorkerFunction")

# What the python3.13 Lambda runtime ships itself (the layer deliberately does not bundle boto3).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")

# Stand-ins for environment values the template fills in at deploy time (Ref, GetAtt, Sub).
DEPLOY_TIME_VALUES = {
    "STAGE": "dev",
    "TABLE_NAME": "emberwatch-dev-MentionsTable-0123456789",
    "CONFIG_PARAMETER": "/emberwatch/dev/config",
    "CREDENTIALS_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:emberwatch/dev/creds-AbCdEf",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:emberwatch-dev-alerts",
    "SENDER_EMAIL": "digest@example.com",
    "SCAN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/emberwatch-dev-scan-jobs.fifo",
    "UNSUBSCRIBE_URL": "https://care.example.com/emberwatch/unsubscribe",
}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@pytest.fixture(scope="module", autouse=True)
def built_template() -> dict[str, Any]:
    """The built template; every test needs the build, so a missing build fails each one with the fix."""
    template = BUILD / "template.yaml"
    if not template.is_file():
        pytest.fail(f"{template.relative_to(ROOT)} is missing: run `make build` before `make build-check`")
    return yaml.load(template.read_text(encoding="utf-8"), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def python313() -> str:
    if sys.version_info[:2] == (3, 13):
        return sys.executable
    try:
        prefix = subprocess.run(
            ["pyenv", "prefix", "3.13.0"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"Python 3.13 (the Lambda runtime) is needed to import the built functions: {error}")
    return str(Path(prefix) / "bin" / "python3")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only what the Lambda runtime provides, linked from this environment."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            pytest.fail(f"{name} (provided by the Lambda runtime) is not installed in the test environment")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return folder


def _function_env(template: dict[str, Any], function: str) -> dict[str, str]:
    """The function's environment variables as Lambda would set them (Globals merged, deploy values faked)."""
    merged: dict[str, Any] = {}
    merged.update(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    props = template["Resources"][function]["Properties"]
    merged.update(props.get("Environment", {}).get("Variables", {}))
    env: dict[str, str] = {}
    for name, value in merged.items():
        if isinstance(value, str | int | float):
            env[name] = str(value)
        elif name in DEPLOY_TIME_VALUES:
            env[name] = DEPLOY_TIME_VALUES[name]
        else:
            pytest.fail(f"{function}: add a stand-in for {name} ({value!r}) to DEPLOY_TIME_VALUES")
    return env


def _run_in_lambda_layout(
    python313: str, runtime_dir: Path, template: dict[str, Any], function: str, code: str
) -> dict[str, Any]:
    """Run `code` as Lambda would see the function; it must print one line `RESULT <json>`."""
    env = {
        **_function_env(template, function),
        "PYTHONPATH": os.pathsep.join([str(BUILD / function), str(LAYER_PYTHON), str(runtime_dir)]),
        "PYTHONDONTWRITEBYTECODE": "1",  # never write __pycache__ into the artifacts we deploy
        "EMBERWATCH_TEMPLATES_DIR": str(TEMPLATES),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": f"emberwatch-dev-{function}",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    proc = subprocess.run(
        [python313, "-B", "-S", "-c", code],
        cwd=BUILD / function,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"{function} failed in the Lambda layout (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
    )
    results = [line[len("RESULT ") :] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"{function}: no RESULT line in output:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(results[-1])


IMPORT_APP = """
import json, sys
import app
assert callable(app.lambda_handler), "app.lambda_handler is not callable"
print("RESULT " + json.dumps({"app": app.__file__, "modules": sorted(sys.modules)}))
"""

RENDER_DIGEST = """
import json
import app
from emberwatch.render import render, sample_digest_context
sample = sample_digest_context()
print("RESULT " + json.dumps({
    "brand": sample["brand"]["name"],
    "html": render("digest.html.j2", digest=sample),
    "text": render("digest.txt.j2", digest=sample),
}))
"""

RENDER_ALERT = """
import json
import app
from emberwatch.render import render, sample_alert_context
sample = sample_alert_context()
text = render("alert.txt.j2", alert=sample)
print("RESULT " + json.dumps({"brand": sample["brand"]["name"], "text": text}))
"""


def test_every_built_function_has_its_handler_module(built_template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        props = built_template["Resources"][function]["Properties"]
        assert props["CodeUri"] == function
        assert (BUILD / function / "app.py").is_file(), f"{function}: app.py missing from the build"


def test_layer_bundles_the_package_and_its_requirements() -> None:
    for name in ("emberwatch", "jinja2", "requests", "feedparser", "yaml", "aws_lambda_powertools"):
        assert (LAYER_PYTHON / name).is_dir(), f"{name} missing from {LAYER_PYTHON.relative_to(ROOT)}"
    assert (LAYER_PYTHON / "emberwatch" / "render.py").is_file()


def test_templates_layer_ships_the_templates_under_opt_emberwatch_templates() -> None:
    for name in ("digest.html.j2", "digest.txt.j2", "alert.txt.j2"):
        assert (TEMPLATES / name).is_file(), f"{name} missing from {TEMPLATES.relative_to(ROOT)}"
    assert not (TEMPLATES.parent / "Makefile").exists(), "the layer build copied its Makefile into the layer"


def test_scan_function_carries_no_templates(built_template: dict[str, Any]) -> None:
    assert not list((BUILD / "ScanFunction").rglob("*.j2"))
    layers = built_template["Resources"]["ScanFunction"]["Properties"]["Layers"]
    assert {"Ref": "TemplatesLayer"} not in layers


def test_schedules_send_the_documented_event_envelope(built_template: dict[str, Any]) -> None:
    # the digest runs hourly with an empty detail: each recipient's cadence and local hour decide
    expected_detail = {"ScanFunction": "source", "DetectFunction": None, "DigestFunction": None}
    for function, detail_key in expected_detail.items():
        events = built_template["Resources"][function]["Properties"]["Events"]
        assert events, f"{function} has no schedule"
        for name, event in events.items():
            assert event["Type"] == "ScheduleV2", name
            envelope = json.loads(event["Properties"]["Input"])
            assert envelope["time"] == "<aws.scheduler.scheduled-time>", name
            assert envelope["id"] == "<aws.scheduler.execution-id>", name
            assert envelope["detail-type"] == "Scheduled Event", name
            if detail_key is None:
                assert envelope["detail"] == {}, name
            else:
                assert envelope["detail"].get(detail_key), name
            assert "DeadLetterConfig" in event["Properties"], name
            assert "RetryPolicy" in event["Properties"], name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_built_handler_imports_in_the_lambda_layout(
    function: str, python313: str, runtime_dir: Path, built_template: dict[str, Any]
) -> None:
    result = _run_in_lambda_layout(python313, runtime_dir, built_template, function, IMPORT_APP)
    assert Path(result["app"]).resolve() == (BUILD / function / "app.py").resolve()
    if function in ("ScanFunction", "ScanWorkerFunction", "DispatchFunction"):
        # Cold start: the scanners and the dispatcher have no use for Jinja2.
        assert "jinja2" not in result["modules"], f"importing the {function} handler imports jinja2"


def test_built_digest_renders_from_the_built_layers(
    python313: str, runtime_dir: Path, built_template: dict[str, Any]
) -> None:
    result = _run_in_lambda_layout(python313, runtime_dir, built_template, "DigestFunction", RENDER_DIGEST)
    html, brand = result["html"], result["brand"]
    assert brand
    assert brand in html or brand in html.replace("&amp;", "&")
    assert "<html" in html.lower() and "</html>" in html.lower()
    assert brand in result["text"]
    assert "<html" not in result["text"].lower()


def test_built_detect_renders_an_alert_from_the_built_layers(
    python313: str, runtime_dir: Path, built_template: dict[str, Any]
) -> None:
    result = _run_in_lambda_layout(python313, runtime_dir, built_template, "DetectFunction", RENDER_ALERT)
    assert result["brand"] in result["text"]
