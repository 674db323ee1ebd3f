"""The nesting scan of TOML texts: agrees with the parsed document, never raises, and is linear."""

from __future__ import annotations

import time
import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from job.rules.depth import toml_depth_problem


def scanned_depth(text: str) -> int:
    """The smallest limit the scan accepts ``text`` under."""
    limit = 0
    while toml_depth_problem(text, limit) is not None:
        limit += 1
    return limit


def true_depth(value: Any) -> int:
    """The containers (tables and arrays) around the deepest value of a parsed document, the root not counted."""
    if isinstance(value, dict):
        return max((1 + true_depth(v) for v in value.values()), default=1)
    if isinstance(value, list):
        return max((1 + true_depth(v) for v in value), default=1)
    return 0


keys = st.text(alphabet="ab.\"' #=[]{}", min_size=1, max_size=4)
leaves = st.one_of(st.integers(-5, 5), st.text(alphabet="x[]{}#\"'\\\n=.,", max_size=6), st.booleans())
values = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_the_scan_brackets_the_real_depth(document: dict[str, Any]) -> None:
    # Arrays of tables are counted once per header part, so the scan may say less than the real
    # depth, never more, and never less than half of it.
    text = tomli_w.dumps(document)
    assert tomllib.loads(text) == document
    real = true_depth(document) - 1  # the top-level table is the document itself
    scanned = scanned_depth(text)
    assert scanned <= max(real, 0) + 1
    assert real <= 2 * scanned + 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=.[]{}\"'#\\\n ,", max_size=200))
def test_the_scan_never_raises(text: str) -> None:
    toml_depth_problem(text, 3)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("a = 1", 0),
        ("[a]\nb = 1", 1),
        ("[a.b.c]\nd = 1", 3),
        ("[[a.b]]\nc = 1", 3),
        ("a.b.c = 1", 2),
        ("a = [[1]]", 2),
        ("a = {b = {c = 1}}", 2),
        ("a = {b.c.d = 1}", 3),
        ("a = [{b = [1]}, 2]", 3),
        ('a = "[[[[["', 0),
        ("a = '[[[[['", 0),
        ('a = """\n[[[[\n"""', 0),
        ("a = '''\n{{{{\n'''", 0),
        ("# [[[[[\na = 1", 0),
        ('"a.b.c" = 1', 0),
        ("'a.b' = {c = 1}", 1),
        ("a = [\n  [1], # [[[\n  [2],\n]", 2),
        ('a = """x\\""""\nb = [[1]]', 2),
        ("a = {}", 1),
    ],
)
def test_what_counts_as_nesting(text: str, depth: int) -> None:
    tomllib.loads(text)  # every example is valid TOML
    assert scanned_depth(text) == depth


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 300_000,
        "a = " + "{b = " * 200_000,
        'a = "' + '\\"' * 300_000,
        'a = """' + '\\"""' * 200_000,
        "a = '''" + "''" * 300_000,
        "[" + "a." * 300_000,
        "a = [" + "1," * 300_000 + "]",
        "x" * 1_000_000,
    ],
)
def test_the_scan_is_linear_on_crafted_text(text: str) -> None:
    # A guard against super-linear scans, not a speed measurement: the bound is generous.
    started = time.monotonic()
    toml_depth_problem(text)
    assert time.monotonic() - started < 10
