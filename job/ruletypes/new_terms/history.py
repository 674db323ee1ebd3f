"""The history window of a new-terms rule (Kibana 8.19's ``new_terms/utils.ts``): ``history_window_start`` as
@elastic/datemath reads it, Kibana's check that it starts before ``from``, and the window a run searches.

Kibana checks the start at save time and again at every run, both against the real clock (its messages: *Failed
to parse 'historyWindowStart'*, and *History window size is smaller than rule interval + additional lookback,
'historyWindowStart' must be earlier than 'from'*), and resolves it against the end of the run's window
(``forceNow = tuple.to``) for the searches.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from job.rules.aggregation_params import ParameterError, Problem
from job.window import Window, resolve_date_math

HISTORY_WINDOW_TOO_SMALL: Final = (
    "History window size is smaller than rule interval + additional lookback, "
    "'historyWindowStart' must be earlier than 'from'"
)
_PARSE_FAILED = "Failed to parse '{name}'"


def parse_date_math(expression: str, now: datetime, name: str) -> datetime:
    """``expression`` resolved against ``now``; :class:`ParameterError` ("Failed to parse '<name>'") when it is
    not date math (``now-14d``, ``now/d``, an ISO date, ``<date>||-1d``)."""
    try:
        return resolve_date_math(expression, now)
    except ValueError:
        raise ParameterError(_PARSE_FAILED.format(name=name)) from None


def history_window_problem(history_window_start: str, from_: str, now: datetime) -> str | None:
    """Kibana's ``validateHistoryWindowStart``: both resolved against ``now``, the history window must start
    strictly before ``from``. The message, or None."""
    try:
        start = parse_date_math(history_window_start, now, "historyWindowStart")
        rule_from = parse_date_math(from_, now, "from")
    except ParameterError as exc:
        return str(exc)
    return HISTORY_WINDOW_TOO_SMALL if start >= rule_from else None


def history_problems(history_window_start: str, from_: str, now: datetime) -> list[Problem]:
    """:func:`history_window_problem` as a problem of ``history_window_start`` (none for an empty one, which
    :func:`job.rules.aggregation_params.new_terms_problems` reports)."""
    problem = history_window_problem(history_window_start, from_, now) if history_window_start else None
    return [(("history_window_start",), problem)] if problem else []


def history_window(history_window_start: str, window: Window, own_start: datetime) -> Window:
    """``[history start, window end]``. The start is ``history_window_start`` resolved against the window's end
    (Kibana's ``forceNow = tuple.to``), moved back by as much as this run's window starts before the rule's own
    ``from`` (``own_start``; a run catching up after downtime), so that the history before the window keeps its
    length. :class:`ParameterError` with Kibana's message when it does not start before the window."""
    start = parse_date_math(history_window_start, window.end, "historyWindowStart")
    start -= max(own_start - window.start, timedelta(0))
    if start >= window.start:
        raise ParameterError(HISTORY_WINDOW_TOO_SMALL)
    return Window(start, window.end)
