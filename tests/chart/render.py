"""Render the chart with the real ``helm`` binary and read what it printed.

``make chart-check`` builds helm (and promtool) from the Go module proxy at pinned versions and
passes their paths in ``CHART_HELM`` and ``CHART_PROMTOOL``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "detection-job"
VALUES = Path(__file__).resolve().parent / "values"
KUBE_VERSION = "1.30.0"
RELEASE = "detect"

# The values sets rendered and checked; each is a list of files under tests/chart/values/.
VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "deployment": ["deployment.yaml"],
    "shards": ["shards.yaml"],
    "inline-rules": ["inline-rules.yaml"],
    "mtls": ["mtls.yaml"],
}


def tool(variable: str, name: str) -> Path:
    """The binary that ``make chart-check`` built; a clear failure when it is missing."""
    value = os.environ.get(variable)
    if not value or not Path(value).is_file():
        raise RuntimeError(f"{name} not found ({variable} unset or wrong): run `make chart-check`, which builds it")
    return Path(value)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm with a private home, so no user configuration or repository cache plays a part."""
    home = ROOT / ".tools" / "helm-home"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(
        [str(tool("CHART_HELM", "helm")), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def values_args(files: Sequence[str], set_json: dict[str, Any] | None = None) -> list[str]:
    args: list[str] = []
    for name in files:
        args += ["--values", str(VALUES / name)]
    for key, value in (set_json or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@dataclass(frozen=True)
class Manifests:
    """The objects of one rendered release."""

    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        """The object of ``kind`` with the ``app.kubernetes.io/component`` label ``component``; without one,
        the only object of that kind, or else the one without a component label (the run's CronJob beside the
        maintenance CronJob)."""
        docs = self.of_kind(kind)
        if component is None and len(docs) > 1:
            docs = [doc for doc in docs if "app.kubernetes.io/component" not in doc["metadata"]["labels"]]
        found = [
            doc
            for doc in docs
            if component is None or doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
        return found[0]

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every pod template: (``Kind/name``, pod spec)."""
        for doc in self.docs:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] == "CronJob":
                yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            elif doc["kind"] in {"Job", "Deployment"}:
                yield name, doc["spec"]["template"]["spec"]


def template(
    files: Sequence[str] = (),
    set_json: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    show_only: str | None = None,
) -> Manifests:
    """``helm template`` for Kubernetes 1.30, parsed."""
    args = ["template", release, str(CHART), "--kube-version", KUBE_VERSION, *values_args(files, set_json)]
    if show_only:
        args += ["--show-only", show_only]
    output = helm(*args).stdout
    return Manifests([doc for doc in yaml.safe_load_all(output) if doc])
