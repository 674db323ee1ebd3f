"""Exception-list files in exceptions/: both shapes, resolution into Rule.exceptions, and their problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.rules import load_rule, load_rules, rule_to_toml
from job.rules.exception_lists import load_list_file
from tests.unit.test_rule_loader import BASE

REFERENCE = """
[[rule.exceptions_list]]
id = "kibana-object-id"
list_id = "{list_id}"
namespace_type = "single"
type = "detection"
"""

INLINE = """
[[rule.exceptions]]
item_id = "inline-1"
[[rule.exceptions.entries]]
field = "user.name"
type = "match"
value = "svc-inline"
"""

OURS = """\
list_id = "admins"
name = "Known admin accounts"
description = "Accounts of the Windows admin team"

[[items]]
item_id = "svc-admin"
name = "Service account of the admin tooling"
os_types = ["windows"]
expire_time = 2030-01-01T00:00:00Z
comments = ["approved in CHG-1"]

[[items.entries]]
field = "user.name"
type = "match_any"
value = ["svc-admin", "svc-admin2"]

[[items]]
item_id = "backup"

[[items.entries]]
field = "process.executable"
type = "wildcard"
value = "C:\\\\Backup\\\\*"
"""

DETECTION_RULES_SHAPE = """\
[metadata]
creation_date = "2025/08/14"
list_name = "Shared exceptions"
rule_ids = ["00000000-0000-0000-0000-000000000001"]
rule_names = ["Test rule"]
updated_date = "2025/08/14"

[[exceptions]]
[exceptions.container]
description = "Shared exceptions"
list_id = "shared"
name = "Shared exceptions"
namespace_type = "single"
tags = []
type = "detection"

[[exceptions.items]]
comments = [{ comment = "known scanner" }]
description = "Vulnerability scanner"
list_id = "shared"
item_id = "scanner"
name = "scanner"
namespace_type = "single"
tags = []
type = "simple"

[[exceptions.items.entries]]
field = "host.name"
type = "match"
operator = "included"
value = "scanner-01"
"""


def _setup(tmp_path: Path, rule_extra: str, lists: dict[str, str]) -> Path:
    (tmp_path / "exceptions").mkdir()
    for name, text in lists.items():
        (tmp_path / "exceptions" / name).write_text(text)
    path = tmp_path / "rule.toml"
    path.write_text(BASE + rule_extra)
    return path


def test_inline_items_then_list_items(tmp_path: Path) -> None:
    path = _setup(
        tmp_path,
        INLINE + REFERENCE.format(list_id="admins") + REFERENCE.format(list_id="shared"),
        {"admins.toml": OURS, "shared_exceptions.toml": DETECTION_RULES_SHAPE},
    )
    result = load_rules([tmp_path])
    assert result.problems == () and result.warnings == ()
    (rule,) = result.rules
    assert [(item.item_id, item.list_id) for item in rule.exceptions] == [
        ("inline-1", None),
        ("svc-admin", "admins"),
        ("backup", "admins"),
        ("scanner", "shared"),
    ]
    admin = rule.exceptions[1]
    assert admin.os_types == ("windows",)
    assert admin.entries[0].value == ("svc-admin", "svc-admin2")
    assert admin.comments == ("approved in CHG-1",)
    assert rule.exceptions[2].entries[0].value == "C:\\Backup\\*"
    assert rule.exceptions[3].comments == ("known scanner",)
    # load_rule reads the exceptions/ folder beside the file too.
    assert load_rule(path).exceptions == rule.exceptions
    # Writing the rule keeps the reference, not the list's items.
    assert "scanner" not in rule_to_toml(rule) and 'list_id = "shared"' in rule_to_toml(rule)


def test_a_missing_list_is_a_warning_on_its_reference(tmp_path: Path) -> None:
    path = _setup(tmp_path, REFERENCE.format(list_id="endpoint_list"), {})
    result = load_rules([tmp_path])
    assert result.problems == ()
    (warning,) = result.warnings
    text = path.read_text()
    assert warning.line == text.splitlines().index('list_id = "endpoint_list"') + 1
    assert warning.message == "exception list 'endpoint_list' not found in exceptions/; it adds no exceptions"


def test_a_list_id_defined_twice_is_a_problem(tmp_path: Path) -> None:
    _setup(tmp_path, "", {"a.toml": OURS, "b.toml": OURS})
    result = load_rules([tmp_path])
    folder = tmp_path / "exceptions"
    assert [str(p) for p in result.problems] == [
        f"{folder / 'b.toml'}: exception list 'admins' is also defined in {folder / 'a.toml'}"
    ]
    assert len(result.rules) == 1  # list files are never read as rules


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (OURS.replace('type = "match_any"', 'type = "list"'), "[[items.entries]]", "a list entry needs list ="),
        (OURS.replace('list_id = "admins"\n', ""), None, "list_id: missing required key"),
        (
            OURS.replace('item_id = "backup"', 'item_id = "backup"\ncolour = 1'),
            "colour",
            "items[1].colour: unknown key",
        ),
        (
            OURS.replace('item_id = "backup"', 'item_id = "backup"\nlist_id = "other"'),
            'list_id = "other"',
            "item list_id 'other' is not 'admins'",
        ),
        (
            DETECTION_RULES_SHAPE.replace('value = "scanner-01"\n', ""),
            "[[exceptions.items.entries]]",
            "exceptions[0].items[0].entries[0]: a match entry needs a non-empty string value",
        ),
        ("[[exceptions]]\ncontainer = 5\n", "container", "exceptions[0].container: expected a table"),
        ("[[exceptions]]\nitems = 1.5\n", "items", "exceptions[0].items: expected [[exceptions.items]] tables"),
        ("exceptions = 3\n", "exceptions", "exceptions: expected [[exceptions]] tables"),
        (
            DETECTION_RULES_SHAPE.replace('name = "Shared exceptions"\nnamespace_type', "name = 5\nnamespace_type"),
            "name = 5",
            "exceptions[0].container.name: input should be a valid string",
        ),
    ],
)
def test_list_file_problems_name_file_and_line(tmp_path: Path, text: str, key: str | None, message: str) -> None:
    path = tmp_path / "list.toml"
    path.write_text(text)
    lists, problems = load_list_file(path)
    assert lists == []
    (problem,) = problems
    # A missing top-level key of a list file has no table around it, hence no line.
    expected_line = (
        next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(key)), None) if key else None
    )
    assert (problem.path, problem.line) == (str(path), expected_line)
    assert message in problem.message
