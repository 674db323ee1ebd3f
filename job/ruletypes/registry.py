"""The rule types this job runs, by the rule's ``type``, and the compiler that compiles each rule's query
once per pass with its type.

Adding a rule type: a folder ``job/ruletypes/<type>/`` whose class satisfies
:class:`job.ruletypes.contract.RuleType`, one line in :data:`TYPES`, and its typed rule class in
:mod:`job.rules.model` (docs/architecture.md, "How to add a rule type").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from job.backends import FieldTypesSource
from job.errors import QueryError
from job.rules.model import Rule
from job.ruletypes.contract import RuleType
from job.ruletypes.eql.rule_type import EqlType
from job.ruletypes.new_terms.rule_type import NewTermsType
from job.ruletypes.query.rule_type import QueryType
from job.ruletypes.threshold.rule_type import ThresholdType

TYPES: Mapping[str, RuleType] = {
    "query": QueryType(),
    "eql": EqlType(),
    "threshold": ThresholdType(),
    "new_terms": NewTermsType(),
}


def type_of(rule: Rule) -> RuleType | None:
    """The rule's type, or None when this job does not run rules of its type."""
    return TYPES.get(rule.type)


def type_for(rule: Rule) -> RuleType:
    """The rule's type; ``ValueError`` for a type this job does not run (callers run only validated rules)."""
    found = type_of(rule)
    if found is None:
        raise ValueError(f"rule type {rule.type!r} is not supported by this job")
    return found


@dataclass
class Compiler:
    """Compiles each rule's query once (with its type and the field types of its indices) and keeps the result,
    or the error, for the rest of the pass, so that ``validate`` and ``run`` check exactly what is searched.

    ``field_types`` gives the field types of a rule's index patterns (from ``_field_caps``); without it, every
    field is unknown, as in ``validate --offline``. When it raises (the cluster is unreachable), the error
    propagates and nothing is remembered, so a later call tries again.
    """

    field_types: FieldTypesSource | None = None
    _done: dict[tuple[str, Hashable], Any] = field(default_factory=dict, repr=False)

    def compile(self, rule: Rule) -> Any:
        rule_type = type_for(rule)
        key = (rule_type.name, rule_type.compile_key(rule))
        if key not in self._done:
            types = self.field_types(rule.index) if self.field_types is not None and rule.index else None
            try:
                self._done[key] = rule_type.compile(rule, types)
            except QueryError as exc:
                self._done[key] = exc
        found = self._done[key]
        if isinstance(found, QueryError):
            raise found
        return found
