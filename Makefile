# The verbs a newcomer needs. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt constraints.txt layers/batchrecs/requirements.txt | sha1sum | cut -c1-12)
# sam build needs a python3.12 interpreter on PATH (pyenv provides one on these machines).
SAM_PYENV ?= 3.11.7:3.12.1:3.13.0

.PHONY: venv test unit integration lint format build deploy clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt layers/batchrecs/requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

test: venv  ## unit + integration tests (what CI runs)
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest tests/integration

lint: venv  ## ruff, mypy, cfn-lint on the template
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

build:  ## sam build (needs the SAM CLI and python3.12 on PATH)
	PYENV_VERSION=$(SAM_PYENV) sam build

deploy: build
	sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache
