"""``detection-job translate``: DSL on stdout, caret error and exit 1, bad field file and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from job.kql import to_dsl


def _translate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")}
    return subprocess.run(
        [sys.executable, "-m", "job", "translate", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_prints_the_dsl_as_indented_json() -> None:
    result = _translate('process.name:("cmd.exe" or "powershell.exe") and not user.name:SYSTEM')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == to_dsl('process.name:("cmd.exe" or "powershell.exe") and not user.name:SYSTEM')
    assert result.stdout.startswith('{\n  "bool": {\n')


def test_field_types_from_a_json_file(tmp_path: Path) -> None:
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps({"host.name": "keyword", "@timestamp": "date"}), encoding="utf-8")
    result = _translate("host.name:web and @timestamp >= now-1h", "--fields-json", str(fields))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == to_dsl(
        "host.name:web and @timestamp >= now-1h", {"host.name": "keyword", "@timestamp": "date"}
    )


def test_field_types_from_a_saved_field_caps_response(tmp_path: Path) -> None:
    caps = {"indices": ["i"], "fields": {"host.name": {"keyword": {"type": "keyword", "metadata_field": False}}}}
    fields = tmp_path / "caps.json"
    fields.write_text(json.dumps(caps), encoding="utf-8")
    result = _translate("host.name:web", "--fields-json", str(fields))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == to_dsl("host.name:web", {"host.name": "keyword"})


def test_syntax_error_prints_the_caret_and_exits_1() -> None:
    result = _translate("foo:ba:r")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == 'Expected AND, OR, end of input but ":" found. (line 1, column 7)\nfoo:ba:r\n------^\n'


def test_nested_error_exits_1(tmp_path: Path) -> None:
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps({"tags": "nested", "tags.key": "keyword"}), encoding="utf-8")
    result = _translate("tags.key:x", "--fields-json", str(fields))
    assert result.returncode == 1
    assert "tags.key is a nested field, but is not in a nested group" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_fields_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = _translate("a:b", "--fields-json", str(missing))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"detection-job: {missing}: cannot read: No such file or directory"]


def test_invalid_fields_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for content, reason in [("[1,", "not JSON"), ("[1]", "expected a JSON object"), ('{"a": 1}', "is not a string")]:
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        result = _translate("a:b", "--fields-json", str(bad))
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"detection-job: {bad}: ") and reason in lines[0]


EQL_FIELDS = {
    "@timestamp": "date",
    "event.category": "keyword",
    "host.id": "keyword",
    "process.name": "keyword",
    "process.args": "keyword",
    "destination.ip": "ip",
}
SEQUENCE = (
    'sequence by host.id with maxspan=1m [process where process.name : "cmd.exe" and length(process.args) > 3] '
    '[network where cidrMatch(destination.ip, "10.0.0.0/8")]'
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'process where process.name == "cmd.exe"',
            ['event query: process where process.name == "cmd.exe"', "evaluated on the client: nothing"],
        ),
        (
            "process where length(process.name) > 3",
            ["event query: ", "evaluated on the client: length(process.name) > 3"],
        ),
        (
            SEQUENCE,
            [
                "stage 1: [process where",
                "join keys: host.id",
                '"case_insensitive": true',
                "evaluated on the client: length(process.args) > 3",
                "stage 2: [network where",
                '"destination.ip": [',
                "evaluated on the client: nothing (the query is exact)",
                "sequence matching on the client: maxspan=60000 ms",
            ],
        ),
    ],
)
def test_eql_prints_each_query_and_what_the_client_evaluates(tmp_path: Path, query: str, expected: list[str]) -> None:
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps(EQL_FIELDS), encoding="utf-8")
    result = _translate("--language", "eql", query, "--fields-json", str(fields))
    assert result.returncode == 0, result.stderr
    position = 0
    for text in expected:  # in this order
        found = result.stdout.find(text, position)
        assert found >= 0, (text, result.stdout)
        position = found
    assert result.stderr == ""


def test_eql_without_field_types_takes_them_from_their_use() -> None:
    result = _translate("--language", "eql", SEQUENCE)
    assert result.returncode == 0, result.stderr
    assert "destination.ip: ip" in result.stderr and "process.args: keyword" in result.stderr
    assert '"destination.ip": [' in result.stdout


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("process where x = 1", "line 1:17: mismatched input '='"),
        ("process where nope == 1", "line 1:15: Unknown column [nope]"),
        ('any where process.name == "a" | count', "line 1:31: Pipe [count] is not supported"),
    ],
)
def test_eql_errors_exit_1_with_elasticsearch_s_message_and_a_caret(tmp_path: Path, query: str, message: str) -> None:
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps(EQL_FIELDS), encoding="utf-8")
    result = _translate("--language", "eql", query, "--fields-json", str(fields))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert "^" in result.stderr and "Traceback" not in result.stderr
