"""The health and metrics endpoints of a long-running job: ``/healthz``, ``/readyz``, ``/metrics``.

``start(port, registry, live=..., ready=...)`` serves them from a background thread and returns a
handle with ``port`` and ``stop()``. ``live`` and ``ready`` are callables returning ``(ok, reason)``;
they run on the server's threads, once per request, and must be safe to call from there. An error
they raise answers 503, never crashes the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]
SOCKET_TIMEOUT_SECONDS = 30


class HttpServer:
    """A running server; ``stop()`` closes it and waits for its thread."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="detection-http", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _run_check(check: Check) -> tuple[bool, str]:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer, not a crash
        log.warning("health check failed: %s: %s", type(exc).__name__, exc)
        return False, f"check failed: {type(exc).__name__}"


def _handler(registry: CollectorRegistry, live: Check, ready: Check) -> type[BaseHTTPRequestHandler]:
    checks = {"/healthz": live, "/readyz": ready}

    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT_SECONDS
        server_version = "detection-job"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            log.debug("http %s", format % args)

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path in checks:
                ok, reason = _run_check(checks[path])
                self._send(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {reason}\n".encode())
            else:
                self._send(404, b"not found: /healthz, /readyz and /metrics are served\n")

        do_HEAD = do_GET

    return Handler


def start(port: int, registry: CollectorRegistry, *, live: Check, ready: Check, host: str = "0.0.0.0") -> HttpServer:
    """Serve the endpoints on ``host:port`` (port 0: any free port; see ``HttpServer.port``)."""
    server = ThreadingHTTPServer((host, port), _handler(registry, live, ready))
    server.daemon_threads = True
    running = HttpServer(server)
    log.info("serving /healthz, /readyz and /metrics on %s:%d", host, running.port)
    return running
