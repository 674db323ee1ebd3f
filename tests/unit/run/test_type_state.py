"""The state a rule type keeps from one run to the next (pure): kept in the final record (bounded), read back
only when the execution log says the latest run saw everything the runs before it wrote, handed to the next
run of the same type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.execlog.execution import STATE_MAX_BYTES, Execution, TypeState, state_too_large
from job.execlog.history import RuleHistory, _trusted_state, plan_history
from job.run.plan import plan_run
from tests.alert_samples import seed_rule

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
STATE = {"type": "threshold", "value": {"signal_history": {"k": 1}}}


def _at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _latest(uuid: str, start: float, status: str = "succeeded", state: Any = STATE) -> list[dict[str, Any]]:
    source: dict[str, Any] = {"execution": {"uuid": uuid, "start": _at(start), "status": status}}
    if state is not None:
        source["type_state"] = state
    return [source]


def _ended(*records: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"execution": {"uuid": uuid, "end": _at(end)}} for uuid, end in records]


@pytest.mark.parametrize(
    ("latest", "last_ended", "trusted"),
    [
        # runs one after the other: the latest started after the one before it ended
        (_latest("b", -5), _ended(("b", -4), ("a", -6)), True),
        (_latest("b", -5), _ended(("b", -4)), True),  # the rule's only run
        (_latest("b", -5, "partial failure"), _ended(("b", -4), ("a", -9)), True),  # warnings: still complete
        # the run before it was still running when it started (ended after): it missed that run's writes
        (_latest("b", -5), _ended(("b", -4), ("a", -4.5)), False),
        # another run ended after the latest one did (it started before and outlasted it), or was marked
        # interrupted after it (the mark is its end)
        (_latest("b", -5), _ended(("a", -1), ("b", -4)), False),
        # the latest run failed, or is still running, or kept nothing
        (_latest("b", -5, "failed"), _ended(("b", -4), ("a", -9)), False),
        (_latest("b", -5, "running"), _ended(("a", -9)), False),
        (_latest("b", -5, state=None), _ended(("b", -4), ("a", -9)), False),
        # a record not of this shape (hand-edited, or another version's)
        (_latest("b", -5, state={"type": "threshold"}), _ended(("b", -4)), False),
        (_latest("b", -5, state=["x"]), _ended(("b", -4)), False),
        ([{"execution": {"uuid": "b", "status": "succeeded"}}], _ended(("b", -4)), False),  # no start
        ([], [], False),
    ],
)
def test_the_latest_state_is_trusted_only_when_no_other_run_overlapped_it(
    latest: list[dict[str, Any]], last_ended: list[dict[str, Any]], trusted: bool
) -> None:
    expected = TypeState("threshold", {"signal_history": {"k": 1}}) if trusted else None
    assert _trusted_state(latest, last_ended) == expected


def _hits(sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"hits": {"hits": [{"_source": source} for source in sources]}}


def test_a_running_record_makes_the_state_untrusted() -> None:
    """A run in flight (or abandoned and not yet marked) may be writing: the next run rebuilds."""
    running = {"_id": "c", "_seq_no": 1, "_primary_term": 1, "_source": {"execution": {"uuid": "c"}}}
    bucket = {"latest": _hits(_latest("b", -5)), "running": {"records": {"hits": {"hits": [running]}}}}
    every = {"last_ended": _hits(_ended(("b", -4)))}
    assert plan_history(bucket, every).state is None
    del bucket["running"]
    assert plan_history(bucket, every).state == TypeState("threshold", STATE["value"])


@pytest.mark.parametrize(
    ("kept", "kind", "handed"),
    [
        (TypeState("query", {"x": 1}), "query", {"x": 1}),
        (TypeState("threshold", {"x": 1}), "query", None),  # a rule whose type changed reads no other type's state
        (None, "query", None),
    ],
)
def test_the_next_run_of_the_same_type_gets_the_state(
    kept: TypeState | None, kind: str, handed: dict[str, Any] | None
) -> None:
    rule = seed_rule()
    assert rule.type == kind
    plan = plan_run(rule, NOW, RuleHistory(state=kept), max_catchup=timedelta(hours=24), alerts_max=1000)
    assert plan.state == handed


def _execution() -> Execution:
    return Execution("r", "R", 1, "r.toml", "default", "u", NOW, end=NOW + timedelta(seconds=1))


def test_the_state_is_written_with_the_final_record_and_its_size_measured() -> None:
    execution = _execution()
    assert "type_state" not in execution.to_document()
    execution.keep_state("threshold", {"signal_history": {}})
    document = execution.to_document()
    assert document["type_state"] == {"type": "threshold", "value": {"signal_history": {}}}
    assert document["metrics"]["state_bytes"] == len(b'{"type":"threshold","value":{"signal_history":{}}}')
    assert execution.status == "succeeded"
    execution.keep_state("threshold", None)  # nothing to keep
    assert "type_state" not in execution.to_document()


def test_a_state_too_large_is_not_kept_and_says_so() -> None:
    execution = _execution()
    execution.keep_state("threshold", {"blob": "x" * STATE_MAX_BYTES})
    size = STATE_MAX_BYTES + len(b'{"type":"threshold","value":{"blob":""}}')
    assert execution.type_state is None and "type_state" not in execution.to_document()
    assert execution.warnings == [state_too_large(size)]
    assert execution.status == "partial failure" and execution.metrics.state_bytes == size
