# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest bench resilience db-upgrade manifest clean

run: $(RUN_STAMP)
	$(BIN)/phasegate run

test: $(DEV_STAMP)
	$(BIN)/ruff check bot handlers tests bench migrations
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check bot handlers tests bench migrations
	$(BIN)/ruff format --check bot handlers

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

resilience: $(DEV_STAMP)
	$(BIN)/pytest -q -m resilience -s $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run_all

db-upgrade: $(RUN_STAMP)
	$(BIN)/phasegate db upgrade

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Phasegate needs Python 3.11 or newer; set PYTHON=python3.11 (or newer).")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
