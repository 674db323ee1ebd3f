"""Plan one rule run: its window, its cap, and its search (pure: the clock, the execution-log state and
the field capabilities are arguments; nothing here talks to Elasticsearch).

:func:`plan_run` needs only the execution log, so the run's record can be written before anything
is searched; :func:`plan_search` needs the field capabilities of the rule's indices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from job.execlog.history import RuleHistory
from job.lists.plan import ExceptionPlan
from job.rules.caps import effective_max_signals
from job.rules.model import Rule
from job.search.clauses import build_query, build_sort, own_alerts_clause, timestamp_fields
from job.window import Gap, Window, gap_message, plan_window


def no_index_message(patterns: Sequence[str]) -> str:
    listed = ",".join(f'"{p}"' for p in patterns)
    return (
        'This rule is attempting to query data from Elasticsearch indices listed in the "Index patterns" '
        f"section of the rule definition, however no index matching: [{listed}] was found. This warning will "
        "continue to appear until a matching index is created or this rule is disabled."
    )


def missing_timestamp_message(field_name: str, indices: Sequence[str], override: bool) -> str:
    what = f'timestamp override field "{field_name}"' if override else f'timestamp field "{field_name}"'
    return f"The following indices are missing the {what}: {json.dumps(sorted(indices))}"


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What one run of a rule covers: the window, the gap it leaves, and how many alerts it may write."""

    window: Window
    gap: Gap | None
    cap: int
    warnings: tuple[str, ...]  # the cap and gap warnings, in Kibana's order


def plan_run(rule: Rule, now: datetime, history: RuleHistory, *, max_catchup: timedelta, alerts_max: int) -> RunPlan:
    """The window and cap of a run started at ``now``, given what the execution log says about the rule.

    The window starts where the last completed run stopped (minus the look-back), or earlier where a
    run that never completed left a range no completed run covered (:attr:`RuleHistory.uncovered_from`);
    a ``running`` record is never taken as searched, so concurrent runs can overlap but never shrink
    each other's windows.
    """
    cap, cap_warning = effective_max_signals(rule, alerts_max)
    window, gap = plan_window(rule, now, history.searched_to, max_catchup, history.uncovered_from)
    warnings = [message for message in (cap_warning, gap_message(gap) if gap else None) if message]
    return RunPlan(window=window, gap=gap, cap=cap, warnings=tuple(warnings))


def plan_fixed(rule: Rule, window: Window, *, alerts_max: int) -> RunPlan:
    """A run over a given window (one window of a backfill): the rule's cap, and no catch-up or gap, since the
    execution log does not move it."""
    cap, cap_warning = effective_max_signals(rule, alerts_max)
    return RunPlan(window=window, gap=None, cap=cap, warnings=(cap_warning,) if cap_warning else ())


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The search of one run. ``query`` is None when no index matches the rule's patterns; ``exceptions``
    holds the exception items (of large value lists) that are applied to each page instead."""

    query: dict[str, Any] | None
    sort: list[dict[str, Any]]
    warnings: tuple[str, ...]
    exceptions_expired: tuple[str, ...]
    exceptions: ExceptionPlan = ExceptionPlan()


def _missing_timestamp_warning(rule: Rule, caps: Mapping[str, Any]) -> str | None:
    fields = timestamp_fields(rule)
    all_indices = caps.get("indices", [])
    entry = caps.get("fields", {}).get(fields.primary)
    if entry is None:
        missing = list(all_indices)
    else:
        missing = list(entry.get("unmapped", {}).get("indices", all_indices if set(entry) == {"unmapped"} else []))
    if missing and fields.fallback is None:
        return missing_timestamp_message(fields.primary, missing, rule.timestamp_override is not None)
    return None


def plan_search(
    rule: Rule,
    window: Window,
    caps: Mapping[str, Any],
    *,
    alerts_alias: str,
    rule_dsl: Callable[[], dict[str, Any]],
    exceptions: Callable[[], ExceptionPlan],
) -> SearchPlan:
    """The query and sort of the run, from the ``_field_caps`` response of the rule's index patterns.

    ``rule_dsl`` gives the rule's query translated (``job.backends``) and ``exceptions`` the plan of its
    exception items (``job.lists``); both are asked only when some index matches. Raises what they raise
    (a query that does not translate, a value list that cannot be found).
    """
    if not caps.get("indices"):
        return SearchPlan(query=None, sort=[], warnings=(no_index_message(rule.index),), exceptions_expired=())
    timestamp_warning = _missing_timestamp_warning(rule, caps)
    exception_plan = exceptions()
    own_alerts = own_alerts_clause(alerts_alias, rule.rule_id)
    query = build_query(rule, rule_dsl(), window, exception_plan.clause, [own_alerts])
    warnings = [*([timestamp_warning] if timestamp_warning else []), *exception_plan.warnings]
    return SearchPlan(
        query=query,
        sort=build_sort(rule),
        warnings=tuple(warnings),
        exceptions_expired=tuple(item.item_id for item in exception_plan.expired),
        exceptions=exception_plan,
    )
