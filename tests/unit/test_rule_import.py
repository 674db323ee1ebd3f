"""``detection-job import``: a hand-written Kibana export (ndjson) into rule and exception-list files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from job.cli import main
from job.rules import load_rule, load_rules
from job.rules.kibana_import import parse_export, rule_document, rule_filename
from job.rules.parts import ListRef

EXPORT = Path(__file__).resolve().parent.parent / "fixtures" / "kibana_export.ndjson"
RULE_FILES = ("admin_tool_execution.toml", "suspicious_child_of_word.toml", "new_country_for_user.toml")


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["import", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_lines_are_sorted_by_kind() -> None:
    export = parse_export(EXPORT.read_text())
    assert [number for number, _ in export.rules] == [1, 2, 3]
    assert list(export.containers) == ["team-exceptions"]
    assert [number for number, _ in export.items] == [5, 6]
    assert export.skipped == [(7, "action connector skipped (this job sends no notifications)")]
    assert export.problems == []


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("Admin Tool Execution", "admin_tool_execution.toml"),
        ("Credential Dumping - Detected - Elastic Endgame", "credential_dumping_detected_elastic_endgame.toml"),
        ("  Ünïcode & (symbols)!  ", "n_code_symbols.toml"),
        ("***", "rule.toml"),
    ],
)
def test_rule_filename_is_snake_case_of_the_name(name: str, filename: str) -> None:
    assert rule_filename(name) == filename


def test_kibana_only_keys_are_dropped_and_dates_mapped() -> None:
    obj = json.loads(EXPORT.read_text().splitlines()[0])
    document, warnings = rule_document(obj)
    assert document["metadata"] == {"creation_date": "2024/05/02", "updated_date": "2025/01/20"}
    rule = document["rule"]
    for key in ("id", "created_at", "updated_by", "immutable", "rule_source", "revision", "related_integrations"):
        assert key not in rule
    for key in ("output_index", "actions", "meta", "throttle", "risk_score_mapping"):
        assert key not in rule
    # Rule parameters that reach the alert are kept (empty lists are dropped as defaults).
    assert rule["required_fields"] == [{"name": "process.name", "type": "keyword", "ecs": True}]
    assert rule["filters"][0]["meta"] == {"negate": True, "disabled": False, "key": "host.name", "type": "phrase",
                                           "params": {"query": "jump-01"}}  # fmt: skip
    assert rule["version"] == 3 and rule["timestamp_override"] == "event.ingested"
    assert warnings == ["actions are not imported: this job sends no notifications"]


def test_import_writes_rules_and_lists_that_load_strictly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _import(capsys, str(EXPORT), "--out", str(tmp_path))
    assert code == 0, err
    written = sorted(line.removeprefix("wrote ") for line in out.splitlines())
    lists = [str(tmp_path / "exceptions" / "team-exceptions.toml")]
    expected = sorted([str(tmp_path / name) for name in RULE_FILES] + lists)
    assert written == expected
    warnings = err.splitlines()
    assert f"{EXPORT}:1: warning: rule.experimental_flag: unknown key (ignored)" in warnings
    assert f"{EXPORT}:1: warning: actions are not imported: this job sends no notifications" in warnings
    assert f"{EXPORT}:7: warning: action connector skipped (this job sends no notifications)" in warnings
    assert (
        f"{EXPORT}:6: warning: exception item 'jump-hosts' uses value list 'jump-hosts.txt': the export does not "
        "hold its values; load them with: detection-job lists import FILE --type ip --list-id jump-hosts.txt"
    ) in warnings

    result = load_rules([tmp_path])  # strict: the files are ours now
    assert result.problems == () and result.warnings == ()
    rules = {rule.name: rule for rule in result.rules}
    admin = rules["Admin Tool Execution"]
    assert admin.query == 'event.category:process and process.name:(psexec.exe or "procdump64.exe")'
    assert admin.version == 3
    assert (admin.references, admin.false_positives) == (("https://example.com/runbook",), ("Patch nights",))
    assert admin.threat[0].technique[0].subtechnique[0].id == "T1569.002"
    item, jump_hosts = admin.exceptions
    assert [(e.field, e.type, e.operator, e.list) for e in jump_hosts.entries] == [
        ("source.ip", "list", "included", ListRef(id="jump-hosts.txt", type="ip"))
    ]
    assert (item.item_id, item.list_id, item.os_types, item.comments) == (
        "svc-patch-tools",
        "team-exceptions",
        ("windows",),
        ("Approved in CHG-42",),
    )
    assert [(e.type, e.operator, e.value) for e in item.entries] == [
        ("match", "included", "svc-patch"),
        ("wildcard", "excluded", "dc-*"),
    ]
    assert rules["Suspicious Child of Word"].type == "eql" and rules["Suspicious Child of Word"].supported
    new_terms = tomllib.loads((tmp_path / "new_country_for_user.toml").read_text())["rule"]["new_terms"]
    assert new_terms == {
        "field": "new_terms_fields",
        "value": ["user.name", "source.geo.country_iso_code"],
        "history_window_start": [{"field": "history_window_start", "value": "now-14d"}],
    }
    text = (tmp_path / "admin_tool_execution.toml").read_text()
    for kibana_key in ("created_by", "rule_source", "revision", "output_index", "experimental_flag", "svc-patch"):
        assert kibana_key not in text


def test_existing_files_are_kept_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _import(capsys, str(EXPORT), "--out", str(tmp_path))[0] == 0
    (tmp_path / "admin_tool_execution.toml").write_text("# edited by hand\n")
    code, out, err = _import(capsys, str(EXPORT), "--out", str(tmp_path))
    assert code == 1 and out == ""
    assert f"{EXPORT}:1: {tmp_path / 'admin_tool_execution.toml'} exists; use --force to overwrite" in err.splitlines()
    assert (tmp_path / "admin_tool_execution.toml").read_text() == "# edited by hand\n"
    code, out, err = _import(capsys, str(EXPORT), "--out", str(tmp_path), "--force")
    assert code == 0, err
    assert load_rule(tmp_path / "admin_tool_execution.toml").name == "Admin Tool Execution"


def test_bad_lines_are_problems_and_the_rest_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = EXPORT.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["risk_score"] = 101
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join([lines[0], "{not json", json.dumps(broken), lines[2], "[1, 2]"]) + "\n")
    code, out, err = _import(capsys, str(export), "--out", str(tmp_path / "rules"))
    assert code == 1
    problems = [line for line in err.splitlines() if ": warning: " not in line and not line.startswith("imported")]
    assert problems == [
        f"{export}:2: not a JSON object: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        f"{export}:5: not a JSON object",
        f"{export}:3: rule.risk_score: input should be less than or equal to 100 (got 101)",
    ]
    assert sorted(p.name for p in (tmp_path / "rules").glob("*.toml")) == sorted(
        ["admin_tool_execution.toml", "new_country_for_user.toml"]
    )


def test_missing_export_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _import(capsys, str(tmp_path / "nope.ndjson"), "--out", str(tmp_path))
    assert code == 1
    assert err.strip() == f"{tmp_path / 'nope.ndjson'}: cannot read: No such file or directory"
