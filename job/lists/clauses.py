"""The query clause of one exception entry of type ``list`` (Kibana's ``buildListClause``), pure.

=========  ==================================================================  =====================
list type  ``included`` (the field is in the list)                            ``excluded``
=========  ==================================================================  =====================
keyword    ``bool{filter: terms{field: [every value]}}``                       ``filter`` -> ``must_not``
ip         the same
ip_range   ``bool{should: [range{field: {gte, lte}} per "a-b" value]            ``should`` -> ``must_not``
           + [terms{field: [CIDR values]}], minimum_should_match: 1}``
=========  ==================================================================  =====================

An ip_range value containing a dash (single IPs read back as ``"a-a"``) is a range; the others are
CIDRs. More than ``MAX_CLAUSE_DASH_RANGES`` ranges make the entry unfit for a clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from job.lists.model import MAX_CLAUSE_DASH_RANGES

if TYPE_CHECKING:  # job.rules imports this module
    from job.rules.parts import ExceptionEntry

Clause = dict[str, Any]


class TooManyRanges(Exception):
    """The ip_range list has more dash ranges than a clause takes; the item is applied per page instead."""


def list_clause(entry: ExceptionEntry, field: str, values: Sequence[str]) -> Clause:
    """The clause of a ``list`` entry on ``field`` whose list holds ``values`` (as read back)."""
    assert entry.list is not None
    if entry.list.type == "ip_range":
        dashes = [value for value in values if "-" in value]
        if len(dashes) > MAX_CLAUSE_DASH_RANGES:
            raise TooManyRanges(entry.list.id)
        clauses: list[Clause] = []
        for value in dashes:
            # As Kibana: the text before the first dash, and the text between the first and the second.
            gte, lte = value.split("-")[:2]
            clauses.append({"range": {field: {"gte": gte, "lte": lte}}})
        cidrs = [value for value in values if "-" not in value]
        if cidrs:
            clauses.append({"terms": {field: cidrs}})
        return {"bool": {"must_not" if entry.operator == "excluded" else "should": clauses, "minimum_should_match": 1}}
    return {"bool": {"must_not" if entry.operator == "excluded" else "filter": {"terms": {field: list(values)}}}}
