"""Paging: equal timestamps across page boundaries, an expired point in time, and the largest pages."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_five_thousand_events_with_one_timestamp_are_all_alerted(job_env: JobEnv) -> None:
    job_env.set(page_size="333")
    rule_id = job_env.write_rule()
    moment = NOW - timedelta(minutes=3)
    job_env.index_events([cred_event(moment, _id=f"e{i}") for i in range(5000)])
    assert job_env.run("--now", iso(NOW)) == 0
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {f"e{i}" for i in range(5000)}
    [execution] = job_env.executions_docs(rule_id)
    assert execution["metrics"]["pages"] == 16  # 5000 / 333, rounded up
    assert execution["metrics"]["alerts_created"] == 5000


def _expire_then_forward(es: Elasticsearch, es_url: str) -> Callable[[bytes], tuple[int, bytes]]:
    """Close the request's point in time for real, then let Elasticsearch answer the search."""

    def respond(body: bytes) -> tuple[int, bytes]:
        es.close_point_in_time(id=json.loads(body)["pit"]["id"])
        request = urllib.request.Request(
            f"{es_url}/_search", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return respond


def test_an_expired_point_in_time_is_reopened_and_nothing_is_skipped(job_env: JobEnv, es_url: str) -> None:
    job_env.set(page_size="100")
    rule_id = job_env.write_rule()
    moment = NOW - timedelta(minutes=3)
    job_env.index_events([cred_event(moment, _id=f"e{i}") for i in range(450)])
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        # The third page's point in time is gone when its search reaches Elasticsearch.
        proxy.fail(r"^/_search", after=2, times=1, status=200, respond=_expire_then_forward(job_env.es, es_url))
        assert job_env.run("--now", iso(NOW)) == 0
        assert proxy.state.injected == 1
        assert proxy.count(r"/_pit") == 3  # opened, reopened, closed
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {f"e{i}" for i in range(450)}
    [execution] = job_env.executions_docs(rule_id)
    assert execution["metrics"]["pit_reopened"] == 1


def test_a_page_size_above_five_thousand_alerts_every_event(job_env: JobEnv) -> None:
    """Settings accept pages of up to 10,000 events; the duplicate check of a page looks in two indices (the
    alerts alias and the dead letters), and must stay within Elasticsearch's result window whatever the page."""
    job_env.set(page_size="8000")
    rule_id = job_env.write_rule()
    start = NOW - timedelta(minutes=14)
    job_env.index_events([cred_event(start + timedelta(milliseconds=50 * i), _id=f"e{i}") for i in range(9000)])
    code = job_env.run("--now", iso(NOW))
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "succeeded", execution["execution"]["message"]
    assert code == 0
    assert execution["metrics"]["pages"] == 2
    assert execution["metrics"]["alerts_created"] == 9000
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {f"e{i}" for i in range(9000)}
