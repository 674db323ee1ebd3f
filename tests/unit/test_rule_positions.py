"""The TOML key scanner: line numbers of keys and tables, never of text inside strings."""

from __future__ import annotations

import pytest

from job.rules.positions import key_lines, line_of

DOC = '''\
[metadata]
creation_date = "2020/02/18"

[rule]
name = "x"
note = """
name = "not a key: inside a string"
[rule.fake]
"""
query = \'\'\'
a:b and c : "d = e"
\'\'\'
tags = [
    "a = b",
    "[not.a.header]",
]
"quoted.key" = 1
dotted.key = 2  # comment = 3

[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1"
[[rule.threat.technique]]
id = "T2"
[rule.threat.tactic]
id = "TA1"

[[rule.threat]]
[[rule.threat.technique]]
id = "T3"

[rule.filters.query.wildcard."file.path"]
value = "x"
'''


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("metadata",), 1),
        (("metadata", "creation_date"), 2),
        (("rule",), 4),
        (("rule", "name"), 5),
        (("rule", "note"), 6),
        (("rule", "query"), 10),
        (("rule", "tags"), 13),
        (("rule", "quoted.key"), 17),
        (("rule", "dotted"), 18),
        (("rule", "dotted", "key"), 18),
        (("rule", "threat"), 20),
        (("rule", "threat", 0), 20),
        (("rule", "threat", 0, "framework"), 21),
        (("rule", "threat", 0, "technique", 0, "id"), 23),
        (("rule", "threat", 0, "technique", 1, "id"), 25),
        (("rule", "threat", 0, "tactic", "id"), 27),
        (("rule", "threat", 1), 29),
        (("rule", "threat", 1, "technique", 0, "id"), 31),
        (("rule", "filters", "query", "wildcard", "file.path"), 33),
        (("rule", "filters", "query", "wildcard", "file.path", "value"), 34),
    ],
)
def test_key_lines(path: tuple[str | int, ...], line: int) -> None:
    assert key_lines(DOC)[path] == line


@pytest.mark.parametrize(
    "path",
    [("rule", "fake"), ("comment",), ("rule", "comment"), ("not",), ("rule", "a")],
)
def test_text_inside_strings_arrays_and_comments_is_not_a_key(path: tuple[str, ...]) -> None:
    assert path not in key_lines(DOC)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("rule", "risk_score"), 4),  # missing key: its table
        (("rule", "threat", 0, "technique", 1, "name"), 24),  # missing key: its array table
        (("rule", "tags", 1), 13),  # an element of an inline array: the key
        (("nowhere",), None),
        ((), None),
    ],
)
def test_line_of_falls_back_to_the_enclosing_key(path: tuple[str | int, ...], line: int | None) -> None:
    assert line_of(key_lines(DOC), path) == line


def test_escaped_quotes_do_not_close_a_basic_multiline_string() -> None:
    text = 'a = """x \\""" still inside\nb = 1\n"""\nc = 2\n'
    lines = key_lines(text)
    assert ("b",) not in lines
    assert lines[("c",)] == 4
