"""Value-list limits (Kibana's) and the records the other modules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from job.errors import JobError

# Value-list types this job imports and applies (Kibana's UI offers the first four).
ListType = Literal["keyword", "ip", "ip_range", "text", "long", "date"]
LIST_TYPES: Final[tuple[str, ...]] = get_args(ListType)
# Lists of these types (as the exception entry names them) can become query clauses; others are
# always looked up per page.
CLAUSE_TYPES: Final = frozenset({"keyword", "ip", "ip_range"})
# A list with more items than this (duplicates count) is looked up per page instead: Elasticsearch's
# default index.max_terms_count is the same number.
MAX_CLAUSE_ITEMS: Final = 65_536
# An ip_range list with more "a-b" ranges than this (single IPs are stored as "a-a") is looked up per page.
MAX_CLAUSE_DASH_RANGES: Final = 200
# Kibana's limit on an import file (its request body).
MAX_IMPORT_BYTES: Final = 9_000_000
# Items per bulk request (Kibana sends 1,000; larger requests import a 65,536-item list twice as fast).
IMPORT_BATCH: Final = 5_000


@dataclass(frozen=True, slots=True)
class ListInfo:
    """What a run needs to know of one stored list.

    ``total`` counts stored items, duplicates included (re-imports append). ``values`` holds every item's
    value as Kibana reads it back (``"a-b"`` for a range), and is None when it was not read: the list is
    too large for a query clause, or no entry needs its values in a clause.
    """

    list_id: str
    type: str
    total: int
    values: tuple[str, ...] | None = None


class ListError(JobError):
    """A value list cannot be read or applied; the message is the rule run's error."""


class ListNotFound(ListError):
    """An exception entry names a list that does not exist (Kibana's words)."""

    def __init__(self, list_id: str) -> None:
        self.list_id = list_id
        super().__init__(f'Cannot find list: "{list_id}"')


class ListLookupFailed(ListError):
    """The per-page lookup of event values in a large list failed (Kibana's words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Failed to query large value based lists index. Reason: {reason}")
