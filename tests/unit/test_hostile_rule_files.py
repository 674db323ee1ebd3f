"""Hostile rule files and exception-list files: each case states what must happen.

Either the file loads (and the rule is as written), or the file is one ``FILE:LINE: message`` (or
``FILE: message``) naming it. Never a traceback, never a stopped pass: a good rule beside the hostile
file always loads. Times are bounded by generous guards against super-linear work, not measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from job.cli import main
from job.rules import load_rules
from job.rules.files import MAX_FILE_BYTES
from tests.unit.test_rule_loader import BASE

GOOD_ID = "00000000-0000-0000-0000-000000000001"
HOSTILE_ID = "00000000-0000-0000-0000-0000000000ff"
# Generous: the slowest case takes well under a second on a loaded 2-core machine.
TIME_GUARD_S = 30


def hostile_rule(extra_rule_keys: str = "", *, after: str = "", name: str = '"Hostile"') -> str:
    """The good rule with another id, with keys added to [rule] and text appended after it."""
    text = BASE.replace(GOOD_ID, HOSTILE_ID).replace('name = "Test rule"', f"name = {name}")
    text = text.replace('type = "query"\n', f'type = "query"\n{extra_rule_keys}\n', 1)
    return text + after


def nested(depth: int) -> str:
    """An inline value nested ``depth`` levels: tables inside an array."""
    return "[" + "{a = " * (depth - 1) + "1" + "}" * (depth - 1) + "]"


@dataclass(frozen=True)
class Case:
    name: str
    content: Callable[[], bytes]
    # None: the file loads. Otherwise a fragment of its one problem line, and the line (None: no line).
    problem: str | None = None
    line: int | None = None


def _text(build: Callable[[], str]) -> Callable[[], bytes]:
    return lambda: build().encode("utf-8")


def _swap(old: str, new: str) -> Callable[[], bytes]:
    """The hostile rule with ``old`` replaced by ``new`` (bytes are replaced as bytes)."""
    return lambda: hostile_rule().encode("utf-8").replace(old.encode("utf-8"), new.encode("utf-8", "surrogatepass"))


CASES = [
    # Nesting bombs: refused before parsing, with the line where they go too deep.
    Case("array_bomb", _text(lambda: "a = " + "[" * 100_000 + "]" * 100_000), "nested more than 64 levels", 1),
    Case("inline_table_bomb", _text(lambda: "a = " + "{b = " * 50_000 + "1" + "}" * 50_000), "nested more than 64", 1),
    Case(
        "deep_header_10kb",
        _text(lambda: hostile_rule(after="[transform" + ".a" * 5000 + "]\nx = 1\n")),
        "nested more than 64 levels",
        hostile_rule().count("\n") + 1,
    ),
    Case("header_500", _text(lambda: "[transform" + ".a" * 500 + "]\n"), "nested more than 64 levels", 1),
    Case("array_of_tables_header", _text(lambda: "[[a" + ".b" * 3000 + "]]\n"), "nested more than 64 levels", 1),
    Case("dotted_key", _text(lambda: "\n\na" + ".a" * 5000 + " = 1\n"), "nested more than 64 levels", 3),
    Case("deep_filters", _text(lambda: hostile_rule(f"filters = {nested(70)}")), "nested more than 64 levels"),
    Case(
        "bomb_in_exception_entries",
        _text(lambda: hostile_rule(after="[[rule.exceptions]]\nitem_id = " + "[" * 9999)),
        "nested more than 64 levels",
    ),
    # Just inside the bound: loads (filters are kept as written).
    Case("filters_60_deep", _text(lambda: hostile_rule(f"filters = {nested(60)}"))),
    # Brackets that are text, not nesting: load.
    Case("brackets_in_a_string", _text(lambda: hostile_rule(f'note = "{"[" * 100_000}"'))),
    Case("brackets_in_a_multiline_string", _text(lambda: hostile_rule("note = '''\n" + "[{\n" * 50_000 + "'''"))),
    Case("brackets_in_comments", _text(lambda: hostile_rule("# " + "[" * 100_000))),
    # Size: strings and keys as large as a file may be.
    Case("huge_string", _text(lambda: hostile_rule(f'note = "{"x" * (MAX_FILE_BYTES - 2000)}"'))),
    Case("huge_key", _text(lambda: hostile_rule(f"{'k' * 200_000} = 1")), "unknown key"),
    Case("over_the_size_limit", _text(lambda: hostile_rule(f'note = "{"x" * MAX_FILE_BYTES}"')), "over the limit"),
    Case("five_thousand_digit_integer", _swap("risk_score = 47", "risk_score = " + "9" * 5000), "invalid TOML"),
    # Durations and date math beyond what a rule may ask for.
    Case(
        "interval_overflow",
        _swap('interval = "10m"', 'interval = "99999999999999999999d"'),
        "rule.interval: invalid duration '99999999999999999999d': at most 366d",
    ),
    Case(
        "from_beyond_a_year",
        _swap('from = "now-15m"', 'from = "now-9999999999d"'),
        "rule.from: date math 'now-9999999999d' reaches more than 366 days",
    ),
    Case("to_beyond_a_year", _text(lambda: hostile_rule('to = "now+2y"')), "rule.to: date math 'now+2y' reaches more"),
    Case("from_a_year_back", _swap('from = "now-15m"', 'from = "now-1y"')),
    Case("interval_a_year", _swap('interval = "10m"', 'interval = "366d"')),
    # Unicode edge cases.
    Case("nul_byte_raw", _swap("A test rule.", "A test\x00rule."), "invalid TOML"),
    Case("nul_escaped", _swap("A test rule.", "A test\\u0000rule.")),
    Case("lone_surrogate_escape", _swap("A test rule.", "A test\\uD800 rule."), "invalid TOML"),
    Case("invalid_utf8", _swap("A test rule.", "A test \ud800 rule."), "not UTF-8"),
    Case("byte_order_mark", lambda: b"\xef\xbb\xbf" + hostile_rule().encode()),
    Case("right_to_left_override", _text(lambda: hostile_rule(name='"Hostile \u202etxt.exe"'))),
    Case("crlf_line_endings", _text(lambda: hostile_rule().replace("\n", "\r\n"))),
    Case(
        "line_separator_before_an_error",  # U+2028 in a string must not shift the line of the error after it
        _text(lambda: hostile_rule('note = "a\u2028b\u0085c"\nbogus_key = 1')),
        "rule.bogus_key: unknown key",
        hostile_rule('note = "x"\nbogus_key = 1').splitlines().index("bogus_key = 1") + 1,
    ),
    Case("empty_file", lambda: b"", "missing [rule] table"),
]


def _check_problem(problems: list[str], path: Path, case: Case) -> None:
    mine = [p for p in problems if p.startswith(str(path))]
    if case.problem is None:
        assert mine == [], mine
        return
    assert len(mine) == 1, mine
    assert case.problem in mine[0]
    assert "\n" not in mine[0] and len(mine[0]) < 3000
    where = f"{path}:{case.line}: " if case.line is not None else f"{path}"
    assert mine[0].startswith(where), mine[0]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_rule_file_never_stops_the_good_rule(tmp_path: Path, case: Case) -> None:
    (tmp_path / "good.toml").write_text(BASE)
    path = tmp_path / "hostile.toml"
    path.write_bytes(case.content())
    started = time.monotonic()
    result = load_rules([tmp_path])
    assert time.monotonic() - started < TIME_GUARD_S
    assert GOOD_ID in {rule.rule_id for rule in result.rules}
    _check_problem([str(p) for p in result.problems], path, case)
    if case.problem is None:
        assert HOSTILE_ID in {rule.rule_id for rule in result.rules}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_exception_list_file_never_stops_the_others(tmp_path: Path, case: Case) -> None:
    lists = tmp_path / "exceptions"
    lists.mkdir()
    entries = '[[items.entries]]\nfield = "user.name"\ntype = "match"\nvalue = "x"\n'
    (lists / "good.toml").write_text(f'list_id = "good"\n[[items]]\nitem_id = "i"\n{entries}')
    (tmp_path / "rule.toml").write_text(hostile_rule('exceptions_list = [{list_id = "good"}]'))
    path = lists / "hostile.toml"
    path.write_bytes(case.content())
    result = load_rules([tmp_path])
    [rule] = result.rules
    assert [item.item_id for item in rule.exceptions] == ["i"]
    # None of the cases is a valid list (a rule is not a list): each is reported, one line per problem.
    mine = [str(p) for p in result.problems if str(p).startswith(str(path))]
    assert mine and all("\n" not in line for line in mine)
    if case.problem is not None and any(word in case.problem for word in PARSE_LEVEL):
        assert any(case.problem in line for line in mine), mine


# Problems found before the file's schema is looked at: the same for rule and exception-list files.
PARSE_LEVEL = ("nested", "invalid TOML", "not UTF-8", "over the limit")


def _links(tmp_path: Path) -> dict[str, Path]:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "elsewhere.toml").write_text(BASE.replace(GOOD_ID, HOSTILE_ID))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.toml").write_text(BASE)
    (rules / "dangling.toml").symlink_to(tmp_path / "missing.toml")
    (rules / "loop1.toml").symlink_to(rules / "loop2.toml")
    (rules / "loop2.toml").symlink_to(rules / "loop1.toml")
    (rules / "outside.toml").symlink_to(outside / "elsewhere.toml")
    os.mkfifo(rules / "fifo.toml")
    os.mkfifo(tmp_path / "pipe")
    (rules / "link_to_fifo.toml").symlink_to(tmp_path / "pipe")
    (rules / "device.toml").symlink_to("/dev/zero")
    (rules / "dir.toml").mkdir()
    (rules / "weird\nname.toml").write_text("[rule\n")
    return {"rules": rules}


# What each special file gives: a problem (fragment), or None when it loads.
SPECIAL = {
    "dangling.toml": "cannot read: No such file or directory",
    "loop1.toml": "cannot read: Too many levels of symbolic links",
    "loop2.toml": "cannot read: Too many levels of symbolic links",
    "outside.toml": None,  # links are followed (Kubernetes mounts are links); the rule loads
    "fifo.toml": "cannot read: not a regular file",
    "link_to_fifo.toml": "cannot read: not a regular file",
    "device.toml": "cannot read: not a regular file",
}


def test_links_fifos_and_devices_are_reported_without_blocking(tmp_path: Path) -> None:
    rules = _links(tmp_path)["rules"]
    # A separate process, so that a FIFO that blocked would fail the test instead of hanging it.
    result = subprocess.run(
        [sys.executable, "-m", "job", "validate", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    for name, problem in SPECIAL.items():
        mine = [line for line in lines if line.startswith(f"{rules / name}:")]
        assert (mine == []) if problem is None else (len(mine) == 1 and problem in mine[0]), (name, mine)
    # A file name with a newline is printed on one line, escaped.
    assert any(line.startswith(f"{rules}/weird\\x0aname.toml:") for line in lines), lines
    assert lines[-1].startswith("2 rules loaded:")


@pytest.mark.parametrize("case", [c for c in CASES if c.problem], ids=[c.name for c in CASES if c.problem])
def test_validate_prints_one_line_per_hostile_file(
    tmp_path: Path, case: Case, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    (tmp_path / "hostile.toml").write_bytes(case.content())
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 2 and lines[1] == "0 rules loaded: 1 problems, 0 warnings", lines
