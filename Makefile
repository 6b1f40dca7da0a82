# The two commands: `make run` and `make test`. Both create .venv on first use and install exactly the
# versions in the lock (requirements/*.txt, with hashes): with uv when it can be installed, else with pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# uv is pinned here; `make lock` writes the same pin, with hashes, into requirements/uv.txt.
UV_VERSION := 0.13.9
# INSTALLER=pip skips uv and installs the same lock with pip (what happens anyway when uv cannot be installed).
INSTALLER ?= uv
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
RUN_LOCK := requirements/run.txt
DEV_LOCK := requirements/dev.txt
UV_LOCK := requirements/uv.txt
# `make lock` keeps the pins it can and only resolves what pyproject.toml changed; UPGRADE=1 moves every pin
# to the newest release pyproject.toml allows.
LOCK_FLAGS := --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command 'make lock' \
	$(if $(UPGRADE),--upgrade)

# The venv is make's own: let Python cache bytecode in it. A first start compiles ~1300 modules (~8 s here); with
# PYTHONDONTWRITEBYTECODE=1 in the environment every later `make run` or `make test` would compile them again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint typecheck pytest bench resilience db-upgrade manifest lock clean

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
	$(BIN)/python -m bench.readme_table

db-upgrade: $(RUN_STAMP)
	$(BIN)/phasegate db upgrade

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Phasegate needs Python 3.11 or newer; set PYTHON=python3.11 (or newer).")'
	$(PYTHON) -m venv --without-pip $(VENV)

# $(call pip_into_venv,ARGS): `pip install ARGS` into the venv, with the interpreter's own pip when it has one
# (pip >= 22.3 has `--python`: the venv then needs no pip of its own, and ensurepip costs ~8 s), else with the venv's pip.
pip_into_venv = { if $(PYTHON) -c 'import pip, sys; sys.exit([*map(int, pip.__version__.split(".")[:2])] < [22, 3])' 2>/dev/null; then \
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check $(1); \
	else { $(PIP) --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip >/dev/null; } \
	&& $(PIP) install --quiet --disable-pip-version-check $(1); fi; }
uv_is_pinned = [ "$$($(BIN)/uv --version 2>/dev/null | cut -d' ' -f2)" = "$(UV_VERSION)" ]
# $(have_uv): true when .venv/bin/uv is the pinned version, installing it (hash-checked, with pip) if needed.
have_uv = [ "$(INSTALLER)" = uv ] && { $(uv_is_pinned) || $(call pip_into_venv,--require-hashes -r $(UV_LOCK)); }

# $(call install_lock,LOCK): the venv gets exactly the versions in LOCK, then the project itself (editable, no
# dependencies, built with the locked setuptools). uv sync also removes what LOCK does not list; pip only adds.
define install_lock
	@if $(have_uv); then \
		echo "uv pip sync --require-hashes $(1)"; \
		$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes $(1) \
		&& $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e . ; \
	else \
		[ "$(INSTALLER)" = uv ] && echo "uv $(UV_VERSION) could not be installed; installing $(1) with pip instead" >&2; \
		echo "pip install --require-hashes -r $(1)"; \
		$(call pip_into_venv,--require-hashes -r $(1)) \
		&& $(call pip_into_venv,--no-deps --no-build-isolation -e .) ; \
	fi
endef

# Syncing the run lock removes the dev tools, so it invalidates the dev stamp; the dev lock includes the run lock.
$(RUN_STAMP): $(RUN_LOCK) $(UV_LOCK) pyproject.toml | $(BIN)/python
	$(call install_lock,$(RUN_LOCK))
	@rm -f $(DEV_STAMP)
	@touch $@

# The dev stamp records which lock the venv holds (its sha256); tests/test_lock.py checks the venv against it.
$(DEV_STAMP): $(DEV_LOCK) $(UV_LOCK) pyproject.toml | $(BIN)/python
	$(call install_lock,$(DEV_LOCK))
	@$(BIN)/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
		$(DEV_LOCK) > $@
	@touch $(RUN_STAMP)

# Refresh the lock after editing dependencies in pyproject.toml (needs PyPI). The dev lock is resolved first and
# the run lock is constrained by it, so both hold the same version of every package they share.
lock: | $(BIN)/python
	@# by version, not from requirements/uv.txt: that file is what this writes (and is stale when UV_VERSION changes)
	@$(uv_is_pinned) || $(call pip_into_venv,uv==$(UV_VERSION))
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/build.in --extra dev -o $(DEV_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/build.in -c $(DEV_LOCK) -o $(RUN_LOCK)
	echo 'uv==$(UV_VERSION)' | $(BIN)/uv pip compile $(LOCK_FLAGS) - -o $(UV_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
