"""Query backends: the one place that knows how each rule language becomes Elasticsearch DSL.

A backend turns a rule's query text into a clause for ``bool.filter``, given the field types of the rule's
indices when they are known. ``BACKENDS`` is keyed by the rule's ``language`` (``kuery``, ``lucene``);
``eql`` and ``esql`` get their own backends when those rule types run. Nothing else in the job looks at
``rule.language``.

``QueryTranslator`` translates each rule's query once per pass and remembers the result (or the error),
so that ``validate`` and ``run`` check exactly the DSL that is searched, with the field types of the
cluster when one is reachable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from job.errors import QueryError
from job.kql import to_dsl
from job.kql.lucene import lucene_to_dsl

if TYPE_CHECKING:  # job.rules.validation imports this module
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


@dataclass
class QueryTranslator:
    """Translates each rule query once and keeps the DSL (or the error) for the rest of the pass.

    ``field_types`` gives the field types of a rule's index patterns (from ``_field_caps``); without it,
    every field is unknown, as in ``validate --offline``. When it raises (the cluster is unreachable), the
    error propagates and nothing is remembered, so a later call tries again.
    """

    field_types: FieldTypesSource | None = None
    _done: dict[tuple[str | None, str, tuple[str, ...]], dict[str, Any] | QueryError] = field(
        default_factory=dict, repr=False
    )

    def translate(self, rule: Rule) -> dict[str, Any]:
        key = (rule.language, rule.query, rule.index)
        if key not in self._done:
            types = self.field_types(rule.index) if self.field_types is not None and rule.index else None
            try:
                self._done[key] = translate_rule_query(rule, types)
            except QueryError as exc:
                self._done[key] = exc
        found = self._done[key]
        if isinstance(found, QueryError):
            raise found
        return found
