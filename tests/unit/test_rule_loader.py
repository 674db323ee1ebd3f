"""Broken rule files: one clear line each (file, line, message), and the valid rules still load."""

from __future__ import annotations

import copy
import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from job.errors import RuleError
from job.rules import RuleFileError, load_rule, load_rules, read_rule
from job.rules.files import MAX_FILE_BYTES
from job.rules.loader import prescan_rule_id, rule_from_data

BASE = """\
[metadata]
creation_date = "2024/01/01"
updated_date = "2024/01/01"
maturity = "production"

[rule]
author = ["Us"]
description = "A test rule."
from = "now-15m"
index = ["logs-*"]
interval = "10m"
language = "kuery"
max_signals = 100
name = "Test rule"
risk_score = 47
rule_id = "00000000-0000-0000-0000-000000000001"
severity = "medium"
type = "query"

query = '''
event.kind:alert and user.name:admin
'''

[[rule.threat]]
framework = "MITRE ATT&CK"

[rule.threat.tactic]
id = "TA0006"
name = "Credential Access"
reference = "https://attack.mitre.org/tactics/TA0006/"
"""


def _line(text: str, prefix: str) -> int:
    """The line of ``text`` that starts with ``prefix`` (the fixture's own layout, found, not hard-coded)."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(prefix))


def _sub(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return change


RULE_EXCEPTION_WITH = """
[[rule.exceptions]]
item_id = "i1"
{extra}
[[rule.exceptions.entries]]
field = "user.name"
{entry}
"""

CASES = [
    # (case, change of BASE, key prefix of the expected line (None: no line), message fragment)
    ("invalid_toml", _sub("risk_score = 47", "risk_score = "), "risk_score", "invalid TOML: Invalid value"),
    ("missing_key", _sub('severity = "medium"\n', ""), "[rule]", "rule.severity: missing required key"),
    ("wrong_type", _sub("risk_score = 47", 'risk_score = "high"'), "risk_score", "valid integer (got 'high')"),
    ("float_score", _sub("risk_score = 47", "risk_score = 47.0"), "risk_score", "valid integer"),
    ("bool_max", _sub("max_signals = 100", "max_signals = true"), "max_signals", "valid integer"),
    ("risk_101", _sub("risk_score = 47", "risk_score = 101"), "risk_score", "less than or equal to 100 (got 101)"),
    ("max_0", _sub("max_signals = 100", "max_signals = 0"), "max_signals", "greater than or equal to 1 (got 0)"),
    ("interval", _sub('interval = "10m"', 'interval = "10 minutes"'), "interval", "invalid duration '10 minutes'"),
    ("severity", _sub('"medium"', '"urgent"'), "severity", "'low', 'medium', 'high' or 'critical' (got 'urgent')"),
    ("unknown_key", _sub('type = "query"', 'type = "query"\ncolour = "red"'), "colour", "rule.colour: unknown key"),
    ("unknown_table", lambda t: t + "\n[extra]\na = 1\n", "[extra]", "extra: unknown top-level key"),
    ("from", _sub('from = "now-15m"', 'from = "yesterday"'), "from", "date math relative to now"),
    ("language", _sub('language = "kuery"', 'language = "eql"'), "language", "'eql' does not fit a query rule"),
    ("type", _sub('type = "query"', 'type = "sql"'), "type", "rule.type: input should be"),
    ("tags", _sub('author = ["Us"]', 'author = ["Us"]\ntags = "a"'), "tags", "rule.tags: input should be"),
    ("threshold_on_query", lambda t: t + "[rule.threshold]\nvalue = 5\n", "[rule.threshold]", "only threshold rules"),
    ("tactic_id", _sub('id = "TA0006"\n', ""), "[rule.threat.tactic]", "rule.threat[0].tactic.id: missing"),
    (
        "inline_list_id",
        lambda t: t + RULE_EXCEPTION_WITH.format(extra='list_id = "l"', entry='type = "match"\nvalue = "a"'),
        "list_id",
        "take no list_id",
    ),
    (
        "value_list_entry",
        lambda t: t + RULE_EXCEPTION_WITH.format(extra="", entry='type = "list"\nvalue = "ips"'),
        "[[rule.exceptions.entries]]",
        'a list entry needs list = { id = "<list id>", type = "<list type>" }',
    ),
    (
        "match_without_value",
        lambda t: t + RULE_EXCEPTION_WITH.format(extra="", entry='type = "match"'),
        "[[rule.exceptions.entries]]",
        "needs a non-empty string value",
    ),
    ("no_rule_table", lambda t: t.split("[rule]")[0], None, "missing [rule] table"),
]


@pytest.mark.parametrize(("case", "change", "key", "message"), CASES, ids=[c[0] for c in CASES])
def test_broken_file_gives_file_line_and_message(
    tmp_path: Path, case: str, change: Callable[[str], str], key: str | None, message: str
) -> None:
    text = change(BASE)
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    with pytest.raises(RuleError) as caught:
        load_rule(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == (_line(text, key) if key else None)
    assert message in error.message
    assert str(error) == (f"{path}:{error.line}: {error.message}" if key else f"{path}: {error.message}")


def test_every_broken_file_is_one_problem_and_the_valid_rule_still_loads(tmp_path: Path) -> None:
    for case, change, _, _ in CASES:
        (tmp_path / f"{case}.toml").write_text(change(BASE))
    (tmp_path / "good.toml").write_text(BASE)
    result = load_rules([tmp_path])
    assert [rule.name for rule in result.rules] == ["Test rule"]
    assert sorted({Path(p.path).stem for p in result.problems}) == sorted(case for case, *_ in CASES)
    assert len(result.problems) == len(CASES)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.replace("A test rule.", "Caf\xe9").encode("latin-1"))
    with pytest.raises(RuleError, match="not UTF-8") as caught:
        load_rule(path)
    assert caught.value.line == _line(BASE, "description")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:  # a sparse 50 MB file: nothing is read or written
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(RuleError) as caught:
        load_rule(path)
    assert (
        str(caught.value) == f"{path}: file is 52428800 bytes, over the limit of {MAX_FILE_BYTES} bytes for rule files"
    )


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.toml"
    path.write_text(BASE)
    path.chmod(0)
    if os.geteuid() == 0:
        # Root reads files whatever their mode: make the open fail the way it fails for everyone else.
        real_open = os.open

        def refuse(target: Any, *args: Any, **kwargs: Any) -> Any:
            if Path(target) == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real_open(target, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(RuleError) as caught:
        load_rule(path)
    assert str(caught.value) == f"{path}: cannot read: Permission denied"


def test_special_and_dangling_files_are_reported(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.toml")
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "missing.toml")
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    (tmp_path / "good.toml").write_text(BASE)
    result = load_rules([tmp_path])
    assert len(result.rules) == 1
    messages = {Path(p.path).name: p.message for p in result.problems}
    assert messages["pipe.toml"] == "cannot read: not a regular file"
    assert messages["dangling.toml"] == "cannot read: No such file or directory"
    assert messages["a.toml"] == messages["b.toml"] == "cannot read: Too many levels of symbolic links"
    assert stat.S_ISFIFO((tmp_path / "pipe.toml").stat().st_mode)


def test_symlink_loop_in_the_folder_is_one_problem(tmp_path: Path) -> None:
    nested = tmp_path / "windows"
    nested.mkdir()
    (nested / "rule.toml").write_text(BASE)
    (nested / "loop").symlink_to(tmp_path)
    (tmp_path / "alias").symlink_to(nested)  # the same folder twice, not a loop: read once
    result = load_rules([tmp_path])
    # Folders are walked in name order: "alias" comes first, and its "loop" leads back to the top.
    assert [rule.source for rule in result.rules] == [str(tmp_path / "alias" / "rule.toml")]
    loop = tmp_path / "alias" / "loop"
    assert [str(p) for p in result.problems] == [f"{loop}: symbolic link loop: this folder contains itself; skipped"]


def test_duplicate_rule_ids_keep_the_first_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(BASE)
    (tmp_path / "b.toml").write_text(BASE.replace('name = "Test rule"', 'name = "Copy"'))
    result = load_rules([tmp_path])
    assert [rule.name for rule in result.rules] == ["Test rule"]
    (problem,) = result.problems
    assert problem.path == str(tmp_path / "b.toml")
    assert problem.line == _line(BASE, "rule_id")
    rule_id = "00000000-0000-0000-0000-000000000001"
    assert problem.message == f"duplicate rule_id '{rule_id}' (also in {tmp_path / 'a.toml'}); this file is not used"


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    result = load_rules([tmp_path / "nowhere"])
    assert [str(p) for p in result.problems] == [f"{tmp_path / 'nowhere'}: no such file or directory"]


def test_imported_files_turn_unknown_keys_into_warnings(tmp_path: Path) -> None:
    path = tmp_path / "imported.toml"
    text = BASE.replace('type = "query"', 'type = "query"\ncolour = "red"') + "\n[extra]\na = 1\n"
    path.write_text(text)
    rule, warnings = read_rule(path, strict=False)
    assert rule.name == "Test rule"
    assert [(w.line, w.message) for w in warnings] == [
        (_line(text, "[extra]"), "extra: unknown top-level key (expected [metadata], [rule], [transform]) (ignored)"),
        (_line(text, "colour"), "rule.colour: unknown key (ignored)"),
    ]


def test_query_keeps_no_trailing_newline_and_defaults_apply(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(BASE.replace('language = "kuery"\n', "").replace("max_signals = 100\n", ""))
    rule = load_rule(path)
    assert rule.query == "event.kind:alert and user.name:admin"
    assert (rule.language, rule.max_signals, rule.to, rule.supported) == ("kuery", 100, "now", True)
    assert rule.source == str(path)


@pytest.mark.parametrize(
    ("kind", "supported"),
    [
        ("eql", True),
        ("esql", False),
        ("threshold", True),
        ("new_terms", True),
        ("machine_learning", False),
        ("threat_match", False),
    ],
)
def test_other_rule_types_load_as_their_type(tmp_path: Path, kind: str, supported: bool) -> None:
    new_terms = '[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["a"]\n'
    new_terms += '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-7d"\n'
    extra = {
        "eql": ('language = "eql"', "", "process where true", ""),
        "esql": ('language = "esql"', "", "from logs-* | limit 1", ""),
        "threshold": ('language = "kuery"', "", "a:b", '[rule.threshold]\nfield = ["user.name"]\nvalue = 5\n'),
        "new_terms": ('language = "kuery"', "", "a:b", new_terms),
        "machine_learning": ("", 'anomaly_threshold = 75\nmachine_learning_job_id = "job"\n', "", ""),
        "threat_match": ('language = "kuery"', 'threat_index = ["ti-*"]\nthreat_query = "*:*"\n', "a:b", ""),
    }[kind]
    language, keys, query, table = extra
    text = BASE.replace('language = "kuery"', language).replace('type = "query"', f'type = "{kind}"\n{keys}')
    text = text.replace("event.kind:alert and user.name:admin", query) + "\n" + table
    path = tmp_path / f"{kind}.toml"
    path.write_text(text)
    rule = load_rule(path)
    assert rule.type == kind
    assert rule.supported is supported


# Any value where a rule file has one: the loader answers with RuleErrors, never another exception.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
_DOCUMENT = tomllib.loads(
    BASE
    + RULE_EXCEPTION_WITH.format(extra="", entry='type = "match"\nvalue = "a"')
    + '\n[[rule.exceptions_list]]\nlist_id = "l"\n'
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [path for key, child in children for path in [(*prefix, key), *_paths(child, (*prefix, key))]]


@settings(max_examples=400, deadline=None)
@given(
    changes=st.lists(st.tuples(st.sampled_from(_paths(_DOCUMENT)), _JSON), min_size=1, max_size=3), strict=st.booleans()
)
def test_any_value_anywhere_gives_rule_errors_only(changes: list[tuple[tuple[Any, ...], Any]], strict: bool) -> None:
    document = copy.deepcopy(_DOCUMENT)
    for path, value in changes:
        parent: Any = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is None:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this place
    try:
        rule_from_data(document, source="x.toml", lines={}, strict=strict, exception_lists={})
    except RuleFileError as exc:
        assert exc.problems and all(str(p).startswith("x.toml") for p in exc.problems)


def test_a_configmap_volume_loads_each_rule_once(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as links into a hidden, timestamped folder; hidden entries are skipped."""
    real = tmp_path / "..2026_11_27_21_00_00.000000001"
    real.mkdir()
    (real / "rule.toml").write_text(BASE)
    (tmp_path / "..data").symlink_to(real.name)
    (tmp_path / "rule.toml").symlink_to("..data/rule.toml")
    (tmp_path / ".rule.toml.swp").write_text("editor junk")
    result = load_rules([tmp_path])
    assert result.problems == ()
    assert [Path(rule.source).name for rule in result.rules] == ["rule.toml"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[rule]\nrule_id = "abc-1"\nname = "x"\n', "abc-1"),
        ('[rule]\n  rule_id  =  "abc-1"  # the id\n', "abc-1"),
        ('[rule]\nrule_id = "a\\u0062c"\n', None),  # an escape: read by the parser only
        ("[rule]\nrule_id = 'abc-1'\n", None),  # a literal string
        ('[rule]\nrule_id = "a"\n[other]\nrule_id = "b"\n', None),  # two of them
        ('[rule]\nrule_id = ""\n', None),
        ("[rule]\nname = 'no id'\n", None),
    ],
)
def test_the_pre_scan_reads_a_rule_id_only_when_sure(text: str, expected: str | None) -> None:
    assert prescan_rule_id(text) == expected


def test_a_shard_passes_over_the_other_shards_files_unparsed(tmp_path: Path) -> None:
    line = 'rule_id = "00000000-0000-0000-0000-000000000001"'
    (tmp_path / "mine.toml").write_text(BASE.replace(line, 'rule_id = "mine-1"'))
    (tmp_path / "theirs.toml").write_text(BASE.replace(line, 'rule_id = "theirs-1"') + "\n[[broken")
    (tmp_path / "unsure.toml").write_text(BASE.replace(line, "rule_id = 'unsure-1'"))
    result = load_rules([tmp_path], keep=lambda rule_id: not rule_id.startswith("theirs-"))
    assert result.passed_over == 1 and not result.problems  # the broken file of another shard is not read
    assert sorted(rule.rule_id.split("-")[0] for rule in result.rules) == ["mine", "unsure"]
