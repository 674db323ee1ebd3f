# Every target works from a fresh clone: the virtualenv and the local node are built on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv es-up es-down es-build test test-es test-cluster unit lint demo bench clean

# The local node's release: 8 (8.19.x, the default), 9 (the pinned 9.x) or an exact x.y.z;
# NODES=3 makes es-up start a three-node cluster. esnode.py reads both from the environment.
export ES_VERSION NODES
# The releases make test runs the integration tests on (unit tests run once).
TEST_ES_VERSIONS ?= 8 9

help:
	@echo "make demo     run the job end to end on the local Elasticsearch node"
	@echo "make test     lint, type-check and run every test (integration tests on Elasticsearch 8.19 and 9.x)"
	@echo "make es-up    start the local node in the background (ES_VERSION=9, NODES=3); prints its URL last"
	@echo "make es-down  stop every local node es-up started"
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
	$(VENV)/bin/mypy job esnode

# The test session starts its own node (fresh data in a temporary folder) unless
# DETECTION_ES_HOSTS points at a cluster, and stops it at the end. Unit tests run once, the
# integration tests once per release in TEST_ES_VERSIONS.
test: $(STAMP) lint
	@for v in $(TEST_ES_VERSIONS); do ES_VERSION=$$v $(PYTHON) esnode/esnode.py build || exit 1; done
	$(VENV)/bin/pytest -m "not integration"
	@for v in $(TEST_ES_VERSIONS); do $(MAKE) --no-print-directory test-es ES_VERSION=$$v || exit 1; done

# The integration tests on one release: make test-es ES_VERSION=9
test-es: $(STAMP) es-build
	$(VENV)/bin/pytest -m integration

# Only the three-node cluster tests (make test runs them too), on every release in TEST_ES_VERSIONS.
test-cluster: $(STAMP)
	@for v in $(TEST_ES_VERSIONS); do ES_VERSION=$$v $(VENV)/bin/pytest -m cluster || exit 1; done

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

demo: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m job.demo

bench: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m bench

clean: es-down
	rm -rf $(VENV) .esnode esnode/target .pytest_cache .mypy_cache .ruff_cache .hypothesis
