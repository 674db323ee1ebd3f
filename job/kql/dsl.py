"""KQL syntax tree to Elasticsearch query DSL, clause for clause as Kibana's ``toElasticsearchQuery``.

Every choice below mirrors Kibana's ``kuery/functions/{and,or,not,is,range,nested}.ts``; the order of
the checks in :func:`_is_clause` is Kibana's order and matters (a quoted value on a keyword field is a
``term``, a date is a ``range`` even when quoted).
"""

from __future__ import annotations

import dataclasses as dc
import re
from typing import Any

from job.kql.ast import And, Is, Literal, Nested, Node, Not, Or, Range, Value, Wildcard, js_string
from job.kql.errors import KqlSemanticError
from job.kql.fields import DataView, FieldSpec

Dsl = dict[str, Any]

DEFAULT_TIME_ZONE = "Zulu"
"""``dateFormatTZ`` of the detection engine (``getQueryFilter``)."""


@dc.dataclass(frozen=True, slots=True)
class DslOptions:
    """Kibana's ``KueryQueryOptions``. The defaults are what the detection engine passes."""

    date_format_tz: str | None = DEFAULT_TIME_ZONE
    case_insensitive: bool | None = None
    nested_ignore_unmapped: bool | None = None
    filters_in_must_clause: bool = False


# query_string reserved characters, as Kibana's wildcard toQueryStringQuery escapes them. Whitespace
# is deliberately not escaped.
_QUERY_STRING_SPECIAL = re.compile(r'[+\-=&|><!(){}\[\]^"~*?:\\/]')
_EPOCH = re.compile("[0-9]+")


def query_string_pattern(value: Wildcard) -> str:
    """The wildcard as a query_string / wildcard-query pattern: pieces escaped, joined with ``*``."""
    return "*".join(_QUERY_STRING_SPECIAL.sub(r"\\\g<0>", part) for part in value.parts)


def _js_value(value: Value) -> str | bool | None:
    """Kibana's ``ast.toElasticsearchQuery`` of a literal or wildcard node."""
    return value.text if isinstance(value, Wildcard) else value.value


def _is_epoch(value: str | bool | None) -> bool:
    return isinstance(value, str) and _EPOCH.fullmatch(value) is not None


@dc.dataclass(frozen=True, slots=True)
class _Context:
    """Inside ``path:{ }``: ``nested`` is set, ``path`` is the full path (as Kibana, maybe not a string)."""

    nested: bool = False
    path: str | bool | None = None


@dc.dataclass(frozen=True, slots=True)
class _Translator:
    query: str
    view: DataView | None
    options: DslOptions

    def build(self, node: Node, ctx: _Context) -> Dsl:
        if isinstance(node, And):
            key = "must" if self.options.filters_in_must_clause else "filter"
            return {"bool": {key: [self.build(child, ctx) for child in node.children]}}
        if isinstance(node, Or):
            return _should([self.build(child, ctx) for child in node.children])
        if isinstance(node, Not):
            return {"bool": {"must_not": self.build(node.child, ctx)}}
        if isinstance(node, Nested):
            return self._nested(node, ctx)
        if isinstance(node, Range):
            return self._range(node, ctx)
        return self._is(node, ctx)

    def _nested(self, node: Nested, ctx: _Context) -> Dsl:
        path = None if node.path is None else _js_value(node.path)
        full: str | bool | None = f"{js_path(ctx.path)}.{js_path(path)}" if ctx.path else path
        query = self.build(node.query, _Context(nested=True, path=full))
        return _nested_query(full, query, self.options)

    def _is(self, node: Is, ctx: _Context) -> Dsl:
        value = node.value
        exists = isinstance(value, Wildcard) and value.is_lone
        if exists and isinstance(node.field, Wildcard) and node.field.is_lone:
            return {"match_all": {}}
        field = self._full_field(node.field, ctx, node.start)
        if field is None:
            if isinstance(value, Wildcard):
                return {"query_string": {"query": query_string_pattern(value)}}
            kind = "phrase" if value.quoted else "best_fields"
            return {"multi_match": {"type": kind, "query": value.value, "lenient": True}}
        clauses = []
        for spec in self._resolve(field):
            clause = _is_clause(spec, value, exists, self.options)
            clauses.append(_wrap_nested(clause, spec, field, ctx, self.options))
        return _should(clauses)

    def _range(self, node: Range, ctx: _Context) -> Dsl:
        field = self._full_field(node.field, ctx, node.start)
        value = _js_value(node.value)
        clauses = []
        for spec in self._resolve(field):
            params: dict[str, Any] = {node.op: value}
            if spec.is_date and self.options.date_format_tz and not _is_epoch(value):
                params["time_zone"] = self.options.date_format_tz
            clauses.append(_wrap_nested({"range": {spec.name: params}}, spec, field, ctx, self.options))
        return _should(clauses)

    def _full_field(self, field: Value | None, ctx: _Context, offset: int) -> Value | None:
        """Kibana's ``getFullFieldNameNode``: prefix the nested path, then check nesting against the view."""
        if ctx.path:
            prefix = f"{js_path(ctx.path)}."
            if isinstance(field, Wildcard):
                field = dc.replace(field, parts=(prefix + field.parts[0], *field.parts[1:]))
            else:
                quoted = field.quoted if field is not None else False
                start, end = (field.start, field.end) if field is not None else (offset, offset)
                field = Literal(prefix + js_string(field), quoted, start, end)
        if self.view is None or (isinstance(field, Wildcard) and not ctx.path):
            return field
        errors = [_nesting_error(spec, ctx.path) for spec in self._lookup(field)]
        messages = [message for message in errors if message]
        if messages:
            where = field.start if field is not None else offset
            raise KqlSemanticError("\n".join(messages), self.query, where)
        return field

    def _lookup(self, field: Value | None) -> list[FieldSpec]:
        """Kibana's ``getFields``: the exact field for a literal name, every match for a wildcard."""
        if self.view is None or field is None:
            return []
        if isinstance(field, Wildcard):
            return self.view.matching(field.parts)
        spec = self.view.get(field.value) if isinstance(field.value, str) else None
        return [spec] if spec is not None else []

    def _resolve(self, field: Value | None) -> list[FieldSpec]:
        # Unknown fields (or no data view) are sent as written, wildcard pattern included.
        return self._lookup(field) or [FieldSpec(js_string(field))]


def js_path(path: str | bool | None) -> str:
    """A nested path in a JavaScript template string."""
    return js_string(None if path is None else Literal(path))


def _nesting_error(spec: FieldSpec, path: str | bool | None) -> str | None:
    own = spec.nested_path
    if path and not own:
        return f'{spec.name} is not a nested field but is in nested group "{js_path(path)}" in the KQL expression.'
    if own and not path:
        return f"{spec.name} is a nested field, but is not in a nested group in the KQL expression."
    if own and own != path:
        return f"Nested field {spec.name} is being queried with the incorrect nested path. The correct path is {own}."
    return None


def _is_clause(spec: FieldSpec, value: Value, exists: bool, options: DslOptions) -> Dsl:
    name = spec.name
    if exists:
        return {"exists": {"field": name}}
    if isinstance(value, Wildcard):
        pattern = query_string_pattern(value)
        if spec.is_keyword:
            return {"wildcard": {name: _case({"value": pattern}, options)}}
        return {"query_string": {"fields": [name], "query": pattern}}
    if spec.is_date:
        params: dict[str, Any] = {"gte": value.value, "lte": value.value}
        if options.date_format_tz and not _is_epoch(value.value):
            params["time_zone"] = options.date_format_tz
        return {"range": {name: params}}
    if spec.is_keyword:
        return {"term": {name: _case({"value": value.value}, options)}}
    return {"match_phrase" if value.quoted else "match": {name: value.value}}


def _case(params: Dsl, options: DslOptions) -> Dsl:
    if options.case_insensitive is not None:
        params["case_insensitive"] = options.case_insensitive
    return params


def _nested_query(path: str | bool | None, query: Dsl, options: DslOptions) -> Dsl:
    params: Dsl = {"path": path, "query": query, "score_mode": "none"}
    if options.nested_ignore_unmapped is not None:
        params["ignore_unmapped"] = options.nested_ignore_unmapped
    return {"nested": params}


def _wrap_nested(clause: Dsl, spec: FieldSpec, field: Value | None, ctx: _Context, options: DslOptions) -> Dsl:
    """A wildcard field name that reaches a nested field gets its own nested query (outside groups)."""
    if not isinstance(field, Wildcard) or spec.nested_path is None or ctx.nested:
        return clause
    return _nested_query(spec.nested_path, clause, options)


def _should(clauses: list[Dsl]) -> Dsl:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def build_dsl(node: Node, view: DataView | None, query: str = "", options: DslOptions = DslOptions()) -> Dsl:
    """The DSL of a parsed query. ``query`` (the source text) is only used to place error carets."""
    return _Translator(query, view, options).build(node, _Context())
