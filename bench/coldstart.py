"""Cold-start benchmark: import each built handler the way Lambda does, and size what is deployed.

Builds with `make build` (sam build; `--no-build` reuses .aws-sam/build), then imports every function's
`app` in a fresh Python of the runtime's version started with `-B -S`: no bytecode written (Lambda's
/var/task and /opt are read-only) and no site-packages. The bytecode `make build` puts in the layer (its
`bytecode` step: compileall with the runtime's Python, unchecked-hash) is used, as Lambda would use it. The
path is laid out as in Lambda: the function's folder (/var/task), each layer's `python/` folder
(/opt/python), then only what the runtime itself provides (boto3, botocore, s3transfer, jmespath, dateutil,
urllib3, six), linked from this environment, compiled as installed. The handlers import boto3 at module
level (the store, Powertools), as any handler talking to AWS does, so boto3's import cost is part of a real
cold start and is counted here. Environment variables come from the built template, deploy-time values as
stand-ins.

Each import is timed with time.perf_counter inside the child (interpreter start-up excluded), --runs
times per function; the median counts. One more run with -X importtime lists the ten modules with the
largest cumulative import time. A second series imports from a copy of the layers with every .pyc removed,
to show what the shipped bytecode saves. Sizes are the unzipped bytes of the function's folder
plus its layers' folders (TemplatesLayer included where used), in MB of 2**20 bytes as Lambda's 250 MB
limit counts them; the runtime's boto3 is not part of the artifact.

On a machine that is not the functions' architecture (arm64), the layer's compiled extensions
(charset_normalizer, PyYAML's libyaml binding, MarkupSafe) cannot load and their pure-Python fallbacks
are imported instead, so the figures err slow; the script says so when that is the case.

Last line: `coldstart max_import_ms=<slowest handler import, median> artifact_mb=<largest function + layers>`
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.provision import load_template  # noqa: E402

BUILD = ROOT / ".aws-sam" / "build"
BUILD_INPUTS = ("functions", "layers", "templates", "infra/template.yaml")

# What the Lambda Python runtime ships itself (the layer deliberately does not bundle boto3).
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
}

TIMED_IMPORT = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import app
print(f"IMPORT_MS {(time.perf_counter() - wall) * 1000:.3f} {(time.process_time() - cpu) * 1000:.3f}")
"""

MB = 2**20


@dataclass
class Function:
    name: str
    folder: Path
    layers: list[str]
    env: dict[str, str]
    runs_ms: list[float] = field(default_factory=list)
    cpu_runs_ms: list[float] = field(default_factory=list)  # the child's CPU time: less sensitive to load
    source_runs_ms: list[float] = field(default_factory=list)  # the same import without the layer's .pyc
    imports: list[tuple[str, int, int]] = field(default_factory=list)  # (module, self us, cumulative us)
    size_bytes: int = 0


# ------------------------------------------------------------------ setting up


def build(skip: bool) -> None:
    template = BUILD / "template.yaml"
    if skip:
        if not template.is_file():
            sys.exit(f"{template.relative_to(ROOT)} is missing: run without --no-build (or `make build`)")
        built = template.stat().st_mtime
        newer = [
            path
            for top in BUILD_INPUTS
            for path in ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.stat().st_mtime > built
        ]
        if newer:
            print(
                f"warning: {len(newer)} source files are newer than the build, e.g. "
                f"{newer[0].relative_to(ROOT)}; drop --no-build to rebuild",
                file=sys.stderr,
            )
        return
    print("building: make build", file=sys.stderr)
    proc = subprocess.run(
        ["make", "build"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"make build failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")


def runtime_python(runtime: str) -> str:
    """The interpreter matching the template's runtime (python3.13 -> pyenv's 3.13.0, as the Makefile)."""
    version = runtime.removeprefix("python")
    for candidate in (f"{version}.0", version):
        try:
            prefix = subprocess.run(
                ["pyenv", "prefix", candidate], check=True, capture_output=True, text=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        return str(Path(prefix) / "bin" / "python3")
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found:
        return found
    sys.exit(f"Python {version} (the Lambda runtime) is needed: pyenv install {version}.0")


def runtime_dir(into: Path) -> Path:
    """A folder holding only what the Lambda runtime provides, linked from this environment."""
    folder = into / "lambda-runtime"
    folder.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            sys.exit(
                f"{name} (provided by the Lambda runtime) is not installed here: run with .venv/bin/python"
            )
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return folder


def functions_of(template: dict[str, Any]) -> list[Function]:
    """Every function of the built template with its layers and environment, as Lambda would set it."""
    globals_ = template.get("Globals", {}).get("Function", {})
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        layers = [layer["Ref"] for layer in props.get("Layers", globals_.get("Layers", []))]
        merged = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        env = {}
        for key, value in merged.items():
            if isinstance(value, str | int | float):
                env[key] = str(value)
            elif key in DEPLOY_TIME_VALUES:
                env[key] = DEPLOY_TIME_VALUES[key]
            elif isinstance(value, dict) and value.get("Ref") in template.get("Parameters", {}):
                # a template parameter: its default
                env[key] = str(template["Parameters"][value["Ref"]].get("Default", ""))
            else:
                sys.exit(f"{name}: add a stand-in for {key} ({value!r}) to DEPLOY_TIME_VALUES")
        found.append(Function(name, BUILD / props["CodeUri"], layers, env))
    return found


def layer_folder(template: dict[str, Any], layer: str) -> Path:
    return BUILD / template["Resources"][layer]["Properties"]["ContentUri"]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


# ------------------------------------------------------------------ measuring


def child_env(
    function: Function, layer_paths: list[Path], runtime: Path, templates: Path | None
) -> dict[str, str]:
    env = {
        **function.env,
        "PYTHONPATH": os.pathsep.join(str(p) for p in [function.folder, *layer_paths, runtime]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": f"emberwatch-dev-{function.name}",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    if templates is not None:
        env["EMBERWATCH_TEMPLATES_DIR"] = str(templates)
    return env


def run_child(
    python: str, function: Function, env: dict[str, str], *flags: str, code: str
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [python, "-B", "-S", *flags, "-c", code],
        cwd=function.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        sys.exit(f"{function.name}: importing app failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def timed_import(python: str, function: Function, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of `import app` in a fresh interpreter."""
    proc = run_child(python, function, env, code=TIMED_IMPORT)
    match = re.search(r"^IMPORT_MS ([\d.]+) ([\d.]+)$", proc.stdout, re.MULTILINE)
    if not match:
        sys.exit(f"{function.name}: no IMPORT_MS line in:\n{proc.stdout}")
    return float(match.group(1)), float(match.group(2))


def import_profile(python: str, function: Function, env: dict[str, str]) -> list[tuple[str, int, int]]:
    """Every module `import app` loads: (name, self, cumulative) in microseconds, from -X importtime."""
    proc = run_child(python, function, env, "-X", "importtime", code="import app")
    rows = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match and match.group(4) != "app":
            rows.append((match.group(4), int(match.group(1)), int(match.group(2))))
    return rows


def by_package(rows: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """Self time summed per top-level package: where the import time goes, without double counting."""
    totals: dict[str, int] = {}
    for module, self_us, _ in rows:
        package = module.split(".")[0]
        totals[package] = totals.get(package, 0) + self_us
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def source_only_layers(template: dict[str, Any], layers: set[str], into: Path) -> dict[str, Path]:
    """Copies of the layers' python/ folders without any .pyc: what a layer built without bytecode ships."""
    copies = {}
    for layer in sorted(layers):
        source = layer_folder(template, layer) / "python"
        if not source.is_dir():
            continue
        copy = into / f"{layer}-source"
        shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        copies[layer] = copy
    return copies


def bytecode_files(template: dict[str, Any], layers: set[str]) -> int:
    """How many .pyc the built layers ship."""
    return sum(
        1 for layer in layers for _ in (layer_folder(template, layer) / "python").rglob("__pycache__/*.pyc")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-build", action="store_true", help="reuse .aws-sam/build instead of make build")
    parser.add_argument("--runs", type=int, default=7, help="timed imports per function (median counts)")
    args = parser.parse_args()

    build(skip=args.no_build)
    template = load_template(BUILD / "template.yaml")
    runtime = template.get("Globals", {}).get("Function", {}).get("Runtime", "python3.13")
    python = runtime_python(runtime)
    functions = functions_of(template)
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"runtime {runtime}: {python} (Python {version}), -B -S, {args.runs} runs per function")
    architecture = template.get("Globals", {}).get("Function", {}).get("Architectures", ["x86_64"])[0]
    if {"arm64": "aarch64"}.get(architecture, architecture) != platform.machine():
        print(
            f"note: this machine is {platform.machine()}, the functions {architecture}: the layer's compiled"
        )
        print("      extensions fall back to pure Python here, so imports err slow")
    print()

    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        provided = runtime_dir(Path(tmp))
        all_layers = {layer for f in functions for layer in f.layers}
        print(f"layers ship {bytecode_files(template, all_layers)} .pyc files (make build's bytecode step)\n")
        source_only = source_only_layers(template, all_layers, Path(tmp))
        for function in functions:
            layer_paths = [layer_folder(template, layer) / "python" for layer in function.layers]
            layer_paths = [path for path in layer_paths if path.is_dir()]
            templates = None
            if "TemplatesLayer" in function.layers:
                templates = layer_folder(template, "TemplatesLayer") / "emberwatch_templates"
            env = child_env(function, layer_paths, provided, templates)
            source_env = child_env(
                function,
                [source_only[layer] for layer in function.layers if layer in source_only],
                provided,
                templates,
            )
            for _ in range(args.runs):  # interleaved, so both series see the same machine load
                wall, cpu = timed_import(python, function, env)
                function.runs_ms.append(wall)
                function.cpu_runs_ms.append(cpu)
                function.source_runs_ms.append(timed_import(python, function, source_env)[0])
            function.imports = import_profile(python, function, env)
            function.size_bytes = folder_bytes(function.folder) + sum(
                folder_bytes(layer_folder(template, layer)) for layer in function.layers
            )

    header = f"{'import ms':>10} {'min':>6} {'max':>6} {'cpu ms':>7} {'no .pyc':>10}  {'MB':>6}"
    print(f"{'function':<16} {header}  layers")
    for f in functions:
        median, low, high = statistics.median(f.runs_ms), min(f.runs_ms), max(f.runs_ms)
        print(
            f"{f.name:<16} {median:>10.0f} {low:>6.0f} {high:>6.0f} {statistics.median(f.cpu_runs_ms):>7.0f} "
            f"{statistics.median(f.source_runs_ms):>10.0f}  {f.size_bytes / MB:>6.2f}  {' + '.join(f.layers)}"
        )
    print("\nimport ms: median wall-clock import of app, boto3 included (the runtime's, imported by app)")
    print("cpu ms: the same imports' median CPU time, steadier than wall-clock on a busy machine")
    print("no .pyc: median import from the same layers with their bytecode removed (compiled at import)")
    for f in functions:
        print(f"\n{f.name}: top 10 imports by cumulative time (-X importtime, ms, one run)")
        for module, self_us, cumulative_us in sorted(f.imports, key=lambda row: row[2], reverse=True)[:10]:
            print(f"  {cumulative_us / 1000:>7.1f}  (self {self_us / 1000:>5.1f})  {module}")
        packages = by_package(f.imports)
        print("  self time by package: " + ", ".join(f"{name} {us / 1000:.0f}" for name, us in packages[:8]))

    slowest = max(statistics.median(f.runs_ms) for f in functions)
    largest = max(f.size_bytes for f in functions) / MB
    print(f"\ncoldstart max_import_ms={slowest:.0f} artifact_mb={largest:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
