# The verbs a newcomer needs. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt constraints.txt layers/batchrecs/requirements.txt | sha1sum | cut -c1-12)
# The SAM CLI lives in its own venv (it pins its own boto3); sam build needs python3.12 on PATH,
# which pyenv provides on these machines.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
SAM_PYENV ?= 3.11.7:3.12.1:3.13.0
# checkov too has its own venv (it pins its own boto3 and many more)
CHECKOV := .venv-checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
export SAM_CLI_TELEMETRY := 0

.PHONY: venv demo bench chaos test unit integration e2e lint format validate build deploy clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt layers/batchrecs/requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: venv  ## the whole pipeline on the embedded local cloud, with the sample files
	$(BIN)/batchrecs demo

bench: venv  ## export throughput against local DynamoDB-protocol endpoints; writes bench/out/results.json (untracked)
	$(BIN)/python bench/run.py

chaos: venv  ## the pipeline under injected faults on the local cloud: one table (CI runs --short in make test)
	$(BIN)/batchrecs chaos

test: venv  ## unit, integration and e2e tests (what CI runs)
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest tests/integration

e2e: venv
	$(BIN)/pytest tests/e2e

lint: venv $(CHECKOV)  ## ruff, mypy, cfn-lint (+ serverless rules) and checkov on the template
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules --include-checks I  # informational checks too
	$(CHECKOV) --config-file .checkov.yaml -f template.yaml

$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --disable-pip-version-check checkov==$(CHECKOV_VERSION)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)

validate: $(SAM)  ## sam validate --lint
	$(SAM) validate --lint

build: $(SAM)  ## sam build (layer and functions, python3.12)
	PYENV_VERSION=$(SAM_PYENV) $(SAM) build

deploy: build  ## asks for the solution version ARNs (empty: that route off) and saves them; ENV=dev|prod
	$(SAM) deploy --guided --config-env $(or $(ENV),default)

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-checkov .aws-sam .pytest_cache .ruff_cache .mypy_cache
