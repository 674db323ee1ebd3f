"""The rule-type contract: what a rule type provides, and what it gets from the pass.

A **rule type** (``job/ruletypes/<type>/``) owns its query language, its search, and how its hits become
alerts. It provides (:class:`RuleType`):

* ``compile``: its query validated and translated, with the field types of the rule's indices when known
  (raises :class:`job.errors.QueryError` with a position); ``check``: its other findings for ``validate``;
  ``describe``: what ``translate`` prints;
* ``plan``: its search of one window (:class:`SearchPlan`);
* ``execute``: the window searched (paged or aggregated), its would-be alerts (:class:`Candidate`, with their
  ids) handed to the run's writer, and how far the window was searched (:class:`Outcome`);
* the alert fields it adds, through the :class:`job.writing.writer.AlertMaker` its writer builds with;
* optionally ``probe`` and ``read_whole``: a first page read with other rules' in one ``_msearch``, and the
  would-be alerts of a window that page read whole (written with other small runs');
* optionally ``check_on_cluster`` (:class:`ClusterChecks`): what ``validate`` finds by asking a reachable
  cluster about a query only Elasticsearch can judge (ES|QL).

The **pass** (``job/run/``) owns the window, the execution record, the cap and the writing. A rule type gets
from it (:class:`PlanInputs`, :class:`RunTools`): the client, the retry policy, the settings, the clock, the
cap (:class:`RunPlan`), the writer (with its dedupe and dead letters), the stop flag and the deadline, and the
run's metrics.
A type imports the shared folders below it, never the pass and never another type.

A type may keep a small **state** from one run to the next: the JSON object its :class:`Outcome` returns as
``state`` is kept in the run's final record (at most ``job.execlog.execution.STATE_MAX_BYTES``), and the next
run gets it as ``RunPlan.state`` when the execution log says it can be trusted (the run that kept it was the
latest, ended without error, and no other run of the rule was in flight when it started); otherwise
``RunPlan.state`` is None and the type rebuilds what it needs (the first run, after a run that was killed or
failed, after runs that overlapped, in a backfill).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, Protocol, runtime_checkable

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.execlog.metrics import RunMetrics
from job.lists.plan import ExceptionPlan
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.rules.validation import Finding
from job.search.pager import PageStats
from job.search.probes import Probe
from job.window import Gap, Window, isoformat
from job.writing.grouped import GroupWriter, Recount, group_writes
from job.writing.run_writer import AlertWriter
from job.writing.sink import ELASTICSEARCH, Sink
from job.writing.suppressed import SuppressionStore
from job.writing.suppressing import SuppressingWriter
from job.writing.writer import Candidate, RunWrites

FieldTypes = Mapping[str, str]
Hit = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What one run of a rule covers: the window, the gap it leaves, and how many alerts it may write."""

    window: Window
    gap: Gap | None
    cap: int
    warnings: tuple[str, ...]  # the cap and gap warnings, in Kibana's order
    state: dict[str, Any] | None = None  # what the rule type's previous run kept, when it can be trusted


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The search of one run. ``query`` is None when no index matches the rule's patterns (nothing to search);
    ``exceptions`` holds the exception items (of large value lists) applied to each page instead. A rule type
    may subclass it to carry more (the stages of a sequence, say)."""

    query: dict[str, Any] | None
    sort: list[dict[str, Any]]
    warnings: tuple[str, ...]
    exceptions_expired: tuple[str, ...]
    exceptions: ExceptionPlan = ExceptionPlan()


@dataclass
class Outcome:
    """How far the run searched everything (the next run continues from there) and what it warns about."""

    searched_to: datetime
    warnings: list[str] = field(default_factory=list)
    state: dict[str, Any] | None = None  # what the type keeps for its next run (None: nothing)


@dataclass(frozen=True)
class PlanInputs:
    """What planning a search gets from the pass: the ``_field_caps`` of the rule's index patterns, the
    alerts alias, the rule's query compiled by its type (once per pass) and its exception items planned
    (value lists read). The last two are asked only when some index matches."""

    caps: Mapping[str, Any]
    alerts_alias: str
    compiled: Callable[[], Any]
    exceptions: Callable[[], ExceptionPlan]


@dataclass
class RunTools:
    """What executing one window gets from the pass."""

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    clock: Callable[[], datetime]
    execution_uuid: str
    metrics: RunMetrics
    # Asked after each page: a stop was requested (SIGTERM, SIGINT), or the run's lease is running out.
    should_stop: Callable[[], bool] = lambda: False
    # Drops the hits of a page that exception items applied per page (large value lists) exclude.
    page_filter: Callable[[list[Hit]], list[Hit]] = lambda hits: hits
    # Make the alerts searchable at the end (a pass of many rules refreshes once, at its end, instead).
    refresh: bool = True
    # Where alerts, dead letters and suppressed alerts' updates go: Elasticsearch, or preview's collector.
    sink: Sink = ELASTICSEARCH
    # When the run must stop searching (the moment ``should_stop`` turns true for its lease): a search that
    # cannot be split into pages (ES|QL) is given no more time than this. None: no limit but the client's.
    deadline: datetime | None = None

    def writer(self, writes: RunWrites, cap: int) -> AlertWriter:
        """The run's writer: ``writes`` says whose alerts and how they are built; ``cap`` how many units."""
        return AlertWriter(self.es, self.policy, self.settings, writes, cap, self.clock, self.sink)

    def refresh_alerts(self) -> None:
        """Make the alerts written so far searchable before reading them back (through the sink: a preview
        writes none and may not refresh)."""
        self.sink.refresh(self.es, self.policy, self.settings.alerts_index)

    def suppression_store(self, rule_id: str) -> SuppressionStore:
        """The reads and conditional updates of the rule's suppressed alerts (through the run's sink)."""
        return self.sink.suppression_store(
            self.es, self.policy, self.settings.alerts_index, rule_id, self.settings.space_id
        )

    def group_writer(
        self, rule: Rule, suppression: AlertSuppression, store: SuppressionStore, recount: Recount
    ) -> GroupWriter:
        """The writer of a suppressed run's groups (``recount``: the type counts one group again)."""
        writes = group_writes(rule, self.settings.space_id, self.execution_uuid)
        return GroupWriter(
            self.es, self.policy, self.settings, self.clock, rule, suppression, store, writes, recount, self.sink
        )


def count_search(metrics: RunMetrics, stats: PageStats) -> None:
    """The search counts of a run that paged its window."""
    metrics.pages = stats.pages
    metrics.hits = stats.hits
    metrics.pit_reopened = stats.pit_reopened
    metrics.total_search_duration_ms = round(stats.search_ms)


def count_groups(metrics: RunMetrics, writer: GroupWriter, *, pages: int, search_ms: float) -> None:
    """Add a suppressed run's counts (its groups written, and its grouping search's ``pages`` and time)."""
    writes = writer.writes
    metrics.pages += pages
    metrics.hits += writer.hits
    metrics.total_search_duration_ms += round(search_ms + writer.store.search_ms)
    metrics.total_indexing_duration_ms += round(writes.stats.indexing_ms + writer.store.indexing_ms)
    metrics.alerts_created += writes.stats.created
    metrics.alerts_updated = writer.updated
    metrics.duplicates_skipped += writes.duplicates + writes.stats.duplicates
    metrics.errors += writes.stats.errors
    metrics.dead_lettered += writes.dead_lettered
    metrics.suppression_groups = writer.groups
    metrics.suppressed_docs = writer.suppressed_docs


def count_writes(metrics: RunMetrics, writes: RunWrites, suppressing: SuppressingWriter | None = None) -> None:
    """The write counts of a run (its search counts are the type's), with what ``suppressing`` did when the
    run's would-be alerts carried their groups (its reads of the alerts count as searching)."""
    metrics.total_indexing_duration_ms = round(writes.stats.indexing_ms)
    metrics.alerts_created = writes.stats.created
    metrics.duplicates_skipped = writes.duplicates + writes.stats.duplicates
    metrics.errors = writes.stats.errors
    metrics.dead_lettered = writes.dead_lettered
    metrics.dead_letters_skipped = writes.dead_letters_skipped
    if suppressing is not None:
        metrics.alerts_updated = suppressing.updated
        metrics.suppression_groups = suppressing.groups
        metrics.suppressed_docs = suppressing.suppressed
        metrics.total_search_duration_ms += round(suppressing.store.search_ms)
        metrics.total_indexing_duration_ms += round(suppressing.store.indexing_ms)


def stopped_message(resume: datetime) -> str:
    return (
        "The run stopped searching before its lease (DETECTION_RUN_TIMEOUT) ran out; "
        f"the next run continues from {isoformat(resume)}"
    )


@dataclass(frozen=True)
class Cluster:
    """A reachable cluster, for ``validate``: its client, the retry policy, and how long one check may take."""

    es: Elasticsearch
    policy: RetryPolicy
    timeout: float


@runtime_checkable
class ClusterChecks(Protocol):
    """Optional, for a type whose query only Elasticsearch can judge (ES|QL): what ``validate`` reports when a
    cluster is reachable, from asking it (a syntax or unknown-field error, at the query's line)."""

    def check_on_cluster(self, rule: Rule, cluster: Cluster) -> list[Finding]: ...


class RuleType(Protocol):
    """One rule type: its language, its search, and how its hits become alerts."""

    name: str

    def compile_key(self, rule: Rule) -> Hashable:
        """What ``compile`` depends on besides the field types: rules with equal keys compile once per pass."""
        ...

    def compile(self, rule: Rule, field_types: FieldTypes | None) -> Any:
        """The rule's query validated and translated (``field_types``: of the rule's indices, when known);
        :class:`job.errors.QueryError`, with a position when known, if it does not."""
        ...

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        """What ``validate`` reports about the rule beyond the checks every type shares (``compiled`` raises
        the query's error)."""
        ...

    def describe(self, rule: Rule, compiled: Any) -> str:
        """What ``translate`` prints for the rule: the request(s) it sends, and what runs on the client."""
        ...

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        """The search of one window (pure)."""
        ...

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        """Search ``run.window`` and hand its would-be alerts to ``tools.writer(...)`` up to ``run.cap``; fill
        ``tools.metrics`` as it goes (also when an error ends it). Raises what ends the run."""
        ...

    def probe(self, rule: Rule, search: SearchPlan) -> Probe | None:
        """The first page of the window as one search of a shared ``_msearch``, or None (not probed)."""
        ...

    def read_whole(
        self, rule: Rule, search: SearchPlan, hits: Sequence[Hit], tools: RunTools
    ) -> tuple[RunWrites, list[Candidate]]:
        """The writing and the would-be alerts of a window its probe read whole (``hits``, in the probe's order;
        ``search``: the plan the probe came from, with whatever the type keeps there, such as a condition to
        evaluate on the client); apply ``tools.page_filter`` to the hits that can become alerts."""
        ...


class NotProbed:
    """``probe`` and ``read_whole`` of a rule type whose runs never take part in the pass's shared ``_msearch``
    (it searches aggregations, say, where the probe reads a first page of hits): ``probe`` is None, so the pass
    executes every run and ``read_whole`` is never called."""

    name: str

    def probe(self, rule: Rule, search: SearchPlan) -> Probe | None:
        return None

    def read_whole(self, rule: Rule, search: SearchPlan, hits: Sequence[Hit], tools: RunTools) -> NoReturn:
        raise NotImplementedError(f"{self.name} rules are never probed")
