"""The read-only client (``preview``): which requests it sends and which it refuses before sending."""

from __future__ import annotations

import pytest

from job.client.esclient import ReadOnlyClient, WriteRefused, may_write


@pytest.mark.parametrize(
    ("method", "path", "writes"),
    [
        ("POST", "/endgame-*/_search", False),
        ("GET", "/_search", False),
        ("POST", "/_msearch", False),
        ("POST", "/endgame-*/_field_caps?fields=*", False),
        ("POST", "/endgame-*/_pit?keep_alive=1m", False),
        ("DELETE", "/_pit", False),
        ("POST", "/lists/_count", False),
        ("POST", "/endgame-*/_eql/search", False),
        ("POST", "/_query", False),
        ("GET", "/detection-alerts-default-000001/_doc/abc", False),
        ("HEAD", "/detection-deadletter-default", False),
        ("GET", "/detection-alerts-default/_alias", False),
        ("POST", "/_bulk", True),
        ("PUT", "/detection-alerts-default/_bulk", True),
        ("POST", "/detection-executions-default/_update/abc", True),
        ("PUT", "/detection-executions-default/_create/abc", True),
        ("PUT", "/detection-executions-default/_doc/abc", True),
        ("POST", "/detection-executions-default/_doc", True),
        ("POST", "/detection-alerts-default/_refresh", True),
        ("GET", "/detection-alerts-default/_refresh", True),
        ("POST", "/detection-alerts-default/_delete_by_query", True),
        ("PUT", "/new-index", True),
        ("DELETE", "/detection-alerts-default-000001", True),
        ("POST", "/detection-alerts-default/_rollover", True),
        ("PUT", "/_index_template/x", True),
        ("POST", "/_search_but_not_really", True),
    ],
)
def test_what_may_write(method: str, path: str, writes: bool) -> None:
    assert may_write(method, path) is writes


def test_a_write_is_refused_before_anything_is_sent() -> None:
    client = ReadOnlyClient("http://127.0.0.1:9")  # nothing listens there: a request sent would fail otherwise
    with pytest.raises(WriteRefused, match=r"refused to send PUT /detection-alerts-default/_create/x"):
        client.create(index="detection-alerts-default", id="x", document={})
    with pytest.raises(WriteRefused, match=r"POST /a/_refresh"):
        client.options(request_timeout=1).indices.refresh(index="a")
