"""``detection-job validate``: 0 on the shipped rules; one ``FILE:LINE: message`` per problem otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from job.cli import main
from job.config.settings import SHIPPED_RULES_DIR
from tests.unit.test_rule_loader import BASE, CASES

PROBLEM = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<message>.+)$")


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["validate", "--offline", *args])  # no cluster here; tests/integration covers validate with one
    return code, capsys.readouterr().out.splitlines()


def test_shipped_rules_validate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_RULES_DIR", str(SHIPPED_RULES_DIR))
    monkeypatch.setenv("DETECTION_ALERTS_MAX", "1000")
    code, lines = _validate(capsys)
    assert code == 0
    assert lines[-1] == "15 rules loaded: 0 problems, 15 warnings"
    # The only warnings: the global cap is below the rules' max_signals, in Kibana's words.
    for line in lines[:-1]:
        match = PROBLEM.match(line)
        assert match, line
        assert match["message"].startswith("warning: The rule's max alerts per run setting (10000) is greater than")
        assert match["message"].endswith("Set DETECTION_ALERTS_MAX=10000 to let it write them all.")


def test_raising_the_cap_silences_the_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETECTION_ALERTS_MAX", "10000")
    code, lines = _validate(capsys, str(SHIPPED_RULES_DIR))
    assert (code, lines) == (0, ["15 rules loaded: 0 problems, 0 warnings"])


def _line(text: str, prefix: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(prefix))


def test_every_problem_of_a_folder_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected: dict[str, int | None] = {}
    for case, change, key, _ in CASES:
        text = change(BASE)
        (tmp_path / f"{case}.toml").write_text(text)
        expected[f"{case}.toml"] = _line(text, key) if key else None
    bad_kql = BASE.replace("event.kind:alert and user.name:admin", "event.kind:alert and (user.name:admin")
    bad_kql = bad_kql.replace("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000003")
    (tmp_path / "bad_kql.toml").write_text(bad_kql)
    # A query error points at the line of the query text itself, the line after the opening quotes.
    expected["bad_kql.toml"] = _line(bad_kql, "query =") + 1
    other = BASE.replace('type = "query"', 'type = "threat_match"')
    other = other.replace("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")
    (tmp_path / "indicator.toml").write_text(other)
    expected["indicator.toml"] = _line(other, "type =")
    (tmp_path / "good.toml").write_text(BASE)
    (tmp_path / "zz_duplicate.toml").write_text(BASE)
    expected["zz_duplicate.toml"] = _line(BASE, "rule_id")
    (tmp_path / "exceptions").mkdir()
    (tmp_path / "exceptions" / "not_a_rule.toml").write_text('list_id = "l"\n')

    code, lines = _validate(capsys, str(tmp_path))
    assert code == 1
    *problems, summary = lines
    assert summary == f"3 rules loaded: {len(expected)} problems, 0 warnings"
    found = {}
    for line in problems:
        match = PROBLEM.match(line)
        if match is None:  # no line known: "FILE: message"
            path, message = line.split(": ", 1)
            found[Path(path).name] = None
        else:
            found[Path(match["path"]).name] = int(match["line"])
    assert found == expected
    kql_line = next(line for line in problems if "bad_kql.toml" in line)
    assert re.search(r":\d+: query line 1, column \d+: Expected .+", kql_line), kql_line
    other_line = next(line for line in problems if "indicator.toml" in line)
    assert other_line.endswith("type: threat_match (indicator match) rules are not run by this job")


def test_a_single_file_can_be_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rule.toml"
    path.write_text(BASE)
    assert _validate(capsys, str(path)) == (0, ["1 rules loaded: 0 problems, 0 warnings"])
