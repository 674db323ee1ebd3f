# Every target works from a fresh clone: the virtualenv and the local node are built on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv es-up es-down es-build test unit lint demo bench clean

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

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

demo: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m job.demo

bench: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m bench

clean: es-down
	rm -rf $(VENV) .esnode esnode/target .pytest_cache .mypy_cache .ruff_cache .hypothesis
