"""Exceptions through a whole run: excepted events never alert, expired items stop applying and are reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

EXCEPTION = """
[[rule.exceptions]]
item_id = "backup-account"
name = "Nightly backup account"
{expire}

[[rule.exceptions.entries]]
field = "user.name"
type = "match"
value = "svc-backup"

[[rule.exceptions.entries]]
field = "host.name"
type = "match_any"
value = ["ws-01", "ws-02"]
"""


def _events(job_env: JobEnv) -> None:
    moment = NOW - timedelta(minutes=2)
    job_env.index_events(
        [
            cred_event(moment, _id="backup-on-ws-01", user={"name": "svc-backup"}, host={"name": "ws-01"}),
            cred_event(moment, _id="backup-on-dc-01", user={"name": "svc-backup"}, host={"name": "dc-01"}),
            cred_event(moment, _id="alice-on-ws-01", user={"name": "alice"}, host={"name": "ws-01"}),
        ]
    )


def _alerted(job_env: JobEnv, rule_id: str) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))


def test_an_item_matching_all_its_entries_excuses_the_event(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=EXCEPTION.format(expire=""))
    _events(job_env)
    assert job_env.run("--now", iso(NOW)) == 0
    # Only the event matching both entries is excused; the others still alert.
    assert _alerted(job_env, rule_id) == ["alice-on-ws-01", "backup-on-dc-01"]
    alert = job_env.alert_docs(rule_id)[0]
    assert alert["kibana.alert.rule.exception_item_ids"] == ["backup-account"]


def test_an_expired_item_no_longer_applies_and_is_reported(job_env: JobEnv) -> None:
    expired = (NOW - timedelta(days=1)).strftime("expire_time = %Y-%m-%dT%H:%M:%SZ")
    rule_id = job_env.write_rule(extra=EXCEPTION.format(expire=expired))
    _events(job_env)
    assert job_env.run("--now", iso(NOW)) == 0
    assert _alerted(job_env, rule_id) == ["alice-on-ws-01", "backup-on-dc-01", "backup-on-ws-01"]
    [execution] = job_env.executions_docs(rule_id)
    assert execution["metrics"]["exceptions_expired"] == ["backup-account"]
