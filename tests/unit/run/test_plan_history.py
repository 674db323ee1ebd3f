"""Where a run's window starts, given the execution log; when a running record is abandoned (pure)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from job.execlog.execution import STATUS_ORDER, Execution
from job.execlog.history import RuleHistory
from job.execlog.lease import Runner, abandoned, finished, pid_alive, started
from job.run.plan import plan_run
from job.window import Gap, Window
from tests.alert_samples import seed_rule

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
PLAIN_START = NOW - timedelta(minutes=15)  # the seed rule: from now-15m every 10m (5 minutes look-back)
DAY = timedelta(hours=24)


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("history", "start", "gap"),
    [
        # never run: the rule's own window
        (RuleHistory(), PLAIN_START, None),
        # on schedule
        (RuleHistory(searched_to=_at(-10), completed_from=_at(-200)), PLAIN_START, None),
        # the first run was killed: its window is searched now, no gap
        (RuleHistory(unfinished_from=_at(-25)), _at(-25), None),
        # several first runs killed: from the oldest
        (RuleHistory(unfinished_from=_at(-45)), _at(-45), None),
        # a killed run after completed ones changes nothing: the last completed searched_to decides
        (RuleHistory(searched_to=_at(-20), completed_from=_at(-300), unfinished_from=_at(-15)), _at(-25), None),
        # two first runs that did not see each other: one completed, the other (earlier) did not
        (RuleHistory(searched_to=_at(-10), completed_from=_at(-24), unfinished_from=_at(-25)), _at(-25), None),
        # a completed run that covered the earlier unfinished one (searched or reported it)
        (RuleHistory(searched_to=_at(-10), completed_from=_at(-25), unfinished_from=_at(-25)), PLAIN_START, None),
        # an unfinished range older than the catch-up limit: the rest is a gap
        (
            RuleHistory(unfinished_from=_at(-60 * 30)),
            PLAIN_START - DAY,
            Gap(_at(-60 * 30), PLAIN_START - DAY),
        ),
        # down for 30 hours after completed runs
        (
            RuleHistory(searched_to=_at(-60 * 30), completed_from=_at(-60 * 40)),
            PLAIN_START - DAY,
            Gap(_at(-60 * 30), PLAIN_START - DAY),
        ),
    ],
)
def test_window_start_from_the_execution_log(history: RuleHistory, start: datetime, gap: Gap | None) -> None:
    plan = plan_run(seed_rule(), NOW, history, max_catchup=DAY, alerts_max=1000)
    assert plan.window == Window(start, NOW)
    assert plan.gap == gap


def test_a_running_record_never_counts_as_searched() -> None:
    # A live concurrent first run that started earlier: this run reaches back to its start (overlap),
    # instead of leaving that range to a run that may still die.
    concurrent = RuleHistory(unfinished_from=_at(-16))
    assert plan_run(seed_rule(), NOW, concurrent, max_catchup=DAY, alerts_max=1000).window.start == _at(-16)


ME = Runner("this-host", 4242)
LATER = NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("lease_expires", "runner", "expected"),
    [
        (NOW, Runner("other-host", 1), True),  # lease ran out
        (None, Runner("other-host", 1), True),  # no lease: cannot be trusted to finish
        (LATER, Runner("other-host", 1), False),  # another host, lease still running
        (LATER, None, False),
        (LATER, Runner("this-host", 4242), True),  # this process, but not one of its live runs
    ],
)
def test_abandoned(lease_expires: datetime | None, runner: Runner | None, expected: bool) -> None:
    assert abandoned(execution_uuid="u-1", lease_expires=lease_expires, runner=runner, me=ME, now=NOW) is expected


def test_a_live_run_of_this_process_is_not_abandoned() -> None:
    started("u-live")
    try:
        assert not abandoned(execution_uuid="u-live", lease_expires=LATER, runner=ME, me=ME, now=NOW)
    finally:
        finished("u-live")
    assert abandoned(execution_uuid="u-live", lease_expires=LATER, runner=ME, me=ME, now=NOW)


def test_a_run_of_a_gone_process_on_this_host_is_abandoned() -> None:
    me = Runner("this-host", os.getpid())
    parent = Runner("this-host", os.getppid())
    assert pid_alive(os.getppid())
    assert not abandoned(execution_uuid="u-2", lease_expires=LATER, runner=parent, me=me, now=NOW)
    gone = Runner("this-host", 2**22 + 12345)  # above any pid the kernel hands out by default
    assert not pid_alive(gone.pid)
    assert abandoned(execution_uuid="u-2", lease_expires=LATER, runner=gone, me=me, now=NOW)


def _execution(**fields: object) -> Execution:
    values: dict[str, object] = {
        "rule_id": "r",
        "rule_name": "R",
        "rule_version": 1,
        "rule_source": "r.toml",
        "space_id": "default",
        "uuid": "u",
        "start": NOW,
    } | fields
    return Execution(**values)  # type: ignore[arg-type]


def test_the_write_ahead_record_is_running_with_its_window_lease_and_process() -> None:
    execution = _execution(
        window=Window(PLAIN_START, NOW), lease_expires=NOW + timedelta(minutes=9), runner=Runner("h", 7)
    )
    document = execution.to_document()
    assert document["execution"]["status"] == "running"
    assert document["execution"]["status_order"] == STATUS_ORDER["running"] == 15
    assert document["execution"]["end"] is None
    assert document["execution"]["lease_expires"] == "2026-03-15T10:09:00.000Z"
    assert (document["execution"]["host"], document["execution"]["pid"]) == ("h", 7)
    assert document["window"] == {
        "from": "2026-03-15T09:45:00.000Z",
        "to": "2026-03-15T10:00:00.000Z",
        "searched_to": None,
        "covered_from": None,
    }


@pytest.mark.parametrize(
    ("gap", "covered_from"),
    [(None, "2026-03-15T09:45:00.000Z"), (Gap(NOW - timedelta(hours=30), PLAIN_START), "2026-03-14T04:00:00.000Z")],
)
def test_a_completed_record_vouches_from_its_window_start_or_its_gap(gap: Gap | None, covered_from: str) -> None:
    execution = _execution(window=Window(PLAIN_START, NOW), gap=gap, searched_to=NOW, end=NOW)
    assert execution.to_document()["window"]["covered_from"] == covered_from
    assert execution.status == "succeeded"
