"""Query backends: the one place that knows how each rule language becomes Elasticsearch DSL.

A backend turns a rule's query text into a clause for ``bool.filter``, given the field types of the rule's
indices when they are known. ``BACKENDS`` is keyed by the rule's ``language`` (``kuery``, ``lucene``);
the rule types with languages of their own (EQL, ES|QL) keep them in their own folders.

Each rule's query is translated once per pass (``job.ruletypes.registry.Compiler``), with the field types of
the cluster when one is reachable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from job.errors import QueryError
from job.kql import to_dsl
from job.kql.lucene import lucene_to_dsl
from job.rules.model import Rule

FieldTypes = Mapping[str, str]
# The field types of some index patterns (name -> Elasticsearch type), or None when they cannot be known.
FieldTypesSource = Callable[[tuple[str, ...]], FieldTypes | None]


class QueryBackend(Protocol):
    """Turns query text of one language into the clause Kibana's detection engine builds for it."""

    def translate(self, query: str, field_types: FieldTypes | None) -> dict[str, Any]:
        """The DSL clause; ``QueryError`` (with a position when known) if the query does not translate."""
        ...


class KueryBackend:
    """KQL, with the field types playing Kibana's data view (nested fields, date ranges, keyword wildcards)."""

    def translate(self, query: str, field_types: FieldTypes | None) -> dict[str, Any]:
        return to_dsl(query, field_types)


class LuceneBackend:
    """Lucene: a ``query_string`` clause, which Elasticsearch parses; field types do not change it."""

    def translate(self, query: str, field_types: FieldTypes | None) -> dict[str, Any]:
        del field_types
        return lucene_to_dsl(query)


BACKENDS: Mapping[str, QueryBackend] = {"kuery": KueryBackend(), "lucene": LuceneBackend()}


class UnsupportedLanguage(QueryError):
    """No backend translates this language (yet)."""

    def __init__(self, language: str | None) -> None:
        known = " or ".join(sorted(BACKENDS))
        super().__init__(f"query language {language!r} cannot be translated by this job (only {known})")


def backend_for(language: str | None) -> QueryBackend:
    """The backend of a rule language; ``UnsupportedLanguage`` if there is none."""
    backend = BACKENDS.get(language or "")
    if backend is None:
        raise UnsupportedLanguage(language)
    return backend


def translate_rule_query(rule: Rule, field_types: FieldTypes | None = None) -> dict[str, Any]:
    """The rule's query as DSL, translated by its language's backend; ``QueryError`` if it does not translate."""
    return backend_for(rule.language).translate(rule.query, field_types)


class KqlOrLucene:
    """The ``compile_key`` and ``compile`` of a rule type whose query is KQL or Lucene (query, threshold, new
    terms): one translation per language, query and index patterns per pass."""

    def compile_key(self, rule: Rule) -> Hashable:
        return (rule.language, rule.query, rule.index)

    def compile(self, rule: Rule, field_types: FieldTypes | None) -> dict[str, Any]:
        return translate_rule_query(rule, field_types)
