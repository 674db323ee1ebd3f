"""The README documents every value of the Helm chart, and its role block stays machine-readable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _documented() -> set[str]:
    """``a``, ``a.b`` for every `a` and `a.{b,c}` written in the README's Values paragraph."""
    paragraph = README.split("**Values.**", 1)[1].split("\n\n", 1)[0]
    found: set[str] = set()
    for top, inner, single in re.findall(r"`([A-Za-z]+)(?:\.\{([^}]*)\}|\.([A-Za-z]+))?`", paragraph):
        found.add(top)
        found.update(f"{top}.{key}" for key in [*inner.split(","), single] if key)
    return found


def test_every_chart_value_is_in_the_readme() -> None:
    values = yaml.safe_load((ROOT / "helm" / "detection-job" / "values.yaml").read_text())
    # Maps of the user's own keys (labels, rule files, node selectors) or of Kubernetes' own.
    free_form = {"rules", "commonLabels", "podAnnotations", "nodeSelector", "affinity", "resources"}
    expected = set(values)
    for top, value in values.items():
        if isinstance(value, dict) and top not in free_form:
            expected |= {f"{top}.{key}" for key in value}
    assert sorted(expected - _documented()) == []


def test_the_role_block_holds_the_setup_runtime_and_preview_roles() -> None:
    block = re.search(
        r"<!-- elasticsearch-roles:begin -->\n```json\n(.*?)```\n<!-- elasticsearch-roles:end -->", README, re.S
    )
    assert block, "the README's role block is missing or its markers moved"
    roles = json.loads(block.group(1))
    assert sorted(roles) == ["detection-job-preview", "detection-job-runtime", "detection-job-setup"]
    # The rule indices come first (users add their patterns there); reading them is all a run does there
    # (tests/integration/run/test_least_privilege.py checks every privilege against the requests).
    for name in ("detection-job-runtime", "detection-job-preview"):
        assert roles[name]["indices"][0]["privileges"] == ["read"], "the rule indices come first"
    for role in roles.values():
        assert set(role) == {"cluster", "indices"}
        assert all(set(entry) == {"names", "privileges"} for entry in role["indices"])
