# Every target works from a fresh clone: the virtualenv and the local node are built on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed-stamp

.PHONY: help venv es-up es-down es-build test test-lowest unit lint demo bench clean

help:
	@echo "make demo     run the job end to end on the local Elasticsearch node"
	@echo "make test     lint, type-check and run every test (starts and stops its own node)"
	@echo "make es-up    start the local node in the background; prints its URL last"
	@echo "make es-down  stop the local node"
	@echo "make bench    speed and memory benchmarks"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

es-build:
	@$(PYTHON) esnode/esnode.py build

es-up:
	@$(PYTHON) esnode/esnode.py up

es-down:
	@$(PYTHON) esnode/esnode.py down

lint: $(STAMP)
	$(VENV)/bin/ruff check job tests esnode bench
	$(VENV)/bin/mypy job

# The test session starts its own node (fresh data in a temporary folder) unless
# DETECTION_ES_HOSTS points at a cluster, and stops it at the end.
test: $(STAMP) lint es-build
	$(VENV)/bin/pytest
	@$(MAKE) --no-print-directory test-lowest

# The lowest versions pyproject.toml allows for our direct dependencies, in a virtualenv of their own:
# the unit tests and short runs against a node of their own. A floor set too low fails here.
$(LOWEST_STAMP): pyproject.toml $(STAMP)
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --seed --python $(PYTHON) $(LOWEST)
	$(VENV)/bin/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[dev]'
	@touch $@

test-lowest: $(LOWEST_STAMP) es-build
	$(LOWEST)/bin/python -m pip list --format=freeze 2>/dev/null | grep -iE '^(elasticsearch|apscheduler|tenacity|pydantic|pydantic[-_]settings|lark|tomli[-_]w)==' | tr '\n' ' '; echo
	$(LOWEST)/bin/pytest -q -p no:cacheprovider tests/unit tests/integration/run/test_run_basics.py tests/integration/test_check_command.py

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

demo: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m job.demo

bench: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m bench

clean: es-down
	rm -rf $(VENV) $(LOWEST) .esnode esnode/target .pytest_cache .mypy_cache .ruff_cache .hypothesis
