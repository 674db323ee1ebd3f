"""The public surface of job.kql and the printer's refusals."""

from __future__ import annotations

import pytest

import job.kql
from job.kql.ast import Literal, Wildcard
from job.kql.printer import literal_to_kql


def test_public_names() -> None:
    assert sorted(job.kql.__all__) == [
        "KqlSemanticError",
        "KqlSyntaxError",
        "Node",
        "lucene_to_dsl",
        "parse",
        "to_dsl",
    ]
    for name in job.kql.__all__:
        assert getattr(job.kql, name)


def test_errors_are_value_errors() -> None:
    assert issubclass(job.kql.KqlSyntaxError, ValueError)
    assert issubclass(job.kql.KqlSemanticError, ValueError)


@pytest.mark.parametrize(
    "value",
    [Literal(" a"), Literal("a\t"), Literal("true"), Literal("null"), Wildcard((" a", "")), Literal(True, quoted=True)],
    ids=["leading space", "trailing tab", "true string", "null string", "wildcard with leading space", "quoted bool"],
)
def test_values_without_a_kql_spelling_are_refused(value: Literal | Wildcard) -> None:
    with pytest.raises(ValueError):
        literal_to_kql(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Literal("a or b"), r"a \or b"),
        (Literal("cannot be"), r"can\u006eot be"),
        (Literal("NOT x"), r"\NOT x"),
        (Literal("a:b*"), r"a\:b\*"),
        (Literal(""), r"\t"),
        (Literal('say "hi"', quoted=True), r'"say \"hi\""'),
        (Wildcard(("C:\\", "")), r"C\:\\*"),
    ],
)
def test_literal_spelling(value: Literal | Wildcard, text: str) -> None:
    assert literal_to_kql(value) == text
    assert job.kql.parse(f"f:{text}").value == value  # type: ignore[union-attr]
