"""Hostile imports and field maps: each bad line is that line's problem, the good lines still import;
``import`` never writes outside ``--out``, never through a link; ``--fields-json`` fails in one line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from job.cli import main
from job.rules import load_rules
from job.rules.kibana_import import MAX_LINE_CHARS
from job.text.jsonlimits import JsonProblem, json_depth, loads

EXPORT = Path(__file__).resolve().parent.parent / "fixtures" / "kibana_export.ndjson"
GOOD_LINE = EXPORT.read_text().split("\n")[0]
GOOD_FILE = "admin_tool_execution.toml"


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _rule(**changes: Any) -> str:
    obj = json.loads(GOOD_LINE)
    obj.update(rule_id="c0ffee00-0000-4000-8000-000000000001", name="Hostile rule")
    obj.update(changes)
    return json.dumps(obj, ensure_ascii=False)


def _nested_filter(depth: int) -> list[Any]:
    value: Any = 1
    for _ in range(depth - 3):  # the rule object and the filters array are two levels, the filter one more
        value = {"a": value}
    return [{"query": value}]


@dataclass(frozen=True)
class Line:
    name: str
    text: Callable[[], str]
    problem: str | None  # None: the rule is imported
    file: str = "hostile_rule.toml"


LINES = [
    Line("array_bomb", lambda: "[" * 100_000 + "]" * 100_000, "nested more than 64 levels"),
    Line("object_bomb", lambda: '{"a":' * 100_000 + "1" + "}" * 100_000, "nested more than 64 levels"),
    Line("unterminated_bomb", lambda: "[" * 100_000, "nested more than 64 levels"),
    Line("over_the_line_limit", lambda: _rule(note="x" * MAX_LINE_CHARS), "over the limit"),
    Line("raw_lone_surrogate", lambda: _rule(name="Hostile rule \ud800"), "not UTF-8 text"),
    Line("escaped_lone_surrogate", lambda: _rule().replace("Hostile rule", "Hostile rule \\udc00"), "lone surrogate"),
    Line("nan", lambda: _rule().replace('"risk_score": 47', '"risk_score": NaN'), "NaN is not a JSON number"),
    Line("huge_float", lambda: _rule().replace('"risk_score": 47', '"risk_score": 1e400'), "risk_score"),
    Line("huge_integer", lambda: _rule().replace('"risk_score": 47', '"risk_score": ' + "9" * 5000), "not a JSON"),
    Line("deep_filters", lambda: _rule(filters=_nested_filter(70)), "nested more than 64 levels"),
    Line("interval_overflow", lambda: _rule(interval="99999999999999999999d"), "rule.interval: invalid duration"),
    Line("not_an_object", lambda: "[1, 2]", "not a JSON object"),
    Line("filters_60_deep", lambda: _rule(filters=_nested_filter(60)), None),
    Line("line_separators_in_text", lambda: _rule(description="a\u2028b\u2029c\u0085d"), None),
    Line("nul_in_name", lambda: _rule(name="Hostile rule\u0000"), None),
    Line("right_to_left_override", lambda: _rule(name="Hostile rule \u202eexe.txt"), None, "hostile_rule_exe_txt.toml"),
    Line("very_long_name", lambda: _rule(name="Hostile rule " + "x" * 10_000), None, f"hostile_rule_{'x' * 87}.toml"),
    Line("entries_not_a_list", lambda: json.dumps({"list_id": "l", "item_id": "i", "entries": 5}), "entries"),
]


def _import(capsys: pytest.CaptureFixture[str], export: Path, out: Path, *extra: str) -> tuple[int, str, list[str]]:
    code = main(["import", str(export), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


@pytest.mark.parametrize("line", LINES, ids=[line.name for line in LINES])
def test_a_hostile_line_never_stops_the_good_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: Line
) -> None:
    export = tmp_path / "export.ndjson"
    # The hostile line first: the good line after it must still be imported.
    export.write_text(line.text() + "\n" + GOOD_LINE + "\n", encoding="utf-8", errors="surrogatepass")
    out = tmp_path / "rules"
    code, _, err = _import(capsys, export, out)
    assert (out / GOOD_FILE).is_file()
    problems = [e for e in err if ": warning: " not in e and not e.startswith("imported ")]
    assert all(len(e) < 3000 for e in err)
    if line.problem is None:
        assert code == 0 and problems == [], problems
        assert (out / line.file).is_file()
        assert {"Admin Tool Execution"} < {rule.name for rule in load_rules([out]).rules}
    else:
        assert code == 1
        assert any(e.startswith(f"{export}:1: ") and line.problem in e for e in problems), problems
        assert not any(e.startswith(f"{export}:2: ") for e in problems), problems


def test_a_byte_order_mark_before_the_export_is_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"\xef\xbb\xbf" + GOOD_LINE.encode() + b"\n")
    code, _, err = _import(capsys, export, tmp_path / "rules")
    assert code == 0, err


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    return outside


def _one_rule_export(tmp_path: Path) -> Path:
    export = tmp_path / "export.ndjson"
    export.write_text(GOOD_LINE + "\n")
    return export


@pytest.mark.parametrize("force", [False, True])
def test_a_dangling_link_in_out_is_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    outside, out = _outside(tmp_path), tmp_path / "rules"
    out.mkdir()
    (out / GOOD_FILE).symlink_to(outside / "planted.toml")
    code, _, err = _import(capsys, _one_rule_export(tmp_path), out, *(["--force"] if force else []))
    assert list(outside.iterdir()) == []  # nothing was written through the link
    if force:
        assert code == 0, err
        assert not (out / GOOD_FILE).is_symlink() and (out / GOOD_FILE).is_file()  # the link itself was replaced
    else:
        assert code == 1
        assert any("is a symbolic link; import writes no file through links" in e for e in err), err
        assert (out / GOOD_FILE).is_symlink()


@pytest.mark.parametrize("force", [False, True])
def test_a_link_to_an_existing_file_outside_is_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    outside, out = _outside(tmp_path), tmp_path / "rules"
    out.mkdir()
    (outside / "precious.toml").write_text("precious\n")
    (out / GOOD_FILE).symlink_to(outside / "precious.toml")
    code, _, _ = _import(capsys, _one_rule_export(tmp_path), out, *(["--force"] if force else []))
    assert (outside / "precious.toml").read_text() == "precious\n"
    assert code == (0 if force else 1)
    assert (out / GOOD_FILE).is_symlink() is not force


def test_a_linked_exceptions_folder_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside, out = _outside(tmp_path), tmp_path / "rules"
    out.mkdir()
    (out / "exceptions").symlink_to(outside, target_is_directory=True)
    code, _, err = _import(capsys, EXPORT, out, "--force")
    assert code == 1
    assert list(outside.iterdir()) == []
    assert any("exceptions is a symbolic link" in e for e in err), err
    assert (out / GOOD_FILE).is_file()  # the rules themselves are still written


def test_force_replaces_a_file_atomically_with_the_usual_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules"
    out.mkdir()
    (out / GOOD_FILE).write_text("# edited by hand\n")
    old_umask = os.umask(0o022)
    try:
        code, _, err = _import(capsys, _one_rule_export(tmp_path), out, "--force")
    finally:
        os.umask(old_umask)
    assert code == 0, err
    assert (out / GOOD_FILE).read_text().startswith("[metadata]")
    assert stat.S_IMODE((out / GOOD_FILE).stat().st_mode) == 0o644
    assert sorted(p.name for p in out.iterdir()) == [GOOD_FILE]  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[" * 100_000, "not JSON: nested more than 64 levels deep"),
        (b'{"a": ' * 100_000, "not JSON: nested more than 64 levels deep"),
        (b'{"a\\ud800": "keyword"}', "not JSON: a string holds a lone surrogate"),
        (b'{"a": NaN}', "not JSON: NaN is not a JSON number"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b"", "not JSON: Expecting value"),
    ],
)
def test_a_hostile_field_map_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "fields.json"
    path.write_bytes(content)
    assert main(["translate", "a:b", "--fields-json", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"detection-job: {path}: {message}"), line


def test_a_field_map_with_a_byte_order_mark_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fields.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": "keyword"}).encode())
    assert main(["translate", "a:b", "--fields-json", str(path)]) == 0


def test_a_fifo_as_field_map_or_export_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")}
    for args in (["translate", "a:b", "--fields-json", "pipe"], ["import", "pipe", "--out", "rules"]):
        result = subprocess.run(
            [sys.executable, "-m", "job", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )
        assert result.returncode in (1, 2)
        assert "not a regular file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "depth_ok"),
    [
        ("[" * 64 + "]" * 64, True),
        ("[" * 65 + "]" * 65, False),
        ('["' + "[" * 1000 + '"]', True),
        ('["\\"' + "[" * 1000 + '"]', True),
        ('{"a": "\\\\", "b": ' + "[" * 65 + "]" * 65 + "}", False),
    ],
)
def test_json_depth_skips_strings(text: str, depth_ok: bool) -> None:
    assert (json_depth(text) is None) is depth_ok
    if depth_ok:
        loads(text)
    else:
        with pytest.raises(JsonProblem):
            loads(text)
