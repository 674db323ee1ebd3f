"""Planning a whole EQL statement: per stage, the pushed-down query, the client-side residual and the keys.

:func:`push_down` plans one condition (an event query's, or a stage's); :func:`plan` a whole statement:
event query, sequence (``runs`` expanded, missing stages and ``until`` kept apart) or sample. As
Elasticsearch does for each stage: the category becomes a ``term`` on the event category field, every
non-optional join key must exist (an ``exists`` filter, so an event with a null key never joins), and a
condition on a join key in one stage is copied to every other stage with that stage's key
(``PropagateJoinKeyConstraints``). :func:`describe` prints a plan the way ``translate`` shows it.
"""

from __future__ import annotations

import dataclasses as dc
import json
from collections.abc import Mapping
from typing import Any
from typing import Literal as TypingLiteral

from job.eql.ast import (
    And,
    Compare,
    EventFilter,
    EventQuery,
    Expr,
    Field,
    IsNotNull,
    Literal,
    Or,
    SampleQuery,
    SequenceQuery,
    Stage,
    Statement,
    any_node,
    map_children,
)
from job.eql.errors import EqlError, EqlVerificationError
from job.eql.optimize import check_boolean, optimize
from job.eql.parser import parse
from job.eql.resolve import FieldTypes, resolve_all
from job.eql.sequence import SequenceSpec
from job.eql.translate import Dsl, Tree, has_scripts, script_leaves, to_dsl, translate, tree_matches
from job.eql.values import indexed_values, script_value

StageKind = TypingLiteral["event", "positive", "missing", "until", "sample"]


@dc.dataclass(frozen=True, slots=True)
class Residual:
    """What the client evaluates after the query: the whole condition, with Elasticsearch's semantics."""

    tree: Tree
    predicates: tuple[Expr, ...]

    def matches(self, source: Mapping[str, Any]) -> bool:
        return tree_matches(self.tree, source)


@dc.dataclass(frozen=True, slots=True)
class PushDown:
    """One condition planned: ``dsl`` (exact when ``residual`` is None, else a superset) and the residual."""

    condition: Expr
    tree: Tree
    dsl: Dsl
    residual: Residual | None

    def matches(self, source: Mapping[str, Any]) -> bool:
        """Whether Elasticsearch selects the event (the DSL and the residual together, on the client)."""
        return tree_matches(self.tree, source)


@dc.dataclass(frozen=True, slots=True)
class StagePlan:
    """One query of a statement. ``keys`` are resolved fields (the null literal for a missing ``?field``)."""

    kind: StageKind
    position: int
    source_position: int
    category: str | None
    keys: tuple[Expr, ...]
    push: PushDown
    text: str

    def key(self, source: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The event's join key; None when a non-optional key is null (the event never joins)."""
        values: list[Any] = []
        for key in self.keys:
            if isinstance(key, Literal):
                values.append(None)
                continue
            assert isinstance(key, Field)
            found = [script_value(held, key.es_type) for held in indexed_values(source, key.name, key.es_type)]
            if not found and not key.optional:
                return None
            values.append(None if not found else (found[0] if len(found) == 1 else tuple(found)))
        return tuple(values)


@dc.dataclass(frozen=True, slots=True)
class QueryPlan:
    """A statement planned. ``stages`` are, for a sequence, the positive and missing stages in order with
    ``runs`` expanded; ``until`` apart; ``head``/``tail`` from the pipes (the last one wins its direction)."""

    statement: Statement
    kind: TypingLiteral["event", "sequence", "sample"]
    stages: tuple[StagePlan, ...]
    until: StagePlan | None = None
    maxspan_ms: int | None = None
    head: int | None = None
    tail: int | None = None


def _stage_condition(flt: EventFilter, keys: tuple[Expr, ...], category: Expr | None) -> Expr:
    """The stage's whole condition: category term, the condition, ``exists`` on each non-optional key."""
    parts: list[Expr] = []
    if flt.category is not None and category is not None:
        value = Literal(flt.category, start=flt.start, end=flt.start)
        parts.append(Compare("==", category, value, start=flt.start, end=flt.start))
    parts.append(flt.condition)
    mandatory = [key for key in keys if isinstance(key, Field) and not key.optional]
    parts += [IsNotNull(key, start=key.start, end=key.end) for key in mandatory]
    return And(tuple(parts), start=flt.start, end=flt.end) if len(parts) > 1 else parts[0]


def _finish(condition: Expr, text: str) -> PushDown:
    problems = check_boolean(condition, text)
    if problems:
        raise EqlVerificationError(problems, text)
    try:
        optimized = optimize(condition)
    except EqlError as exc:
        raise exc.with_query(text) from None
    tree = translate(optimized, text)
    residual = Residual(tree, tuple(script_leaves(tree))) if has_scripts(tree) else None
    return PushDown(optimized, tree, to_dsl(tree), residual)


def push_down(
    condition: Expr | str,
    field_types: Mapping[str, str],
    *,
    category: str | None = None,
    category_field: str = "event.category",
    text: str = "",
) -> PushDown:
    """Plan one condition (``Expr``, or the text after ``where``) against the field types."""
    if isinstance(condition, str):
        text = f"any where {condition}"
        parsed = parse(text).query
        assert isinstance(parsed, EventQuery)
        condition = parsed.filter.condition
    exprs: list[Expr] = [condition] + ([Field(category_field)] if category is not None else [])
    resolved = resolve_all(exprs, FieldTypes(field_types), text)
    flt = EventFilter(category, resolved[0], start=condition.start, end=condition.end)
    return _finish(_stage_condition(flt, (), resolved[1] if category is not None else None), text)


# -- whole statements ----------------------------------------------------------------------------------


def _split_and(node: Expr) -> list[Expr]:
    return list(node.children) if isinstance(node, And) else [node]


def _replace(node: Expr, old: Expr, new: Expr) -> Expr:
    if node == old:
        return new
    return map_children(node, lambda child: _replace(child, old, new))


def _key_position(conjunct: Expr, keys: tuple[Expr, ...]) -> int | None:
    """The first join key the conjunct mentions (Elasticsearch keeps one constraint per conjunct)."""
    for position, key in enumerate(keys):
        if isinstance(key, Field) and any_node(conjunct, lambda node, wanted=key: node == wanted):  # type: ignore[misc]
            return position
    return None


def _propagate_key_constraints(conditions: list[Expr], keys: list[tuple[Expr, ...]]) -> list[Expr]:
    """PropagateJoinKeyConstraints: a conjunct (without ``or``) on a join key holds for every stage."""
    constraints: list[tuple[Expr, int, int]] = []
    for index, (condition, stage_keys) in enumerate(zip(conditions, keys, strict=True)):
        for conjunct in _split_and(condition):
            if any_node(conjunct, lambda node: isinstance(node, Or)):
                continue
            position = _key_position(conjunct, stage_keys)
            if position is not None:
                constraints.append((conjunct, index, position))
    if not constraints:
        return conditions
    result = []
    for index, condition in enumerate(conditions):
        extra = [
            _replace(conjunct, keys[origin][position], keys[index][position])
            for conjunct, origin, position in constraints
            if origin != index
        ]
        result.append(And((condition, *extra), start=condition.start, end=condition.end) if extra else condition)
    return result


def plan(
    statement: Statement | str,
    field_types: Mapping[str, str],
    *,
    category_field: str = "event.category",
    timestamp_field: str | None = "@timestamp",
    tiebreaker_field: str | None = None,
) -> QueryPlan:
    """Plan a statement: resolution, optimization and push-down of every stage, every problem reported."""
    if isinstance(statement, str):
        statement = parse(statement)
    text, query, fields = statement.text, statement.query, FieldTypes(field_types)
    if isinstance(query, EventQuery):
        stages: list[Stage] = [Stage(query.filter)]
        parent: tuple[Expr, ...] = ()
    else:
        stages = list(query.stages) + ([query.until] if isinstance(query, SequenceQuery) and query.until else [])
        parent = query.keys
    timed = not isinstance(query, SampleQuery)  # samples need no timestamp (Elasticsearch PR #90629)
    required = [Field(name) for name in (timestamp_field, tiebreaker_field) if name and timed]
    with_category = any(stage.filter.category is not None for stage in stages)
    exprs: list[Expr] = [stage.filter.condition for stage in stages] + [k for st in stages for k in parent + st.keys]
    exprs += required + ([Field(category_field)] if with_category else [])
    resolved = resolve_all(exprs, fields, text)
    conditions, rest = resolved[: len(stages)], resolved[len(stages) :]
    stage_keys: list[tuple[Expr, ...]] = []
    for stage in stages:
        count = len(parent) + len(stage.keys)
        stage_keys.append(tuple(rest[:count]))
        rest = rest[count:]
    category = rest[-1] if with_category else None
    until_present = isinstance(query, SequenceQuery) and query.until is not None
    queried = len(stages) - (1 if until_present else 0)
    if isinstance(query, SequenceQuery | SampleQuery):
        # the user's conditions only: the key-exists filters are added after (their order in
        # Elasticsearch's optimizer is not known; this way an optional key never inherits one)
        conditions[:queried] = _propagate_key_constraints(conditions[:queried], stage_keys[:queried])
    full = [
        _stage_condition(dc.replace(stage.filter, condition=condition), keys, category)
        for stage, condition, keys in zip(stages, conditions, stage_keys, strict=True)
    ]
    planned = [_finish(condition, text) for condition in full]
    return _assemble(statement, query, stages, stage_keys, planned, until_present)


def _assemble(
    statement: Statement,
    query: Any,
    stages: list[Stage],
    stage_keys: list[tuple[Expr, ...]],
    planned: list[PushDown],
    until_present: bool,
) -> QueryPlan:
    text = statement.text
    head = tail = None
    for pipe in statement.pipes:
        if pipe.kind == "head":
            head = pipe.count if head is None else min(head, pipe.count)
        else:
            tail = pipe.count if tail is None else min(tail, pipe.count)
    if isinstance(query, EventQuery):
        only = StagePlan("event", 0, 0, stages[0].filter.category, (), planned[0], text)
        return QueryPlan(statement, "event", (only,), head=head, tail=tail)
    kind: StageKind = "sample" if isinstance(query, SampleQuery) else "positive"
    expanded: list[StagePlan] = []
    count = len(stages) - (1 if until_present else 0)
    for source_position in range(count):
        stage = stages[source_position]
        stage_text = text[stage.start : stage.end]
        for _ in range(stage.runs):
            stage_kind: StageKind = "missing" if stage.missing else kind
            expanded.append(
                StagePlan(
                    stage_kind,
                    len(expanded),
                    source_position,
                    stage.filter.category,
                    stage_keys[source_position],
                    planned[source_position],
                    stage_text,
                )
            )
    until = None
    if until_present:
        last = stages[-1]
        until = StagePlan(
            "until",
            len(expanded),
            len(stages) - 1,
            last.filter.category,
            stage_keys[-1],
            planned[-1],
            text[last.start : last.end],
        )
    if isinstance(query, SampleQuery):
        return QueryPlan(statement, "sample", tuple(expanded), head=head, tail=tail)
    return QueryPlan(statement, "sequence", tuple(expanded), until, query.maxspan_ms, head, tail)


def describe(query_plan: QueryPlan) -> str:
    """The plan as ``translate`` prints it: per query, the DSL pushed down and what the client evaluates."""
    lines: list[str] = []
    text = query_plan.statement.text
    stages = list(query_plan.stages) + ([query_plan.until] if query_plan.until else [])
    seen: set[int] = set()
    for stage in stages:
        if stage.kind != "until" and stage.source_position in seen:
            continue
        seen.add(stage.source_position)
        title = {
            "event": "event query",
            "positive": "stage",
            "missing": "missing stage",
            "until": "until",
            "sample": "sample stage",
        }[stage.kind]
        runs = sum(1 for s in query_plan.stages if s.source_position == stage.source_position and stage.kind != "until")
        label = f"{title} {stage.source_position + 1}" if stage.kind != "event" else title
        if runs > 1:
            label += f" (runs={runs})"
        if stage.text:
            label += f": {stage.text}"
        lines.append(label)
        keys = ", ".join(key.name if isinstance(key, Field) else "null" for key in stage.keys)
        if keys:
            lines.append(f"  join keys: {keys}")
        lines.append("  query:")
        lines.extend("    " + line for line in json.dumps(stage.push.dsl, indent=2, ensure_ascii=False).splitlines())
        residual = stage.push.residual
        if residual is None:
            lines.append("  evaluated on the client: nothing (the query is exact)")
        else:
            shown = "; ".join(_show(pred, text) for pred in residual.predicates)
            lines.append(f"  evaluated on the client: {shown}")
    if query_plan.kind == "sequence":
        lines.append(
            f"sequence matching on the client: maxspan={query_plan.maxspan_ms} ms"
            if query_plan.maxspan_ms
            else "sequence matching on the client: no maxspan"
        )
    return "\n".join(lines)


def _show(node: Expr, text: str) -> str:
    if text and node.end > node.start:
        return text[node.start : node.end]
    return type(node).__name__


def sequence_spec(query_plan: QueryPlan) -> SequenceSpec:
    """The matcher's view of a planned sequence."""
    kinds: tuple[TypingLiteral["positive", "missing"], ...] = tuple(
        "missing" if stage.kind == "missing" else "positive" for stage in query_plan.stages
    )
    return SequenceSpec(kinds, query_plan.maxspan_ms, query_plan.until is not None)


def stage_matches(query_plan: QueryPlan, source: Mapping[str, Any]) -> dict[int, tuple[Any, ...]]:
    """Which stages an event matches (each ``runs`` copy; the until stage under ``len(stages)``), with its
    key for each; a stage whose non-optional key is null is left out (the key's ``exists`` filter)."""
    found: dict[int, tuple[Any, ...]] = {}
    decided: dict[int, tuple[Any, ...] | None] = {}
    stages = list(query_plan.stages) + ([query_plan.until] if query_plan.until else [])
    for stage in stages:
        if stage.source_position not in decided:
            selected = stage.push.matches(source)
            decided[stage.source_position] = stage.key(source) if selected else None
        key = decided[stage.source_position]
        if key is not None:
            found[stage.position] = key
    return found


def event_timestamp_ns(source: Mapping[str, Any], field: str = "@timestamp") -> int | None:
    """The event's timestamp (nanoseconds since the epoch) as the index holds it, None if it has none."""
    values = indexed_values(source, field, "date_nanos")
    return values[0] if values else None
