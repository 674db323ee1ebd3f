"""TLS settings against a real TLS server in front of the real node, and secrets (a canary password in
the URL) kept out of everything check and run print or log, on success and on every error path."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faultproxy import FaultProxy
from tests.tlsproxy import TLS, TlsProxy

pytestmark = pytest.mark.integration

CANARY = "CANARY-pw-5e1d"


def _job(*args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "job", *args], capture_output=True, text=True, env=env, timeout=120)


def _with_password(url: str, password: str = CANARY) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://elastic:{password}@{rest}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tls_proxy(es_url: str) -> Iterator[TlsProxy]:
    with TlsProxy(es_url) as proxy:
        yield proxy


def test_check_with_ca_and_client_certificate(tls_proxy: TlsProxy) -> None:
    result = _job(
        "check",
        DETECTION_ES_HOSTS=tls_proxy.url,
        DETECTION_ES_CA_CERTS=str(TLS / "ca.pem"),
        DETECTION_ES_CLIENT_CERT=str(TLS / "client.pem"),
        DETECTION_ES_CLIENT_KEY=str(TLS / "client.key"),
    )
    assert result.returncode == 0, result.stderr
    assert "health" in result.stdout
    assert tls_proxy.client_subjects and "detection-job" in tls_proxy.client_subjects[0]


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"DETECTION_ES_CA_CERTS": str(TLS / "ca.pem")}, "no client certificate"),
        ({}, "the server's certificate is not trusted (no CA given)"),
    ],
)
def test_check_fails_in_one_line_when_tls_does_not_agree(
    tls_proxy: TlsProxy, settings: dict[str, str], why: str
) -> None:
    result = _job("check", DETECTION_ES_HOSTS=tls_proxy.url, DETECTION_ES_REQUEST_TIMEOUT="10", **settings)
    assert result.returncode == 2, why
    [line] = result.stderr.splitlines()
    assert line.startswith(f"detection-job: cannot use Elasticsearch at {tls_proxy.url}: "), line


def test_unverified_tls_works_and_warns_once(tls_proxy: TlsProxy) -> None:
    result = _job(
        "check",
        DETECTION_ES_HOSTS=tls_proxy.url,
        DETECTION_ES_VERIFY_CERTS="false",
        DETECTION_ES_CLIENT_CERT=str(TLS / "client.pem"),
        DETECTION_ES_CLIENT_KEY=str(TLS / "client.key"),
        DETECTION_LOG_FORMAT="text",
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "DETECTION_ES_VERIFY_CERTS is false" in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0]


class _Recorder(BaseHTTPRequestHandler):
    """Stands in for a cluster with security on (the local node has none): answers 401 with
    Elasticsearch's error body, and records the Authorization header the job sent."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        del format, args

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        type(self).seen.append(self.headers.get("Authorization", ""))
        reason = "unable to authenticate user [elastic] for REST request [/_cluster/health]"
        body = json.dumps(
            {"error": {"root_cause": [], "type": "security_exception", "reason": reason}, "status": 401}
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def refusing_cluster() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_credentials_are_sent_as_basic_auth_and_never_shown(refusing_cluster: str) -> None:
    result = _job("check", DETECTION_ES_HOSTS=_with_password(refusing_cluster), DETECTION_LOG_LEVEL="debug")
    assert result.returncode == 2
    expected = "Basic " + base64.b64encode(f"elastic:{CANARY}".encode()).decode()
    assert _Recorder.seen and set(_Recorder.seen) == {expected}
    assert CANARY not in result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("detection-job:")]
    assert line == (
        f"detection-job: cannot use Elasticsearch at {refusing_cluster}: HTTP 401 security_exception: "
        "unable to authenticate user [elastic] for REST request [/_cluster/health]"
    )


@pytest.mark.parametrize("command", ["check", "run", "setup"])
def test_a_refused_connection_never_shows_the_password(command: str) -> None:
    port = _closed_port()
    result = _job(
        command,
        DETECTION_ES_HOSTS=_with_password(f"http://127.0.0.1:{port}"),
        DETECTION_ES_REQUEST_TIMEOUT="5",
        DETECTION_RETRY_ATTEMPTS="2",
        DETECTION_LOG_LEVEL="debug",
    )
    assert result.returncode == 2
    assert CANARY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot use Elasticsearch at http://127.0.0.1:{port}: ConnectionError" in result.stderr


def test_run_through_http_errors_never_shows_the_password(es_url: str) -> None:
    with FaultProxy(es_url) as proxy:
        proxy.fail(r"_cluster/health|_index_template|/_alias", times=1000, status=403)  # run reads aliases first
        result = _job(
            "run",
            DETECTION_ES_HOSTS=_with_password(proxy.url),
            DETECTION_LOG_LEVEL="debug",
            DETECTION_RETRY_ATTEMPTS="2",
        )
    assert result.returncode == 2
    assert CANARY not in result.stdout + result.stderr
    assert "HTTP 403 injected_fault: injected by the test proxy" in result.stderr  # Elasticsearch's reason
