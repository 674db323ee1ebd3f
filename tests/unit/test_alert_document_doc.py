"""docs/alert-document.md stays true: its example alert is exactly what build_alert makes of its example hit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from job.alerts.build import build_alert
from job.rules.model import Rule
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, seed_rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "alert-document.md"


def _example(name: str) -> Any:
    match = re.search(rf"<!-- example:{name} -->\n```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.S)
    assert match is not None, f"no example:{name} block in {DOC.name}"
    return json.loads(match.group(1))


def test_the_documented_rule_is_the_seed_rule() -> None:
    assert Rule.model_validate(_example("rule")) == seed_rule()


def test_the_documented_alert_is_what_build_alert_makes() -> None:
    rule = Rule.model_validate(_example("rule"))
    alert = build_alert(rule, _example("hit"), now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)
    assert alert == _example("alert")
    assert list(alert) == list(_example("alert"))  # same field order as printed


def test_the_documented_call_arguments() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"built at `{NOW.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}`" in text
    assert f"in run `{EXECUTION_UUID}` of space\n`{SPACE_ID}`" in text


def test_the_documented_rule_is_the_shipped_rule_file() -> None:
    """The doc leaves out the long investigation guide and setup note; everything else is the shipped file."""
    from job.rules import load_rule

    shipped = load_rule(DOC.parents[1] / "rule_defs" / "credential_access_endgame_cred_dumping_detected.toml")
    documented = Rule.model_validate(_example("rule"))
    assert shipped.model_copy(update={"note": None, "setup": None, "metadata": documented.metadata, "source": ""}) == (
        documented
    )
