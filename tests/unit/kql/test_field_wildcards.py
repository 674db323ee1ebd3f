"""Field-name wildcards (``process.*:x``): the same matches as a regex, in linear time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from job.kql import to_dsl
from job.kql.fields import DataView, glob_match


def regex_match(parts: tuple[str, ...], name: str) -> bool:
    """The matcher this replaces: exponential on patterns like ``*a*a*a*b``, but a clear reference."""
    return re.fullmatch(".*".join(re.escape(part) for part in parts), name, re.DOTALL) is not None


# A small alphabet makes overlaps (and so the cases where a greedy matcher could go wrong) likely.
names = st.text(alphabet="ab.*\n", max_size=10)
patterns = st.lists(st.text(alphabet="ab.\n", max_size=3), min_size=1, max_size=5).map(tuple)


@settings(max_examples=1000, deadline=None)
@given(patterns, names)
def test_same_answer_as_the_regex(parts: tuple[str, ...], name: str) -> None:
    assert glob_match(parts, name) == regex_match(parts, name)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("process.*", "process.name", True),
        ("process.*", "process.", True),
        ("process.*", "process", False),
        ("*.name", "process.name", True),
        ("*", "", True),
        ("a*a", "a", False),
        ("a*a", "aa", True),
        ("*a*b*", "ba", False),
        ("*ab*ab*", "abab", True),
        ("*ab*ab*", "aba", False),
        ("exact", "exact", True),
        ("exact", "exact.", False),
    ],
)
def test_examples(pattern: str, name: str, expected: bool) -> None:
    assert glob_match(tuple(pattern.split("*")), name) is expected


def test_a_pathological_pattern_against_ten_thousand_fields_is_fast() -> None:
    # The backtracking regex took 15 s for 40 names. A guard against exponential time, not a speed
    # measurement: the bound is generous.
    fields = {f"field.{'a' * (i % 40)}{i}": "keyword" for i in range(10_000)}
    query = "*a" * 12 + "*b:x"
    started = time.monotonic()
    assert to_dsl(query, fields) == to_dsl(query, {})  # nothing matches: the name passes through
    assert time.monotonic() - started < 2


def test_matching_keeps_data_view_order_and_skips_objects() -> None:
    view = DataView({"b.x": "keyword", "a.x": "keyword", "a": "object", "c.y": "keyword"})
    assert [spec.name for spec in view.matching(("", ".x"))] == ["a.x", "b.x"]
    assert [spec.name for spec in view.matching(("a", ""))] == ["a.x"]
