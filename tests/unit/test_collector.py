"""Preview's collector, the parts that need no cluster: would-be alerts handed on or held (suppressed ones),
dead letters kept once, and updates applied to held alerts or noted against existing ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from job.alerts.suppression import END, INSTANCE_ID, OpenAlert
from job.writing.bulk import AlertWrite, WriteStats
from job.writing.collect import COLLECTED, Collector
from job.writing.suppressed import Update

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _write(doc_id: str, **source: Any) -> AlertWrite:
    return AlertWrite(doc_id, json.dumps(source).encode(), "events", f"e-{doc_id}")


def test_alerts_are_handed_on_and_suppressed_ones_held_until_the_end() -> None:
    emitted: list[tuple[str, dict[str, Any]]] = []
    collector = Collector(lambda doc_id, body, source: emitted.append((doc_id, dict(source))))
    stats = WriteStats()
    held = _write(
        "g", **{INSTANCE_ID: "i1", END: "2026-01-01T10:05:00.000Z", "kibana.alert.start": "2026-01-01T10:06:00.000Z"}
    )
    result = collector.create(None, None, "alias", [_write("a", x=1), held, _write("a", x=1)], stats, lambda w: stats)  # type: ignore[arg-type]
    assert [write.doc_id for write in result.created] == ["a", "g"]
    assert (stats.created, stats.duplicates, collector.alerts) == (2, 1, 2)
    assert emitted == [("a", {"x": 1})]

    # A later window folds a group into the held alert, and another into an existing alert.
    [(_, alert)] = collector.held_open(["i1"], T0).values()
    assert (alert.index, alert.doc_id, alert.end) == (COLLECTED, "g", datetime(2026, 1, 1, 10, 5, tzinfo=UTC))
    assert (
        collector.apply(
            Update(alert, {END: "2026-01-01T10:09:00.000Z", "kibana.alert.suppression.docs_count": 4})
        ).status
        == 200
    )
    existing = OpenAlert("alerts-000001", "old", 3, 1, None, 2)
    assert collector.as_updated(existing, "i2") == existing
    assert (
        collector.apply(
            Update(existing, {END: "2026-01-01T10:08:00.000Z", "kibana.alert.suppression.docs_count": 5})
        ).status
        == 200
    )
    assert collector.folds == {"old": {END: "2026-01-01T10:08:00.000Z", "kibana.alert.suppression.docs_count": 5}}
    assert collector.as_updated(existing).docs_count == 5
    assert collector.held_ends(["i1", "i2", "i3"], T0) == {
        "i1": datetime(2026, 1, 1, 10, 9, tzinfo=UTC),
        "i2": datetime(2026, 1, 1, 10, 8, tzinfo=UTC),
    }
    assert collector.held_open(["i1"], datetime(2026, 1, 1, 11, 0, tzinfo=UTC)) == {}  # started before `since`

    collector.finish()
    assert [doc_id for doc_id, _ in emitted] == ["a", "g"]
    assert emitted[1][1][END] == "2026-01-01T10:09:00.000Z"  # as the runs left it
    assert collector.apply(Update(alert, {})).status == 404  # handed on: no longer held
