"""Metrics leave the job for real: pushed to a Pushgateway (a small HTTP receiver) by run, scraped from schedule."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """Records every request it gets, answering ``status`` (a Pushgateway answers 200 to a push)."""

    status: int = 200
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            del format, args

        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            with received.lock:
                received.requests.append((self.command, self.path, dict(self.headers.items()), body))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = do_DELETE = _record

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_run_pushes_each_rules_metrics_to_the_pushgateway(
    job_env: JobEnv, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    first = job_env.write_rule(name="First")
    second = job_env.write_rule(name="Second", query="event.action:nothing_matches")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id=f"e{i}") for i in range(3)])
    job_env.set(pushgateway_url=f"http://push%40user:pw-CANARY-1@127.0.0.1:{receiver.port}/")
    assert job_env.run("--now", iso(NOW)) == 0

    pushes = {path: (method, headers, body) for method, path, headers, body in receiver.requests}
    assert sorted(pushes) == sorted(
        f"/metrics/job/detection-job/rule_id/{rule_id}/space_id/default" for rule_id in (first, second)
    )
    method, headers, body = pushes[f"/metrics/job/detection-job/rule_id/{first}/space_id/default"]
    assert method == "PUT"  # replaces the rule's group: its last values, not a sum over runs
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"push@user:pw-CANARY-1").decode()
    labels = (("rule_id", first), ("rule_name", "First"))
    pushed = samples(body)
    assert pushed[("detection_rule_alerts_created_total", labels)] == 3
    assert pushed[("detection_rule_hits_total", labels)] == 3
    assert pushed[("detection_rule_executions_total", (*labels, ("status", "succeeded")))] == 1
    assert pushed[("detection_rule_last_execution_failed", labels)] == 0
    assert pushed[("detection_rule_interval_seconds", labels)] == 600
    assert pushed[("detection_rule_search_seconds_count", labels)] == 1
    assert {dict(labels)["rule_id"] for _, labels in pushed} == {first}  # only this rule's samples
    assert "CANARY" not in caplog.text
    assert f"pushed the metrics of 2 rules to the Pushgateway at http://127.0.0.1:{receiver.port}/" in caplog.text


def test_a_failing_pushgateway_is_logged_and_detection_still_succeeds(
    job_env: JobEnv, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 503
    job_env.write_rule()
    job_env.set(pushgateway_url=f"http://user:pw-CANARY-2@127.0.0.1:{receiver.port}")
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(receiver.requests) == 1  # stops at the first failure
    assert f"could not push metrics to the Pushgateway at http://127.0.0.1:{receiver.port}: HTTP 503" in caplog.text
    assert "CANARY" not in caplog.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_schedule_serves_health_readiness_and_metrics(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1), _id="scheduled")])
    port = free_port()
    with FaultProxy(es_url) as proxy:
        proxy.fail(r".", times=10**9, status=None)  # Elasticsearch unreachable: every connection dropped
        env = dict(
            os.environ,
            DETECTION_ES_HOSTS=proxy.url,
            DETECTION_HTTP_PORT=str(port),
            DETECTION_HTTP_HOST="127.0.0.1",
            DETECTION_SCHEDULE_INTERVAL="2s",
            DETECTION_RETRY_ATTEMPTS="1",
            DETECTION_ES_REQUEST_TIMEOUT="5",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "job", "schedule"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: fetch(port, "/healthz")[0] == 200, "/healthz")
            status, body = fetch(port, "/readyz")
            assert (status, body) == (503, "not ok: Elasticsearch is not usable (ConnectionError)\n")
            assert fetch(port, "/healthz") == (200, "ok: scheduler running\n")

            with proxy.state.lock:
                proxy.state.faults.clear()  # the node is back
            wait_for(lambda: fetch(port, "/readyz")[0] == 200, "/readyz to turn ready")
            assert fetch(port, "/readyz")[1] == "ok: Elasticsearch reachable, the indices set up for this version\n"

            def two_passes() -> bool:
                scraped = samples(fetch(port, "/metrics")[1])
                key = (
                    "detection_rule_executions_total",
                    (("rule_id", rule_id), ("rule_name", "Test credential theft"), ("status", "succeeded")),
                )
                return scraped.get(key, 0) >= 2

            wait_for(two_passes, "two scheduled passes in /metrics")
            scraped = samples(fetch(port, "/metrics")[1])
        finally:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # stopped by SIGINT: 128 + 2
    labels = (("rule_id", rule_id), ("rule_name", "Test credential theft"))
    assert scraped[("detection_rule_alerts_created_total", labels)] == 1  # the event alerted once, then dedupe
    assert scraped[("detection_rule_duplicates_skipped_total", labels)] >= 1
    assert scraped[("detection_rule_last_execution_failed", labels)] == 0
    assert scraped[("detection_rule_last_success_timestamp_seconds", labels)] > NOW.timestamp()
    assert scraped[("detection_rule_search_seconds_count", labels)] >= 2
    assert ("detection_rule_indexing_seconds_bucket", (("le", "+Inf"), *labels)) in scraped
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["scheduled"]
