"""The health and metrics server, over real HTTP on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from job.ops import httpserver
from job.ops.httpserver import HttpServer


class Flags:
    def __init__(self) -> None:
        self.live, self.ready = True, False

    def live_check(self) -> tuple[bool, str]:
        return self.live, "scheduler running" if self.live else "scheduler stopped"

    def ready_check(self) -> tuple[bool, str]:
        if self.ready is None:
            raise RuntimeError("the check itself broke")
        return bool(self.ready), "template current" if self.ready else "Elasticsearch is not usable"


@pytest.fixture
def served() -> Iterator[tuple[HttpServer, Flags, CollectorRegistry]]:
    registry = CollectorRegistry()
    Counter("detection_rule_executions", "runs", ["rule_id"], registry=registry).labels("r1").inc(2)
    flags = Flags()
    server = httpserver.start(0, registry, live=flags.live_check, ready=flags.ready_check, host="127.0.0.1")
    yield server, flags, registry
    server.stop()


def get(server: HttpServer, path: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_and_readiness_follow_their_checks(served: tuple[HttpServer, Flags, CollectorRegistry]) -> None:
    server, flags, _ = served
    assert get(server, "/healthz") == (200, "ok: scheduler running\n")
    assert get(server, "/readyz") == (503, "not ok: Elasticsearch is not usable\n")
    flags.ready, flags.live = True, False
    assert get(server, "/readyz") == (200, "ok: template current\n")
    assert get(server, "/healthz") == (503, "not ok: scheduler stopped\n")
    flags.ready = None  # type: ignore[assignment]
    assert get(server, "/readyz") == (503, "not ok: check failed: RuntimeError\n")
    assert get(server, "/healthz?verbose=1")[0] == 503


def test_metrics_are_served_in_the_text_format(served: tuple[HttpServer, Flags, CollectorRegistry]) -> None:
    server, _, _ = served
    status, body = get(server, "/metrics")
    assert status == 200
    [family] = [f for f in text_string_to_metric_families(body) if f.name == "detection_rule_executions"]
    assert [(s.name, s.labels, s.value) for s in family.samples if s.name.endswith("_total")] == [
        ("detection_rule_executions_total", {"rule_id": "r1"}, 2.0)
    ]


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/", "GET", 404), ("/metricsx", "GET", 404), ("/healthz", "HEAD", 200), ("/healthz", "POST", 501)],
)
def test_other_requests(
    served: tuple[HttpServer, Flags, CollectorRegistry], path: str, method: str, status: int
) -> None:
    server, _, _ = served
    assert get(server, path, method)[0] == status
