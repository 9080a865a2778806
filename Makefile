# Emberwatch: the targets a newcomer guesses. Each installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: use that exact Python (pyenv build here) for the venv and sam build.
PY313_PREFIX := $(shell pyenv prefix 3.13.0 2>/dev/null || pyenv prefix 3.13 2>/dev/null)
PYTHON ?= $(if $(PY313_PREFIX),$(PY313_PREFIX)/bin/python3,$(shell command -v python3.13 || command -v python3))
VENV := .venv
TOOLS := .tools
SAM := $(TOOLS)/bin/sam
CFN_LINT := $(TOOLS)/bin/cfn-lint
STAGE ?= dev
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv tools test unit integration demo lint format validate build bytecode build-check deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml layers/emberwatch/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create .venv with the project, its CLI and test tools

# aws-sam-cli pins its own boto3 and click: it lives in its own environment, not in .venv.
$(TOOLS)/.installed:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0'
	# checkov pins its own boto3 (older than aws-sam-cli's): a venv of its own inside .tools
	python3 -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet 'checkov==3.3.30'
	touch $@

tools: $(TOOLS)/.installed ## install aws-sam-cli, cfn-lint and checkov into .tools

test: venv ## run the unit and integration tests
	$(VENV)/bin/python -m pytest

unit: venv
	$(VENV)/bin/python -m pytest tests/unit

integration: venv
	$(VENV)/bin/python -m pytest tests/integration

demo: venv ## run a simulated week locally (moto server, recorded sources) and write out/
	$(VENV)/bin/python -m sim.demo

lint: venv tools validate ## ruff and the template linters
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: tools ## cfn-lint and sam validate --lint on infra/template.yaml
	$(CFN_LINT) infra/template.yaml
	$(SAM) validate --lint

build: tools ## sam build with the runtime's Python on PATH
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || \
		{ echo "sam build needs Python 3.13 (the Lambda runtime); $(PYTHON) is not (pyenv install 3.13.0)" >&2; exit 1; }
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) build
	$(MAKE) --no-print-directory bytecode

# Lambda cannot write bytecode (/opt and /var/task are read-only), so without .pyc in the layer every cold
# start compiles each module it imports from source: about 40% of the import time. Compile the built layer
# with the runtime's own Python (the bytecode format is per minor version), unchecked-hash so the zip's
# timestamps do not matter. Powertools utilities the code never imports, and feedparser (only the feed
# source's runs import it), are left as source: their bytecode would push the artifact past 15 MB
# (bench/coldstart.py reports both figures).
BYTECODE_SKIP := aws_lambda_powertools/(event_handler|tracing|utilities/(?!parameters|batch|typing)[^/]+)/|/feedparser/|/tests?/
bytecode:
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash -x '$(BYTECODE_SKIP)' \
		.aws-sam/build/EmberwatchLayer/python

build-check: build venv ## import the built functions and render from the built artifacts
	$(VENV)/bin/python -m pytest -m build tests/integration/test_built_artifacts.py

# --parameter-overrides replaces samconfig's list, so Stage is repeated here. Parameters not given keep
# the stack's previous value; the first deploy needs SENDER_EMAIL (a verified SES identity).
deploy: build ## sam deploy (STAGE=dev|prod; first time also SENDER_EMAIL=..., optional ALERT_EMAIL=...)
	$(SAM) deploy --config-env $(STAGE) --parameter-overrides Stage=$(STAGE) \
		$(if $(SENDER_EMAIL),SenderEmail=$(SENDER_EMAIL)) $(if $(ALERT_EMAIL),AlertEmail=$(ALERT_EMAIL))

.PHONY: reliability
# Not part of `make test` (the `reliability` marker is deselected there): a few minutes of faults,
# crashes and hostile input. The last line is `reliability cases=<N> lost=<N> duplicates=<N>`.
reliability: venv tools ## fault, crash and bad-input suite; prints a table (lost and duplicates must be 0)
	$(VENV)/bin/python bench/reliability.py

.PHONY: bench bench-coldstart bench-ingest bench-enrich bench-digest

bench: bench-coldstart bench-ingest bench-enrich bench-digest ## every benchmark; each ends with one summary line

# bench/coldstart.py runs `make build` itself (sam build needs the tools) unless given --no-build.
bench-coldstart: venv tools ## import each built handler as Lambda does (median ms) and size the artifacts
	$(VENV)/bin/python bench/coldstart.py

bench-ingest: venv ## parse, match and store 10,000 mentions against moto (ms per mention, DynamoDB requests)
	$(VENV)/bin/python bench/ingest.py

bench-enrich: venv ## tone and theme of 450 hand-labelled mentions (accuracy, macro F1) and CPU ms per mention
	$(VENV)/bin/python bench/enrich_eval.py

# Stores the weeks through moto in this process: the 200,000-mention week takes a long while (see README).
bench-digest: venv ## weekly digests of a 10,000- and a 200,000-mention week: build seconds, DynamoDB items read
	$(VENV)/bin/python bench/digest.py

.PHONY: scale cost

# queue mode at scale: dispatcher + scan workers against moto, 8 sources in their real formats (docs/scale.md)
scale: venv ## dispatch and scan 100 brands x 8 sources in one 5-minute period, locally (about 2-4 minutes)
	$(VENV)/bin/python -m sim.scale --json out/scale.json

cost: venv ## monthly AWS cost at 1k, 100k and 1M mentions a day from out/scale.json (docs/cost.md)
	$(VENV)/bin/python bench/cost.py --scale out/scale.json --run-ingest

clean:
	rm -rf .aws-sam out .pytest_cache
