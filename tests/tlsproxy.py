"""A TLS front for the local node (which has no TLS of its own): a real TLS server on loopback that
asks for a client certificate, then passes the bytes on to the node unchanged.

    with TlsProxy(es_url, require_client_cert=True) as proxy:
        ... proxy.url (https://127.0.0.1:PORT) ...

The certificates are the test-only ones in ``tests/fixtures/tls``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

TLS = Path(__file__).resolve().parent / "fixtures" / "tls"


class TlsProxy:
    def __init__(self, upstream: str, *, require_client_cert: bool = True) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
        self._context.load_verify_locations(TLS / "ca.pem")
        self._context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.handshakes_refused = 0
        self.client_subjects: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_refused += 1
            conn.close()
            return
        peer = tls.getpeercert()
        if peer:
            self.client_subjects.append(str(dict(part[0] for part in peer.get("subject", ()))))
        try:
            upstream = socket.create_connection(self._upstream, timeout=60)
        except OSError:
            tls.close()
            return
        threading.Thread(target=_pipe, args=(upstream, tls), daemon=True).start()
        _pipe(tls, upstream)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
