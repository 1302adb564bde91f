# The task runner. Needs only Python 3.11+; everything else goes into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test processes for `make test`, each with its own Temporal dev server and Postgres: most of a
# test is waiting on them, so two share 2 cores well (362 s against 465 s for one, loaded).
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.PHONY: help install dev test test-reliability lint bench worker api clean

help:
	@echo "make dev | test | test-reliability | lint | bench | worker | api | clean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/promptpilot dev

# Exit code 5 (no tests collected) fails the target like any other failure. Browser tests
# (tests/browser) run when Debian's Chromium is at /usr/bin/chromium; without it they are
# skipped and the summary says so ("browser tests skipped: ...").
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests --ignore=tests/reliability $(PYTEST_ARGS)

test-reliability: $(STAMP)
	$(BIN)/python -m pytest -q tests/reliability $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy schema definition store workflows activities api promptpilot devstack payloads reconcile worker.py tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

worker: $(STAMP)
	$(BIN)/promptpilot worker

api: $(STAMP)
	$(BIN)/promptpilot api

clean:
	rm -rf var/
