# make run   install into .venv, then run the main job on the built-in sample
# make test  install into .venv with test dependencies, then run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m flows.ingest --sample

test: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/mypy rmcore flows
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/ruff format --check rmcore flows tests bench

clean:
	rm -rf $(VENV) .prefect data/lake data/raw/sample
