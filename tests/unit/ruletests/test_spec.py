"""Rule test files read: every problem at its file and line, the rest of the file still read."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.config.settings import SHIPPED_RULES_DIR
from job.rules import load_rules
from job.ruletests.spec import discover, normalize_expected, read_test_file

GOOD = """rule = "../r.toml"

[[test]]
name = "alerts"
events = '''
{"@timestamp": "2026-01-01T00:00:00Z"}
'''
alerts = 1

[[test.alert]]
"kibana.alert.severity" = "high"
host.name = "ws-01"
"kibana.alert.original_time" = 2026-01-01T00:00:00Z

[[test]]
name = "from a file"
events_file = "events.ndjson"
mapping = "m.json"
alerts = 0
"""


def test_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(GOOD)
    test_file = read_test_file(path)
    assert test_file.problems == [] and test_file.rule == "../r.toml" and test_file.rule_line == 1
    first, second = test_file.cases
    assert (first.name, first.line, first.events_line, first.count, first.problems) == ("alerts", 3, 6, 1, [])
    [table] = first.alerts
    assert table.line == 10
    assert {name: line for name, (_, line) in table.fields.items()} == {
        "kibana.alert.severity": 11,
        "host.name": 12,
        "kibana.alert.original_time": 13,
    }
    assert normalize_expected(table.fields["kibana.alert.original_time"][0]) == "2026-01-01T00:00:00.000Z"
    assert (second.events_file, second.mapping, second.count) == (tmp_path / "events.ndjson", "m.json", 0)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("rule = 'r'\n[[test]\n", 2, "invalid TOML"),
        ("[[test]]\nname = 'x'\nevents = '{}'\nalerts = 0\n", 1, "names no rule"),
        ("rule = ''\n[[test]]\nname = 'x'\nevents = '{}'\nalerts = 0\n", 1, "names no rule"),
        ("rule = 'r'\n", 1, "holds no [[test]] tables"),
        ("rule = 'r'\nrules = 'x'\n[[test]]\nname = 'x'\nevents = '{}'\nalerts = 0\n", 2, "rules: unknown key"),
        ("rule = 'r'\nmapping = 3\n[[test]]\nname = 'x'\nevents = '{}'\nalerts = 0\n", 2, "mapping: expected a file"),
    ],
)
def test_problems_of_the_file(tmp_path: Path, text: str, where: int, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    problems = read_test_file(path).problems
    assert any(problem.line == where and message in problem.message for problem in problems), problems


@pytest.mark.parametrize(
    ("test", "where", "message"),
    [
        ("events = '{}'\nalerts = 0\n", 2, "[[test]] has no name"),
        ("name = 'x'\nalerts = 0\n", 2, "give the fixture events"),
        ("name = 'x'\nevents = '{}'\nevents_file = 'f'\nalerts = 0\n", 2, "give the fixture events"),
        ("name = 'x'\nevents = 3\nalerts = 0\n", 4, "events: expected a string"),
        ("name = 'x'\nevents = '{}'\n", 2, "expects nothing"),
        ("name = 'x'\nevents = '{}'\nalerts = -1\n", 5, "alerts: expected how many alerts"),
        ("name = 'x'\nevents = '{}'\nalerts = true\n", 5, "alerts: expected how many alerts"),
        ("name = 'x'\nevents = '{}'\nalerts = 0\n[[test.alert]]\na = 1\n", 5, "1 [[test.alert]] tables for alerts = 0"),
        ("name = 'x'\nevents = '{}'\nalerts = 0\nexpect = 1\n", 6, "expect: unknown key of [[test]]"),
        ("name = 'x'\nevents = '{}'\nalert = 1\n", 5, "alert: expected [[test.alert]] tables"),
    ],
)
def test_problems_of_one_test_leave_the_others(tmp_path: Path, test: str, where: int, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f"rule = 'r'\n[[test]]\n{test}\n[[test]]\nname = 'fine'\nevents = '{{}}'\nalerts = 0\n")
    test_file = read_test_file(path)
    bad, fine = test_file.cases
    assert any(problem.line == where and message in problem.message for problem in bad.problems), bad.problems
    assert fine.problems == [] and test_file.problems == []


def test_two_tests_of_one_name(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("rule = 'r'\n" + "[[test]]\nname = 'x'\nevents = '{}'\nalerts = 0\n" * 2)
    first, second = read_test_file(path).cases
    assert first.problems == [] and second.name == "x (2)"
    assert [problem.message for problem in second.problems] == ["name: a second test named 'x'"]


@pytest.mark.parametrize(
    ("value", "first_line"),
    [("events = '''\n{}\n'''", 3), ("events = '''{}\n'''", 2), ("events = '{}'", 2), ('events = """\n{}\n"""', 3)],
)
def test_where_inline_events_begin(tmp_path: Path, value: str, first_line: int) -> None:
    """TOML drops the newline right after a multi-line string's opening quotes (the value's line is 3)."""
    path = tmp_path / "t.toml"
    path.write_text(f"rule = 'r'\n[[test]]\n{value}\nname = 'x'\nalerts = 0\n")
    [case] = read_test_file(path).cases
    assert case.events_line == first_line + 1


def test_discovery_takes_the_toml_files_under_tests_folders(tmp_path: Path) -> None:
    for name in ("r.toml", "tests/a.toml", "tests/b.toml", "tests/fixtures/e.ndjson", "sub/tests/c.toml", "sub/d.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found, problems = discover([tmp_path, tmp_path / "tests" / "a.toml", tmp_path / "nowhere"])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "sub/tests/c.toml",
        "tests/a.toml",
        "tests/b.toml",
    ]
    assert [problem.message for problem in problems] == ["no such file or directory"]


def test_the_rule_loader_never_takes_a_test_for_a_rule(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.toml").write_text(GOOD)
    loaded = load_rules([tmp_path])
    assert (loaded.rules, loaded.problems) == ((), ())


def test_every_shipped_rule_has_a_positive_and_a_negative_test() -> None:
    tested: dict[str, list[int | None]] = {}
    files, _ = discover([SHIPPED_RULES_DIR])
    for path in files:
        test_file = read_test_file(path)
        assert test_file.problems == [], path
        rule = (path.parent / str(test_file.rule)).resolve()
        tested.setdefault(rule.name, []).extend(case.count for case in test_file.cases)
    shipped = {path.name for path in SHIPPED_RULES_DIR.glob("*.toml")}
    assert set(tested) == shipped
    for name, counts in tested.items():
        assert 0 in counts and any(count for count in counts), name
