"""Property-based tests: printed trees parse back unchanged; no input makes the translator crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from job.kql import KqlSemanticError, KqlSyntaxError, parse, to_dsl
from job.kql.ast import And, Is, Literal, Nested, Node, Not, Or, Range, Value, Wildcard
from job.kql.lexer import JS_TRIM
from job.kql.printer import to_kql
from tests.unit.kql.builders import FIELDS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that exercise every lexer branch: specials, keywords' letters, whitespace, escapes.
KQL_ALPHABET = st.sampled_from(list('abnotrdNOTRAD *\\():<>"{}=u0-9\t\n\r\u00a0\u2003.@_-'))


def _unquoted_ok(text: str) -> bool:
    return text == text.strip(JS_TRIM) and text not in ("true", "false", "null")


texts = st.text(max_size=6) | st.text(alphabet=KQL_ALPHABET, max_size=8)
unquoted = texts.filter(_unquoted_ok).map(Literal)
quoted = texts.map(lambda text: Literal(text, quoted=True))
json_literal = st.sampled_from([Literal(True), Literal(False), Literal(None)])
wildcard = (
    st.lists(texts, min_size=2, max_size=4)
    .filter(lambda parts: parts[0] == parts[0].lstrip(JS_TRIM) and parts[-1] == parts[-1].rstrip(JS_TRIM))
    .map(lambda parts: Wildcard(tuple(parts)))
)
values: st.SearchStrategy[Value] = st.one_of(unquoted, quoted, json_literal, wildcard)
fields: st.SearchStrategy[Value | None] = st.one_of(
    st.none(), unquoted, quoted, wildcard, st.sampled_from([Literal(True), Literal(False)])
)
leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(Is, fields, values),
    st.builds(Range, fields, st.sampled_from(["gt", "gte", "lt", "lte"]), values),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    groups = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(
        groups.map(And),
        groups.map(Or),
        children.map(Not),
        st.builds(Nested, fields, children),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


@SETTINGS
@given(trees)
def test_printed_tree_parses_back_to_the_same_tree(node: Node) -> None:
    text = to_kql(node)
    assert parse(text) == node, text


@SETTINGS
@given(trees)
def test_every_tree_translates_to_json(node: Node) -> None:
    json.dumps(to_dsl(to_kql(node)))


@SETTINGS
@given(st.text(max_size=40) | st.text(alphabet=KQL_ALPHABET, max_size=40))
def test_arbitrary_text_translates_or_is_a_syntax_error(text: str) -> None:
    try:
        result = to_dsl(text)
    except KqlSyntaxError as error:
        assert error.line is not None and error.column is not None
        assert 1 <= error.column <= len(text) + 1
        assert str(error)
    else:
        json.dumps(result)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("nestedField.child.host: {}()*orand ")), max_size=40))
def test_with_field_types_only_kql_errors_are_raised(text: str) -> None:
    try:
        json.dumps(to_dsl(text, FIELDS))
    except (KqlSyntaxError, KqlSemanticError) as error:
        assert str(error)
