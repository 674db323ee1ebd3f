"""Plan one rule run: its window and its cap (pure: the clock and the execution-log state are arguments).

:func:`plan_run` needs only the execution log, so the run's record can be written before anything is
searched; the rule's type plans the search of that window (``RuleType.plan``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from job.execlog.history import RuleHistory
from job.rules.caps import effective_max_signals
from job.rules.model import Rule
from job.ruletypes.contract import RunPlan
from job.window import Window, gap_message, plan_window


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
    state = history.state.value if history.state is not None and history.state.type == rule.type else None
    return RunPlan(window=window, gap=gap, cap=cap, warnings=tuple(warnings), state=state)


def plan_fixed(rule: Rule, window: Window, *, alerts_max: int) -> RunPlan:
    """A run over a given window (one window of a backfill): the rule's cap, and no catch-up or gap, since the
    execution log does not move it; no state (the type rebuilds what it needs for a window out of turn)."""
    cap, cap_warning = effective_max_signals(rule, alerts_max)
    return RunPlan(window=window, gap=None, cap=cap, warnings=(cap_warning,) if cap_warning else ())
