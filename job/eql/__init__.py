"""EQL, Elasticsearch's Event Query Language, as Elasticsearch runs it: pure (no Elasticsearch I/O, no clock).

* :func:`parse` -- text to a frozen syntax tree (:mod:`job.eql.ast`); :class:`EqlSyntaxError` with line,
  column and caret, worded as Elasticsearch words it.
* :func:`push_down` / :func:`plan` -- resolution against the field types (``_field_caps``), Elasticsearch's
  rewrites, and per query the DSL it pushes down plus the residual the client evaluates where
  Elasticsearch would run a script; :class:`EqlVerificationError` with Elasticsearch's messages.
* :func:`evaluate` -- EQL's three-valued logic over an event's ``_source``.
* :class:`SequenceMatcher` -- the sequence state machine, fed events in order, memory bounded by the
  in-flight candidates (:func:`sequence_spec` and :func:`stage_matches` connect it to a plan);
  :class:`SampleCollector` -- ``sample by``.
* :func:`describe` -- a plan as ``translate`` prints it.
"""

from __future__ import annotations

from job.eql.errors import EqlError, EqlRuntimeError, EqlSyntaxError, EqlVerificationError, Problem
from job.eql.evaluate import evaluate
from job.eql.parser import is_sequence, parse, parse_expression
from job.eql.query import (
    PushDown,
    QueryPlan,
    Residual,
    StagePlan,
    describe,
    event_timestamp_ns,
    plan,
    push_down,
    sequence_spec,
    stage_matches,
)
from job.eql.sequence import (
    Sample,
    SampleCollector,
    SequenceMatch,
    SequenceMatcher,
    SequenceSpec,
    limit,
    order,
)

__all__ = [
    "EqlError",
    "EqlRuntimeError",
    "EqlSyntaxError",
    "EqlVerificationError",
    "Problem",
    "PushDown",
    "QueryPlan",
    "Residual",
    "Sample",
    "SampleCollector",
    "SequenceMatch",
    "SequenceMatcher",
    "SequenceSpec",
    "StagePlan",
    "describe",
    "evaluate",
    "is_sequence",
    "event_timestamp_ns",
    "limit",
    "order",
    "parse",
    "parse_expression",
    "plan",
    "push_down",
    "sequence_spec",
    "stage_matches",
]
