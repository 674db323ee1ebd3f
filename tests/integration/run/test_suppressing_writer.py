"""The shared writer of would-be alerts that carry their groups (threshold, new terms), on the real node, batch
by batch: per rule execution a later batch folds into this run's alert and never into another run's; with a
duration, an alert changed between the read and the update (closed, acknowledged, or moved past the batch by
another run) is read again and never overwritten nor counted twice."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.suppression import Suppression, instance_hash
from job.client.retry import RetryPolicy
from job.config.settings import load_settings
from job.indices.install import install
from job.rules import load_rule
from job.rules.parts import SuppressionDuration
from job.window import Window
from job.writing.hit_alerts import HitAlert, for_hit_alerts
from job.writing.run_writer import AlertWriter
from job.writing.suppressed import SuppressionStore
from job.writing.suppressing import SuppressingWriter
from job.writing.writer import Candidate
from tests.integration.run.aggregation_rules import module_env, new_terms_rule
from tests.integration.run.conftest import JobEnv, iso

pytestmark = pytest.mark.integration
env = module_env  # the module's sandbox, shared by its tests

T = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WINDOW = Window(T - 6 * MINUTE, T)
HOUR = SuppressionDuration(value=1, unit="h")
RULE = "writer-rule"
Grouped = tuple[Candidate, Suppression]


@pytest.fixture(scope="module")
def make(env: JobEnv) -> Iterator[Callable[..., SuppressingWriter]]:
    """A suppressing writer of one run (``execution``) of a new-terms rule grouping by ``user.name``."""
    new_terms_rule(env, RULE, ["host.name"], "now-7d", tables='\n[rule.alert_suppression]\ngroup_by = ["user.name"]\n')
    settings = load_settings()
    policy = RetryPolicy.from_settings(settings)
    install(env.es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
    rule = load_rule(env.rules_dir / f"{RULE}.toml")
    ticks = (T + timedelta(milliseconds=i) for i in itertools.count())

    def writer(execution: str, duration: SuppressionDuration | None, cap: int = 100) -> SuppressingWriter:
        writes = for_hit_alerts(rule, "default", execution)
        alerts = AlertWriter(env.es, policy, settings, writes, cap, lambda: next(ticks))
        store = SuppressionStore(env.es, policy, settings.alerts_index, RULE, "default")
        return SuppressingWriter(alerts, store, WINDOW, duration, counted_before=True)

    yield writer


def would_be(name: str, minutes: float, user: str) -> Grouped:
    """A new term's would-be alert at ``T + minutes``, grouped by its user."""
    moment = T + minutes * MINUTE
    hit = {"_index": "events", "_id": name, "_source": {"@timestamp": iso(moment), "user": {"name": user}}}
    terms = [{"field": "user.name", "value": [user]}]
    item = HitAlert(hit, {"kibana.alert.new_terms": [name]}, f"the new term {name}")
    return Candidate(f"alert-{name}", item), Suppression(instance_hash(terms, RULE, "default"), terms, moment, moment)


def alerts_of(env: JobEnv, user: str) -> list[tuple[str, str, str, int]]:
    """The user's alerts: (built from, suppression start, end, docs_count), by start."""
    found = [
        (
            alert["kibana.alert.ancestors"][0]["id"],
            alert["kibana.alert.suppression.start"],
            alert["kibana.alert.suppression.end"],
            alert["kibana.alert.suppression.docs_count"],
        )
        for alert in env.alert_docs(RULE)
        if alert["kibana.alert.suppression.terms"][0]["value"] == [user]
    ]
    return sorted(found, key=lambda alert: alert[1])


def at(minutes: float) -> str:
    return iso(T + minutes * MINUTE)


def test_per_execution_later_batches_fold_into_this_runs_alert_only(env: JobEnv, make: Callable[..., Any]) -> None:
    first = make("run-1", None)
    assert first.write([would_be("a1", -4, "ann"), would_be("a2", -3, "ann")]) == []
    assert first.write([would_be("a3", -5, "ann"), would_be("a4", -1, "ann")]) == []  # an earlier start: moves
    assert alerts_of(env, "ann") == [("a1", at(-5), at(-1), 3)]
    assert (first.groups, first.updated, first.suppressed, first.writer.run.units) == (2, 1, 3, 1)
    second = make("run-2", None)
    assert second.write([would_be("a5", 1, "ann"), would_be("a3", -5, "ann")]) == []  # a3: counted already
    assert alerts_of(env, "ann") == [("a1", at(-5), at(-1), 3), ("a5", at(1), at(1), 0)]
    assert second.writer.run.duplicates == 1


def _change(store: SuppressingWriter, document: Callable[[str], dict[str, Any]], env: JobEnv) -> None:
    """Between the writer's read of the open alerts and its update, another writer changes the alert."""
    read = store.store.open_alerts

    def then_change(instances: Any, since: datetime) -> Any:
        found = read(instances, since)
        for alert in found.values():
            env.es.update(index=alert.index, id=alert.doc_id, doc=document(alert.doc_id), refresh=True)
        return found

    store.store.open_alerts = then_change  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("user", "change", "expected", "counted"),
    [
        # closed meanwhile: it takes nothing more; the batch's alert is created
        (
            "cat",
            {"kibana.alert.workflow_status": "closed"},
            [("c-0", at(-4), at(-4), 0), ("c-1", at(-2), at(-2), 0)],
            0,
        ),
        # acknowledged meanwhile (nothing counted): read again and folded
        ("dee", {"kibana.alert.workflow_status": "acknowledged"}, [("c-0", at(-4), at(-2), 1)], 0),
        # another run folded later events in meanwhile: these were counted by it, not again
        (
            "eve",
            {"kibana.alert.suppression.end": at(-1), "kibana.alert.suppression.docs_count": 1},
            [("c-0", at(-4), at(-1), 1)],
            1,
        ),
    ],
)
def test_an_alert_changed_between_read_and_update(
    env: JobEnv, make: Callable[..., Any], user: str, change: dict[str, Any], expected: list[Any], counted: int
) -> None:
    earlier = make(f"{user}-0", HOUR)
    assert earlier.write([would_be(f"{user}-0", -4, user)]) == []
    writer = make(f"{user}-1", HOUR)
    _change(writer, lambda _: change, env)
    assert writer.write([would_be(f"{user}-1", -2, user)]) == []
    found = [(source.replace(user, "c"), *rest) for source, *rest in alerts_of(env, user)]
    assert found == expected
    assert writer.writer.run.duplicates == counted
