# Every target works from a fresh clone: the virtualenv and the local node are built on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed-stamp

.PHONY: help venv es-up es-down es-build test test-es test-cluster unit lint demo bench bench-peers clean chart-tools chart-check test-lowest

# The local node's release: 8 (8.19.x, the default), 9 (the pinned 9.x) or an exact x.y.z;
# NODES=3 makes es-up start a three-node cluster, ESQL=1 the ES|QL node (8.19 only). esnode.py reads
# them from the environment.
export ES_VERSION NODES ESQL
# The releases make test runs the integration tests on (unit tests run once).
TEST_ES_VERSIONS ?= 8 9

# The chart checks run the real helm and promtool, built once from the Go module proxy into
# .tools/ (ignored by git; a new version pin builds into a new folder). The Prometheus module's
# v0.316.0 is Prometheus 3.16.0; remove_all_sd leaves out the service-discovery plugins (cloud
# SDKs), which promtool's rule checks do not use: fewer modules to download and packages to compile.
HELM_VERSION := v3.21.4
PROMTOOL_VERSION := v0.316.0
TOOLS := $(CURDIR)/.tools
HELM := $(TOOLS)/helm-$(HELM_VERSION)/helm
PROMTOOL := $(TOOLS)/promtool-$(PROMTOOL_VERSION)/promtool
GO_INSTALL := GOTOOLCHAIN=local go install
# What helm's own release build stamps in: its version, and the Kubernetes version that `helm
# template` and `helm lint` assume without --kube-version (1.36: its client-go is v0.36; unset, it
# would be 1.20, below the chart's kubeVersion).
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach pkg,pkg/lint/rules pkg/chartutil,-X helm.sh/helm/v3/$(pkg).k8sVersionMajor=1 -X helm.sh/helm/v3/$(pkg).k8sVersionMinor=36)

help:
	@echo "make demo     run the job end to end on the local Elasticsearch node"
	@echo "make test     lint, type-check and run every test (integration tests on Elasticsearch 8.19 and 9.x)"
	@echo "make test-cluster  only the three-node cluster tests, on 8.19 and 9.x"
	@echo "make es-up    start the local node in the background (ES_VERSION=9, NODES=3, ESQL=1); prints its URL last"
	@echo "make es-down  stop every local node es-up started"
	@echo "make bench    speed and memory against the floor on the local node (table in bench/results/latest.json)"
	@echo "make bench-peers  the job beside ElastAlert 2 (Python 3.12+ needed; skipped otherwise)"
	@echo "make chart-check  helm lint/template, Kubernetes 1.30 schemas, promtool, the rendered pods run"

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
# DETECTION_ES_HOSTS points at a cluster, and stops it at the end; the 8.19 session also starts the
# ES|QL node (ESQL=1) for the ES|QL tests, which a 9.x session skips. Unit tests run once, the
# integration tests (the three-node cluster tests among them) once per release in TEST_ES_VERSIONS;
# then the chart checks and the lowest dependency versions.
test: $(STAMP) lint
	@for v in $(TEST_ES_VERSIONS); do ESQL= ES_VERSION=$$v $(PYTHON) esnode/esnode.py build || exit 1; done
	@ESQL=1 ES_VERSION=8 $(PYTHON) esnode/esnode.py build
	$(VENV)/bin/pytest -m "not integration" --ignore=tests/chart
	@for v in $(TEST_ES_VERSIONS); do $(MAKE) --no-print-directory test-es ES_VERSION=$$v || exit 1; done
	@$(MAKE) --no-print-directory chart-check
	@$(MAKE) --no-print-directory test-lowest

# The integration tests on one release: make test-es ES_VERSION=9
test-es: $(STAMP)
	@ESQL= $(PYTHON) esnode/esnode.py build
	$(VENV)/bin/pytest -m integration --ignore=tests/chart

# The three-node cluster tests (the cluster itself, and the job on it while nodes die and restart), on
# every release in TEST_ES_VERSIONS; make test runs them too.
test-cluster: $(STAMP)
	@for v in $(TEST_ES_VERSIONS); do ESQL= ES_VERSION=$$v $(PYTHON) esnode/esnode.py build || exit 1; done
	@for v in $(TEST_ES_VERSIONS); do ES_VERSION=$$v $(VENV)/bin/pytest -m cluster --ignore=tests/chart || exit 1; done

$(HELM):
	@echo "building helm $(HELM_VERSION) from the Go module proxy (once; several minutes)"
	GOBIN=$(@D) $(GO_INSTALL) -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(PROMTOOL):
	@echo "building promtool $(PROMTOOL_VERSION) from the Go module proxy (once; several minutes)"
	GOBIN=$(@D) $(GO_INSTALL) -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

chart-tools: $(HELM) $(PROMTOOL)

chart-check: $(STAMP) chart-tools es-build
	CHART_HELM=$(HELM) CHART_PROMTOOL=$(PROMTOOL) $(VENV)/bin/pytest tests/chart

# The lowest versions pyproject.toml allows for our direct dependencies, in a virtualenv of their own:
# the unit tests and short runs against a node of their own. A floor set too low fails here.
$(LOWEST_STAMP): pyproject.toml $(STAMP)
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --seed --python $(PYTHON) $(LOWEST)
	$(VENV)/bin/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[dev]'
	@touch $@

test-lowest: $(LOWEST_STAMP) es-build
	$(LOWEST)/bin/python -m pip list --format=freeze 2>/dev/null | grep -iE '^(elasticsearch|apscheduler|tenacity|pydantic|pydantic[-_]settings|lark|tomli[-_]w|ecs[-_]logging|prometheus[-_]client|rich|orjson)==' | tr '\n' ' '; echo
	$(LOWEST)/bin/pytest -q -p no:cacheprovider tests/unit tests/integration/run/test_run_basics.py tests/integration/test_check_command.py

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

demo: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m job.demo

# Not part of make test: it prints PASS/FAIL per target and never fails (bench/suite.py). The ES|QL figure
# runs on the ES|QL node, which it starts beside the plain one.
bench: $(STAMP) es-up
	@ESQL=1 ES_VERSION=8 $(PYTHON) esnode/esnode.py up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) \
		BENCH_ESQL_HOSTS=$$(ESQL=1 ES_VERSION=8 $(PYTHON) esnode/esnode.py url) $(PY) -m bench

# ElastAlert 2 on the same events, in .venv-peers (Python 3.12+; skipped without one). Never fails.
bench-peers: $(STAMP) es-up
	DETECTION_ES_HOSTS=$$($(PYTHON) esnode/esnode.py url) $(PY) -m bench.peers

clean: es-down
	rm -rf $(VENV) $(LOWEST) .venv-peers .esnode esnode/target .pytest_cache .mypy_cache .ruff_cache .hypothesis .tools
