"""Alert suppression at its edges, on the real node: the cap met exactly by the groups while events lacking a
``group_by`` field wait (``doNotSuppress``), and a group's alert that another run created first.

The expected alerts, counts and resume points are written out by hand from the events each test indexes.
"""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from job.writing.writer import MAX_ALERTS_WARNING
from tests.faultproxy import FaultProxy, Responder
from tests.integration.run.conftest import JobEnv, iso
from tests.integration.run.test_run_suppression import PER_EXECUTION, event, last_execution

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

HOSTS_ALONE = """
[rule.alert_suppression]
group_by = ["host.name"]
missing_fields_strategy = "doNotSuppress"
"""


def test_groups_that_fill_the_cap_exactly_leave_the_events_lacking_a_field_to_the_next_run(job_env: JobEnv) -> None:
    """``max_signals = 100``, exactly 100 new groups, and 5 events without ``host.name`` (earlier than every
    group): the cap is reached before those 5, so the run warns and the next one starts at the first of them."""
    cap = 100
    rule_id = job_env.write_rule(extra=HOSTS_ALONE, max_signals=cap)
    lacking = [NOW - 12 * MINUTE + timedelta(seconds=i) for i in range(5)]
    job_env.index_events(
        [event(NOW - 10 * MINUTE + timedelta(seconds=3 * i), f"g{i:03}", host=f"h{i:03}") for i in range(cap)]
        + [event(moment, f"n{i}", host=None) for i, moment in enumerate(lacking)]
    )
    assert job_env.run("--now", iso(NOW)) == 0
    execution = last_execution(job_env, rule_id)
    assert execution["metrics"]["suppression_groups"] == cap
    assert MAX_ALERTS_WARNING in execution["execution"]["warnings"]
    assert execution["window"]["searched_to"] == iso(lacking[0])

    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    alerts = job_env.alert_docs(rule_id)
    plain = sorted(
        doc["kibana.alert.ancestors"][0]["id"] for doc in alerts if "kibana.alert.suppression.terms" not in doc
    )
    assert plain == [f"n{i}" for i in range(5)]
    assert len(alerts) == cap + 5  # no group alerted twice


def _created_first_by_another_run(es_url: str) -> Responder:
    """Send the bulk request to Elasticsearch twice, and answer with the second answer: another run created the
    same alerts a moment before this one (the alerts of a group have deterministic ids), so each item is 409."""

    def respond(body: bytes) -> tuple[int, bytes]:
        answer = (0, b"")
        for _ in range(2):
            request = urllib.request.Request(
                f"{es_url}/_bulk", data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = (response.status, response.read())
        return answer

    return respond


def test_a_group_whose_alert_another_run_created_first_is_not_counted(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule(extra=PER_EXECUTION)
    job_env.index_events([event(NOW - (5 - i) * MINUTE, f"a{i}") for i in range(3)])
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        proxy.fail(r"^/_bulk", times=1, status=200, respond=_created_first_by_another_run(es_url))
        assert job_env.run("--now", iso(NOW)) == 0
        assert proxy.state.injected == 1
    [alert] = job_env.alert_docs(rule_id)  # the other run's
    assert alert["kibana.alert.suppression.docs_count"] == 2
    metrics = last_execution(job_env, rule_id)["metrics"]
    counts = ("alerts_created", "duplicates_skipped", "suppression_groups", "suppressed_docs")
    assert {name: metrics.get(name, 0) for name in counts} == {
        "alerts_created": 0,
        "duplicates_skipped": 1,
        "suppression_groups": 0,
        "suppressed_docs": 0,
    }
