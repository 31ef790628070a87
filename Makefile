# One entry point for every routine job; CI runs `make check` through .ci/run.
#   make setup   create .venv (if missing) and install the project editable with [dev] extras
#   make demo    dry-run the example playbooks against the example fixtures
#   make test    run the test suite (pytest, 2 workers when pytest-xdist is installed)
#   make lint    ruff check + mypy (strict) on the package
#   make check   lint + test: exactly what CI runs
#   make bench   install the [bench] extras and run the benchmarks

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
BENCH ?= bench/run.py

export PIP_DISABLE_PIP_VERSION_CHECK := 1

SETUP_STAMP := $(VENV)/.playbook-setup.stamp
BENCH_STAMP := $(VENV)/.playbook-bench.stamp

.PHONY: help setup demo test lint check bench clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# The stamp lives inside the venv, so deleting the venv also forgets the install; it is
# redone whenever pyproject.toml changes.
$(SETUP_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(SETUP_STAMP)

demo: setup
	$(BIN)/playbook dry-run playbooks/examples --fixtures playbooks/examples/fixtures/accounts.yaml

# Uses -n only when pytest-xdist is importable and more than one worker is asked for.
# pytest's exit code 5 means it collected no tests: that is a failure, said plainly.
test: setup
	@workers=""; \
	if [ "$(PYTEST_WORKERS)" -gt 1 ] 2>/dev/null && $(BIN)/python -c 'import xdist' 2>/dev/null; then \
	  workers="-n $(PYTEST_WORKERS)"; \
	fi; \
	rc=0; $(BIN)/pytest $$workers -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); counting that as a failure" >&2; fi; \
	exit $$rc

# Runs both tools even when the first fails, so one run shows every problem.
lint: setup
	@rc=0; \
	echo "+ ruff check ."; $(BIN)/ruff check . || rc=1; \
	echo "+ mypy playbook_engine"; $(BIN)/mypy playbook_engine || rc=1; \
	exit $$rc

check: lint test

$(BENCH_STAMP): $(SETUP_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	@test -f $(BENCH) || { echo "make bench: $(BENCH) does not exist yet" >&2; exit 1; }
	$(BIN)/python $(BENCH)

clean:
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./.venv -prune -o -path ./.ci-venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
