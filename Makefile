# make run   install into .venv, then retrain on the built-in sample: ingest, train, evaluate, register
# make test  install into .venv with test dependencies, then run the whole test suite
# make lock  re-resolve every dependency to its latest release into requirements.lock, then make test
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

.PHONY: run test lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every install is constrained by requirements.lock (exact versions, all but torch), so a fresh
# machine gets the versions the tests passed with; `make lock` moves them forward.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install -c requirements.lock "$(TORCH)"
	$(PIP) install -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install -c requirements.lock "$(TORCH)"
	$(PIP) install -c requirements.lock -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m flows.retrain --sample

test: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/mypy rmcore flows
	$(BIN)/python -m pytest

# Resolves base + test, hf and bench extras without the lock in a throwaway venv, freezes it minus
# torch, its CUDA-only packages and rmcore, replaces requirements.lock in one mv, then runs the tests
# (which reinstall .venv against the new lock). Commit the lock only when they pass.
lock:
	@set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp" requirements.lock.tmp' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	pip="$$tmp/venv/bin/python -m pip --disable-pip-version-check --quiet"; \
	echo "resolving the latest releases into $$tmp/venv"; \
	$$pip install "$(TORCH)"; \
	$$pip install -e '.[test,hf,bench]'; \
	platform=$$("$$tmp/venv/bin/python" -c 'import platform as p; print(p.python_implementation(), p.python_version(), "on", p.system(), p.machine())'); \
	{ printf '%s\n' \
	  "# requirements.lock: the exact versions that make run / make test (and so CI) install, as pip" \
	  "# constraints (-c): everything pip install -e '.[test,hf,bench]' resolves, so -e ., -e '.[test]'" \
	  "# and -e '.[bench]' are all locked by this one file." \
	  "# Resolved for $$platform, $$(date -u +%Y-%m-%d)." \
	  "# torch is deliberately absent, and so are its CUDA-only packages (nvidia-*, triton, cuda-*): the" \
	  "# Makefile pins the CPU build (TORCH) and installs it only when .venv has no torch, so a GPU user's" \
	  "# own CUDA build stays in place; a pin here would replace it." \
	  "# Regenerate (re-resolve everything to its latest release, then run the tests): make lock"; \
	  $$pip freeze --exclude-editable | grep -v -i -E '^(torch|triton|rmcore|nvidia[-_.][^=]*|cuda[-_.][^=]*)=='; \
	} > requirements.lock.tmp; \
	mv requirements.lock.tmp requirements.lock; \
	echo "requirements.lock: $$(grep -c '==' requirements.lock) pins; now make test"
	$(MAKE) test

lint: $(VENV)/.installed-test
	$(BIN)/ruff check rmcore flows tests bench
	$(BIN)/ruff format --check rmcore flows tests bench

clean:
	rm -rf $(VENV) .prefect data/lake data/raw/sample runs mlflow/mlflow.db mlflow/artifacts
