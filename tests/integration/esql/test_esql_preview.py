"""``detection-job preview`` of ES|QL rules, on the ES|QL node: a backfill of the same rule over the same range
creates exactly the documents preview printed (but for the fields a run stamps itself), and preview writes
nothing. The other rule types are previewed against their backfills in tests/integration/run/test_preview.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from tests.integration.esql.conftest import EsqlJob
from tests.integration.run.conftest import iso
from tests.integration.run.test_preview import END, RANGE, START, json_lines, stable

pytestmark = pytest.mark.integration

# name: (query, extra TOML)
VARIANTS: dict[str, tuple[str, str]] = {
    "rows with their events": ('FROM {events} METADATA _id | WHERE event.action == "logon"', ""),
    "aggregating": ('FROM {events} | WHERE event.action == "logon" | STATS logons = COUNT(*) BY host.name', ""),
    "suppressed": (
        'FROM {events} METADATA _id | WHERE event.action == "logon"',
        '\n[rule.alert_suppression]\ngroup_by = ["host.name"]\n',
    ),
}


def _events() -> list[dict[str, Any]]:
    """Every 3 minutes from 10 minutes before the range to 5 after it, over three hosts; every fourth no match."""
    events = []
    for n in range(16):
        moment = START - timedelta(minutes=10) + timedelta(minutes=3 * n)
        action = "logon" if n % 4 else "logoff"
        events.append(
            {"_id": f"e{n:02d}", "@timestamp": iso(moment), "event": {"action": action}, "host": {"name": f"h{n % 3}"}}
        )
    return events


def test_preview_prints_the_documents_a_backfill_of_the_range_creates(
    esql_job: EsqlJob, capsys: pytest.CaptureFixture[str]
) -> None:
    esql_job.index(_events())
    rules = {
        esql_job.rule(query, name=name, from_="now-15m", interval="10m", extra=extra): name
        for name, (query, extra) in VARIANTS.items()
    }
    assert timedelta(minutes=30) == END - START
    assert cli_main(["preview", *rules, "--json", *RANGE]) == 0
    out, _ = capsys.readouterr()
    previewed: dict[str, dict[str, dict[str, Any]]] = {rule_id: {} for rule_id in rules}
    for doc_id, source in json_lines(out).items():
        previewed[source["kibana.alert.rule.rule_id"]][doc_id] = source
    for index in (esql_job.alerts, esql_job.executions, esql_job.dead_letters):
        assert not esql_job.es.indices.exists(index=index), f"preview created {index}"
    for rule_id, name in rules.items():
        assert cli_main(["backfill", "--rule", rule_id, *RANGE]) == 0, name
        created = {doc.pop("_id"): doc for doc in esql_job.alerts(rule_id)}
        assert previewed[rule_id] and sorted(previewed[rule_id]) == sorted(created), name
        for doc_id, source in created.items():
            assert stable(previewed[rule_id][doc_id]) == stable(source), (name, doc_id)
        capsys.readouterr()
