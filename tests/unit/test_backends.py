"""Query backends and the translator that translates each rule query once per pass; Diagnostic records."""

from __future__ import annotations

import pytest

from job.backends import BACKENDS, UnsupportedLanguage, backend_for, translate_rule_query
from job.errors import JobError, QueryError
from job.kql import KqlSemanticError, KqlSyntaxError
from job.ruletypes.registry import Compiler
from job.text.diagnostics import Diagnostic, error, sort_key, warning
from tests.alert_samples import seed_rule

NESTED = {"users": "nested", "users.name": "keyword"}


def test_one_backend_per_query_language() -> None:
    assert sorted(BACKENDS) == ["kuery", "lucene"]
    assert backend_for("lucene").translate("a:b", NESTED) == {
        "query_string": {"query": "a:b", "analyze_wildcard": True, "time_zone": "Zulu"}
    }
    with pytest.raises(UnsupportedLanguage, match="query language 'eql' cannot be translated by this job"):
        backend_for("eql")


@pytest.mark.parametrize("error", [KqlSyntaxError, KqlSemanticError, UnsupportedLanguage])
def test_query_errors_have_one_root(error: type[Exception]) -> None:
    assert issubclass(error, QueryError) and issubclass(error, JobError) and issubclass(error, ValueError)


def test_the_translator_translates_once_and_remembers_errors() -> None:
    calls: list[tuple[str, ...]] = []

    def field_types(index: tuple[str, ...]) -> dict[str, str]:
        calls.append(index)
        return NESTED

    translator = Compiler(field_types)
    good = seed_rule(query="users:{ name:bob }", index=["a-*"])
    assert translator.compile(good) is translator.compile(good)
    assert translator.compile(good) == translate_rule_query(good, NESTED)
    bad = seed_rule(query="users.name:bob", index=["a-*"])
    for _ in range(2):
        with pytest.raises(KqlSemanticError):
            translator.compile(bad)
    assert calls == [("a-*",), ("a-*",)]  # once per distinct query, errors included
    assert translate_rule_query(bad)  # without field types the nested check cannot apply


def test_an_unreachable_cluster_is_not_remembered() -> None:
    attempts = []

    def field_types(index: tuple[str, ...]) -> dict[str, str]:
        attempts.append(index)
        raise ConnectionError("down")

    translator = Compiler(field_types)
    rule = seed_rule()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            translator.compile(rule)
    assert len(attempts) == 2
    assert Compiler(field_types).compile(seed_rule(index=[])) == translate_rule_query(seed_rule())


@pytest.mark.parametrize(
    ("diagnostic", "text"),
    [
        (error("r.toml", "rule.risk_score: too big", 20), "r.toml:20: rule.risk_score: too big"),
        (warning("r.toml", "cap", 7, 3), "r.toml:7: warning: cap"),
        (error("dir", "cannot read"), "dir: cannot read"),
        (Diagnostic("x.toml", None, None, "warning", "w"), "x.toml: warning: w"),
    ],
)
def test_diagnostic_lines(diagnostic: Diagnostic, text: str) -> None:
    assert str(diagnostic) == text


def test_diagnostics_sort_by_file_line_and_column() -> None:
    found = [error("b", "x", 1), error("a", "x", 9, 2), warning("a", "x", 9, 1), error("a", "x")]
    assert [(d.path, d.line, d.column) for d in sorted(found, key=sort_key)] == [
        ("a", None, None),
        ("a", 9, 1),
        ("a", 9, 2),
        ("b", 1, None),
    ]
