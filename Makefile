# The two set-up commands are `make run` and `make test`; both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK ?= True

.PHONY: run test models lint typecheck pytest golden-fixtures constraints clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## run: export the reference models if missing, then list the store
run: models

## models: train and export the reference models that are not in the store yet
models: $(STAMP)
	$(PY) -m training_export train --all --skip-existing
	$(PY) -m training_export list

## test: lint, type-check and the whole test suite
test: lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy training_export services

pytest: $(STAMP)
	$(PY) -m pytest

## golden-fixtures: rewrite tests/fixtures/golden after a deliberate change of recipe or library
golden-fixtures: $(STAMP)
	$(PY) -m tests.utils.golden_fixtures

## constraints: re-pin the tested dependency set after changing pyproject.toml
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
