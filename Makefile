# make run   install into .venv, then retrain on the built-in sample: ingest, train, evaluate, register
# make test  install into .venv with test dependencies, then run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# The CPU build of PyTorch, pinned so no resolver pulls a multi-GB CUDA build; GPU users install
# their own CUDA build into .venv first (see README), which this pin then leaves alone.
TORCH ?= torch==2.13.0
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING
export MLFLOW_LOGGING_LEVEL ?= WARNING
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m flows.retrain --sample

test: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/mypy rmcore flows
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/ruff format --check rmcore flows tests bench

clean:
	rm -rf $(VENV) .prefect data/lake data/raw/sample runs mlflow/mlflow.db mlflow/artifacts
