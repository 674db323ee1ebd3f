"""A small HTTP proxy on loopback that sits between the job and the real node and injects faults.

Requests are forwarded unchanged unless a fault is armed: answer the next N matching requests
with a status (429, 503, ...) or close their connection without answering. It also counts the
requests it sees, so tests can assert on retries, and records every ``Warning`` header the node
answers with (deprecations), so the test session can fail on them. It can make requests slow: hold them
before forwarding (a busy node), or forward them at once and hold the node's answer (Elasticsearch applies
the request while its client, whose request timeout is shorter, gives up and may retry it). When the node
cannot be reached (killed, restarting) the proxy closes the client's connection without an answer, as a
dead node would.
Several proxies may share one :class:`ProxyState` (one per node of a cluster): their faults and counts are
then common, so "the 3rd bulk request" means the 3rd whichever node it goes to.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


Responder = Callable[[bytes], tuple[int, bytes]]


@dataclass
class Fault:
    path_pattern: re.Pattern[str]
    times: int
    status: int | None  # None: drop the connection
    method: str | None = None
    after: int = 0  # let this many matching requests through first
    respond: Responder | None = None  # build the answer from the request body
    action: Callable[[], None] | None = None  # run when the fault fires, before answering
    forward_first: bool = False  # with an action: forward the request, then run the action, never answer
    answer: bool = False  # with an action: run it, then forward the request and answer as usual
    delay: float = 0.0  # seconds: hold the request before forwarding it, then answer as usual
    hold_answer: float = 0.0  # seconds: forward the request at once, hold its answer this long, then send it


def _error_body(status: int, kind: str = "injected_fault") -> bytes:
    return json.dumps({"error": {"type": kind, "reason": "injected by the test proxy"}, "status": status}).encode()


def bulk_items_answer(status: int, kind: str) -> Responder:
    """A bulk response in which every item failed with ``status`` (nothing is forwarded)."""

    def respond(body: bytes) -> tuple[int, bytes]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = []
        for action in lines[::2]:
            op, meta = next(iter(action.items()))
            error = {"type": kind, "reason": "injected by the test proxy"}
            items.append({op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": status, "error": error}})
        return 200, json.dumps({"took": 1, "errors": True, "items": items}).encode()

    return respond


def refusing_bulk(upstream: str, refused_ids: Container[str]) -> Responder:
    """Forward a bulk request without the documents whose ``_id`` is in ``refused_ids``, and answer those with
    a 400 item error (as Elasticsearch answers a document it cannot parse)."""

    def respond(body: bytes) -> tuple[int, bytes]:
        lines = body.splitlines()
        pairs = list(zip(lines[::2], lines[1::2], strict=True))

        def refused(action: bytes) -> bool:
            return next(iter(json.loads(action).values())).get("_id") in refused_ids

        kept = [pair for pair in pairs if not refused(pair[0])]
        forwarded: list[dict[str, object]] = []
        if kept:
            request = urllib.request.Request(
                f"{upstream}/_bulk",
                data=b"\n".join(line for pair in kept for line in pair) + b"\n",
                method="POST",
                headers={"Content-Type": "application/x-ndjson"},
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                forwarded = json.loads(response.read())["items"]
        items: list[dict[str, object]] = []
        for action, _ in pairs:
            if refused(action):
                op, meta = next(iter(json.loads(action).items()))
                error = {"type": "document_parsing_exception", "reason": "refused by the test proxy\nover two lines"}
                items.append({op: {"_index": meta.get("_index"), "_id": meta["_id"], "status": 400, "error": error}})
            else:
                items.append(forwarded.pop(0))
        return 200, json.dumps({"took": 1, "errors": True, "items": items}).encode()

    return respond


@dataclass
class ProxyState:
    faults: list[Fault] = field(default_factory=list)
    standing: list[tuple[re.Pattern[str], Responder]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    injected: int = 0
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Warning header)
    body_paths: list[re.Pattern[str]] = field(default_factory=list)  # requests whose bodies are kept
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body)
    lock: threading.Lock = field(default_factory=threading.Lock)
    forwarding: int = 0  # requests sent upstream and not answered yet
    idle: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.idle = threading.Condition(self.lock)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.times > 0 and fault.path_pattern.search(path) and fault.method in (None, method):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    self.injected += 1
                    return fault
        return None


class FaultProxy:
    """``with FaultProxy(upstream) as proxy: ... proxy.url ...``"""

    def __init__(self, upstream: str, state: ProxyState | None = None) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self.state = state or ProxyState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(
        self,
        path_regex: str,
        *,
        times: int,
        status: int | None,
        method: str | None = None,
        after: int = 0,
        respond: Responder | None = None,
    ) -> None:
        """Answer ``times`` requests whose path matches (after letting ``after`` through) with ``status``
        (None: drop the connection), or with what ``respond`` builds from the request body."""
        with self.state.lock:
            self.state.faults.append(Fault(re.compile(path_regex), times, status, method, after, respond))

    def on_request(
        self,
        path_regex: str,
        *,
        after: int,
        action: Callable[[], None],
        method: str | None = None,
        forward_first: bool = False,
        answer: bool = False,
    ) -> None:
        """Run ``action`` on the matching request after ``after`` of them went through; that request is dropped
        (``forward_first``: Elasticsearch gets it, the client never gets the answer; ``answer``: it is
        forwarded after the action and answered as usual)."""
        with self.state.lock:
            self.state.faults.append(
                Fault(re.compile(path_regex), 1, None, method, after, None, action, forward_first, answer)
            )

    def delay(
        self, path_regex: str, *, seconds: float, times: int = 1, after: int = 0, method: str | None = None
    ) -> None:
        """Hold ``times`` matching requests (after letting ``after`` through) ``seconds`` each before forwarding
        them, then answer as usual: a node slow to take them. Requests on other connections go on meanwhile."""
        with self.state.lock:
            self.state.faults.append(Fault(re.compile(path_regex), times, None, method, after, delay=seconds))

    def answer_late(
        self, path_regex: str, *, seconds: float, times: int = 1, after: int = 0, method: str | None = None
    ) -> None:
        """Forward ``times`` matching requests (after letting ``after`` through) at once, so Elasticsearch applies
        them, and hold each answer ``seconds`` before sending it. A client whose request timeout is shorter has
        given up by then (it sees a timeout, and may retry a request that was applied); the late answer goes
        to a closed connection."""
        with self.state.lock:
            self.state.faults.append(Fault(re.compile(path_regex), times, None, method, after, hold_answer=seconds))

    def reject_bulk_items(
        self, *, times: int, status: int = 429, kind: str = "es_rejected_execution_exception"
    ) -> None:
        """Answer the alerts' bulk requests with every item failed (e.g. 429 queue full, 400 mapping error)."""
        self.fail(r"^/_bulk", times=times, status=200, respond=bulk_items_answer(status, kind))

    def always(self, path_regex: str, respond: Responder) -> None:
        """Answer every matching request with what ``respond`` builds (faults still come first; a request
        forwarded by a ``forward_first`` fault goes through it too)."""
        with self.state.lock:
            self.state.standing.append((re.compile(path_regex), respond))

    def take_warnings(self) -> list[tuple[str, str, str]]:
        """The (method, path, Warning header) seen since the last call, oldest first."""
        with self.state.lock:
            taken, self.state.warnings = self.state.warnings, []
        return taken

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until every request sent upstream has its answer (or failed): after a paused node resumes, the
        requests its clients gave up on are still handled. False if some are still pending after ``timeout``."""
        with self.state.idle:
            return self.state.idle.wait_for(lambda: self.state.forwarding == 0, timeout)

    def keep_bodies(self, path_regex: str) -> None:
        """Keep the body of every request whose path matches (see :meth:`bodies`)."""
        with self.state.lock:
            self.state.body_paths.append(re.compile(path_regex))

    def bodies(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) of the requests :meth:`keep_bodies` asked for, oldest first."""
        with self.state.lock:
            return list(self.state.bodies)

    def requests(self) -> list[tuple[str, str]]:
        """Every (method, path with query) seen so far, oldest first."""
        with self.state.lock:
            return list(self.state.requests)

    def count(self, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self.state.lock:
            return sum(1 for _, path in self.state.requests if pattern.search(path))

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        state, upstream = self.state, self._upstream

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                del format, args

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with state.lock:
                    if any(pattern.search(self.path) for pattern in state.body_paths):
                        state.bodies.append((self.command, self.path, body or b""))
                fault = state.take_fault(self.command, self.path)
                hold = 0.0
                if fault is not None and (fault.delay or fault.hold_answer):
                    time.sleep(fault.delay)
                    hold, fault = fault.hold_answer, None  # then forwarded and answered as usual
                if fault is not None and fault.forward_first:
                    self._upstream_response(body)
                if fault is not None and fault.action is not None:
                    fault.action()
                if fault is not None and fault.answer:
                    fault = None
                if fault is not None and fault.status is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault is not None:
                    status = fault.status or 500
                    payload = _error_body(status)
                    if fault.respond is not None:
                        status, payload = fault.respond(body or b"")
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                answer = self._upstream_response(body)
                if answer is None:
                    self.close_connection = True
                    return
                status, response_headers, data = answer
                time.sleep(hold)  # the client may have given up meanwhile: then nobody reads the answer
                self.send_response(status)
                for key, value in response_headers:
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:  # the client gave up waiting (its request timed out): nobody reads the answer
                    self.close_connection = True

            def _upstream_response(self, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes] | None:
                with state.lock:
                    state.forwarding += 1
                try:
                    return self._exchange(body)
                finally:
                    with state.lock:
                        state.forwarding -= 1
                        state.idle.notify_all()

            def _exchange(self, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes] | None:
                with state.lock:
                    standing = [respond for pattern, respond in state.standing if pattern.search(self.path)]
                if standing:
                    try:
                        status, payload = standing[0](body or b"")
                    except OSError:  # the node is down: a dropped connection, as below
                        return None
                    headers = [("Content-Type", "application/json"), ("X-Elastic-Product", "Elasticsearch")]
                    return status, headers, payload
                connection = http.client.HTTPConnection(*upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                        response = connection.getresponse()
                        data = response.read()
                    except OSError:  # the node is down (killed, restarting): the client sees a dropped connection
                        return None
                    warning = response.getheader("Warning")
                    if warning:
                        with state.lock:
                            state.warnings.append((self.command, self.path, warning))
                    return response.status, response.getheaders(), data
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
