"""Which rules a pass runs: the rules of this shard that are due, all of them (``--all``), or the named ones.

Pure: the rules, their execution histories, the clock and the shard are arguments. A rule is *due*
when its last completed execution's logical start (``execution.scheduled_at``: the ``now`` that
run planned its window with) plus its interval has come, up to a tenth of the interval (at most a
minute) early, so a CronJob pass that starts a little late or early still serves each rule on its
own cadence. The minute cap keeps the tolerance below the spacing of the passes: passes every 5
minutes run a 60m rule every 60 minutes, not every 55. A rule that never ran is due.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from job.config.shards import Shard, in_shard, stable_hash
from job.execlog.last_runs import LastRuns
from job.rules.model import Rule
from job.window import parse_timestamp

# "due": this shard's rules that are due; "all": this shard's rules, due or not; "named": exactly the
# rules given (``run --rule``), whatever their shard or schedule.
Mode = Literal["due", "all", "named"]
DUE_EARLY_FRACTION = 10  # a rule is due up to interval / 10 before its nominal time ...
MAX_DUE_EARLY = timedelta(minutes=1)  # ... and at most a minute
# ``schedule`` starts each rule up to interval / 10, and at most 10 seconds, after its own start.
JITTER_FRACTION = 10
MAX_JITTER = timedelta(seconds=10)


def cadence(rule: Rule, override: timedelta | None = None) -> timedelta:
    """How often the rule runs: its ``interval``, or ``DETECTION_SCHEDULE_INTERVAL`` when that is set."""
    return override if override is not None else rule.interval_delta


def last_start(history: LastRuns | None) -> datetime | None:
    """The logical start of the rule's last execution that ended by itself (records without one: its
    ``start``). A run found interrupted does not count: its work was not done, so the rule is due."""
    record: Mapping[str, Any] = (history.finished if history is not None else None) or {}
    execution = record.get("execution")
    if not isinstance(execution, Mapping):
        return None
    for key in ("scheduled_at", "start"):
        value = execution.get(key)
        if isinstance(value, str):
            try:
                return parse_timestamp(value)
            except ValueError:
                continue
    return None


def next_due(last: datetime | None, interval: timedelta) -> datetime | None:
    """When the rule is next due (None: it never ran, so it is due at once)."""
    return None if last is None else last + interval


def is_due(last: datetime | None, interval: timedelta, now: datetime) -> bool:
    due = next_due(last, interval)
    return due is None or due - min(interval / DUE_EARLY_FRACTION, MAX_DUE_EARLY) <= now


def jitter(rule_id: str, interval: timedelta) -> timedelta:
    """A delay of the rule's first scheduled run, stable per rule_id, so many rules do not start at once."""
    bound = min(interval / JITTER_FRACTION, MAX_JITTER)
    fraction = stable_hash(rule_id, salt="jitter:") / 2**64
    return timedelta(milliseconds=int(bound.total_seconds() * 1000 * fraction))


@dataclass(frozen=True, slots=True)
class Choice:
    run: tuple[Rule, ...]  # to run now
    not_due: tuple[tuple[Rule, datetime], ...]  # this shard's rules that are not due, with their next due time
    other_shards: tuple[Rule, ...]  # rules another shard runs


def choose(
    rules: Sequence[Rule],
    histories: Mapping[str, LastRuns],
    now: datetime,
    *,
    shard: Shard | None = None,
    mode: Mode = "due",
    override: timedelta | None = None,
) -> Choice:
    """Split ``rules`` into the ones to run now, the ones not due yet and the other shards' ones."""
    if mode == "named":
        return Choice(tuple(rules), (), ())
    mine = [rule for rule in rules if in_shard(rule.rule_id, shard)]
    others = tuple(rule for rule in rules if not in_shard(rule.rule_id, shard))
    if mode == "all":
        return Choice(tuple(mine), (), others)
    run: list[Rule] = []
    waiting: list[tuple[Rule, datetime]] = []
    for rule in mine:
        interval = cadence(rule, override)
        last = last_start(histories.get(rule.rule_id))
        due = next_due(last, interval)
        if due is None or is_due(last, interval, now):
            run.append(rule)
        else:
            waiting.append((rule, due))
    return Choice(tuple(run), tuple(waiting), others)
