"""Execute one planned run of an ES|QL rule: Kibana's paging loop (``esql.ts``), through the shared writer.

ES|QL cannot page, so each page asks the whole window again for ``cap + 1`` rows (one more than the alerts
the run may write tells whether more are left), leaving out the events already alerted on (``excluded``):

1. stop when more than 100,000 events are excluded (Kibana's warning);
2. send the query (``engine``), with the events excluded so far in the filter's ``must_not``;
3. a non-aggregating page's events are fetched by id and merged with their rows; every row becomes a
   would-be alert with Kibana's id (``alerts``), and those without an alert yet are written up to the cap;
4. the page's events join the excluded ones (all but the one behind the last row, whose other rows may be
   on the next page, and, unlike Kibana, those whose rows the cap cut: the next run, which searches the window
   again, alerts them);
5. stop at the cap (Kibana's max-signals warning), when the page held fewer rows than asked (nothing
   left), after an aggregating page (the next would hold the same rows), when a page excluded no new event
   (the next would be the same page), or when the run must stop (its lease, SIGTERM).

The excluded events are kept for the rule's next run in its execution record (``Outcome.state``, as
Kibana keeps them in its rule state), so an overlapping window does not ask for them again; without them
the ids make the writer drop the duplicates.

**Where the next run starts.** Rows come in the query's order, not by time, so a run that stops early
(the cap, the lease) cannot say how far it searched: a non-aggregating run then says it searched nothing
(``searched_to`` is the window's start), the next run searches the window again, and its excluded events
keep it from asking for the ones alerted on. An aggregating run's alerts change id every window, so
searching a window twice would alert twice: it always counts its window as searched, and rows past the cap
are left out (Kibana's warning says so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from job.execlog.execution import STATE_MAX_BYTES
from job.rules.model import Rule
from job.ruletypes.contract import Outcome, RunPlan, RunTools, count_writes, stopped_message
from job.ruletypes.esql import errors, excluded
from job.ruletypes.esql.alerts import WouldBeAlert, rows_to_alerts, rule_key
from job.ruletypes.esql.compiled import EsqlQuery, EsqlSearch
from job.ruletypes.esql.engine import Engine
from job.ruletypes.esql.maker import esql_writes
from job.ruletypes.esql.request import EsqlRequest, build_request, page_size
from job.ruletypes.esql.response import MAX_ROWS, EsqlResult, missing_id_warning, partial_results_warning
from job.ruletypes.esql.sources import FetchedEvent, row_ids
from job.text.jsoncodec import document_bytes
from job.writing.writer import Candidate

# The largest state a run keeps: within the execution record's limit, with room for the other keys.
STATE_BYTES = STATE_MAX_BYTES * 9 // 10
NO_PROGRESS_WARNING = (
    "The ES|QL query returned a full page whose events were all excluded already; "
    "the rows past it were not read this run"
)


@dataclass
class Pages:
    """One run's pages: the query, its window and exceptions, the events excluded so far."""

    search: EsqlSearch
    compiled: EsqlQuery
    size: int
    kept: excluded.Excluded
    engine: Engine
    pages: int = 0
    rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def request(self) -> EsqlRequest:
        search = self.search
        assert search.window is not None and search.timestamps is not None
        return build_request(
            self.compiled.text,
            search.window,
            search.timestamps,
            search.exception_clause,
            self.size,
            excluded.ids_by_index(self.kept),
            aggregating=self.compiled.aggregating,
        )

    def next(self) -> tuple[EsqlResult, dict[str, list[FetchedEvent]]]:
        """The next page's answer, and its events (none for an aggregating query)."""
        result = self.engine.query(self.request())
        self.pages += 1
        self.rows += len(result.rows)
        if result.is_partial or result.shard_failures:
            self.warn(partial_results_warning(result.shard_failures))
        if self.compiled.aggregating:
            return result, {}
        return result, self.engine.fetch(self.compiled.indices, row_ids(result.rows))

    def exclude(
        self, result: EsqlResult, events: dict[str, list[FetchedEvent]], cut: Iterable[WouldBeAlert] = ()
    ) -> bool:
        """Add the page's events to the excluded ones, but those of rows ``cut`` by the cap (unlike Kibana, which
        excludes them too: the next run, which searches the window again, alerts them); whether any was new,
        i.e. whether a next page can differ."""
        before = excluded.count(self.kept)
        assert self.search.timestamps is not None
        unhandled = {(alert.index, alert.event_id) for alert in cut}
        excluded.update_excluded(
            self.kept,
            [event for found in events.values() for event in found if (event.index, event.id) not in unhandled],
            result.rows,
            aggregating=self.compiled.aggregating,
            exhausted=self.exhausted(result),
            timestamp_field=self.search.timestamps.primary,
        )
        return excluded.count(self.kept) > before

    def exhausted(self, result: EsqlResult) -> bool:
        return len(result.rows) < self.size

    def state(self, run: RunPlan) -> dict[str, Any]:
        """What the run keeps for the next one: its excluded events (and the query, with MV_EXPAND), the newest
        of them when all would make the state larger than the execution record keeps (the others cost the next
        run only a second look: their alerts exist)."""
        state = excluded.final_state(
            run.state, self.kept, query=self.compiled.text, has_mv_expand=bool(self.compiled.mv_expand)
        )
        size = len(document_bytes(state))
        if size <= STATE_BYTES:
            return state
        kept = excluded.newest(self.kept, excluded.count(self.kept) * STATE_BYTES // size)
        return excluded.final_state(
            run.state, kept, query=self.compiled.text, has_mv_expand=bool(self.compiled.mv_expand)
        )

    def warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)


def first_pages(rule_query: EsqlQuery, run: RunPlan, search: EsqlSearch, engine: Engine) -> Pages:
    """The paging of a run, with the excluded events the previous run left (``run.state``)."""
    assert search.window is not None
    kept = excluded.initial_excluded(
        run.state,
        query=rule_query.text,
        aggregating=rule_query.aggregating,
        has_mv_expand=bool(rule_query.mv_expand),
        window_start=search.window.start,
    )
    # An answer holds at most 10,000 rows (esql.query.result_truncation_max_size's default): a fuller page than
    # that would be cut short without a word, so a page asks for at most that many (a full page: ask again).
    return Pages(search, rule_query, min(page_size(run.cap), MAX_ROWS), kept, engine)


def engine_for(tools: RunTools) -> Engine:
    """The run's engine; without a deadline from the pass (a caller that sets none), the lease's length from now
    is the deadline, so no query waits for ever."""
    deadline = tools.deadline or tools.clock() + tools.settings.run_timeout
    return Engine(tools.es, tools.policy, tools.clock, deadline, tools.should_stop, tools.settings.es_request_timeout)


def once_each(alerts: Iterable[WouldBeAlert], offered: set[str]) -> tuple[list[Candidate], int]:
    """The candidates of a page not offered earlier in this run (its writes may not be searchable yet), and
    how many were."""
    fresh = [Candidate(alert.id, alert) for alert in alerts]
    new = [candidate for candidate in fresh if candidate.doc_id not in offered]
    return new, len(fresh) - len(new)


def execute(rule: Rule, run: RunPlan, search: EsqlSearch, tools: RunTools) -> Outcome:
    """Search ``run.window`` and write its alerts (module docstring); ``tools.metrics`` is filled as it goes,
    also when an error ends the run."""
    compiled = search.compiled
    if search.query is None or compiled is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=run.window.end)
    settings = tools.settings
    pages = first_pages(compiled, run, search, engine_for(tools))
    writes = esql_writes(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(writes, run.cap)
    outcome = Outcome(searched_to=run.window.end)
    early = run.window.start if not compiled.aggregating else run.window.end
    key = rule_key(settings.space_id, rule.rule_id)
    offered: set[str] = set()
    try:
        try:
            while True:
                if excluded.over_limit(pages.kept):
                    pages.warn(excluded.EXCLUDED_LIMIT_WARNING)
                    break
                result, events = pages.next()
                alerts = rows_to_alerts(
                    result, events, query=compiled.text, aggregating=compiled.aggregating, window=run.window, key=key
                )
                candidates, repeated = once_each(alerts, offered)
                writes.duplicates += repeated
                new = writer.new(candidates)
                left = writer.offer(new)
                offered.update(candidate.doc_id for candidate in new[: len(new) - len(left)])
                grew = pages.exclude(result, events, [candidate.item for candidate in left])
                if left:
                    pages.warn(errors.MAX_SIGNALS_WARNING)
                    outcome.searched_to = early
                    break
                if pages.exhausted(result) or compiled.aggregating:
                    break
                if not grew:  # the next page would be this one again: its rows have no events to exclude
                    pages.warn(missing_id_warning(result) or NO_PROGRESS_WARNING)
                    break
                if tools.should_stop():
                    outcome.searched_to = early
                    pages.warn(stopped_message(early))
                    break
        finally:
            writer.settle_all()
        if tools.refresh:
            writer.refresh()
    finally:
        metrics = tools.metrics
        metrics.pages = pages.pages
        metrics.hits = pages.rows
        metrics.total_search_duration_ms = round(pages.engine.search_ms)
        count_writes(metrics, writes)
    outcome.warnings += pages.warnings + writes.warnings(settings.dead_letter_index)
    outcome.state = pages.state(run)
    return outcome
