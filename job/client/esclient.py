"""The Elasticsearch client, built from settings. The only place that knows how to connect."""

from __future__ import annotations

import functools
import logging
import re
import ssl
from collections.abc import Mapping
from typing import Any

from elastic_transport import ApiResponse
from elasticsearch import Elasticsearch

from job.config.settings import Settings
from job.errors import JobError
from job.text.jsoncodec import client_serializers

log = logging.getLogger(__name__)


# The requests a read-only client sends: every GET and HEAD but those that change an index, POSTs to the read
# APIs (searches, points in time, field capabilities, EQL and ES|QL queries), and closing a point in time.
_READ_POST = re.compile(
    r"/(_search|_msearch|_field_caps|_pit|_count|_mget|_eql/search|_query|_query/async|_terms_enum|_search/scroll)$"
)
_CHANGES = re.compile(r"/(_refresh|_flush|_cache/clear|_forcemerge)$")


class WriteRefused(JobError):
    """A read-only client was asked to send a request that may write."""


def may_write(method: str, path: str) -> bool:
    """Whether a request may change the cluster (a read-only client refuses it)."""
    path = path.split("?", 1)[0]
    if _CHANGES.search(path):
        return True
    if method in ("GET", "HEAD"):
        return False
    if method == "POST":
        return _READ_POST.search(path) is None
    return not (method == "DELETE" and path == "/_pit")


class ReadOnlyClient(Elasticsearch):
    """A client that sends only reads (``preview``): a request that may write raises :class:`WriteRefused`
    before it is sent, so a code path that would write fails loudly instead."""

    def perform_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any | None = None,
        endpoint_id: str | None = None,
        path_parts: Mapping[str, Any] | None = None,
    ) -> ApiResponse[Any]:
        if may_write(method, path):
            raise WriteRefused(f"a read-only run refused to send {method} {path.split('?', 1)[0]}")
        return super().perform_request(
            method, path, params=params, headers=headers, body=body, endpoint_id=endpoint_id, path_parts=path_parts
        )


def make_client(settings: Settings, *, read_only: bool = False) -> Elasticsearch:
    """A client for the configured cluster (``read_only``: a :class:`ReadOnlyClient`).

    The client's own retries are off (``max_retries=0``): transient errors are retried by the
    job's tenacity policy, and two retry layers would multiply the attempts.
    """
    options: dict[str, Any] = {
        "hosts": list(settings.es_hosts),
        "request_timeout": settings.es_request_timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
        "verify_certs": settings.es_verify_certs,
        "serializers": client_serializers(),  # hostile bytes in events never fail a whole response
    }
    options.update(_tls_options(settings))
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username is not None:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        options["basic_auth"] = (settings.es_username, password)
    if not settings.es_verify_certs:
        # One warning per process instead of urllib3's one per request.
        options["ssl_show_warn"] = False
        _warn_unverified()
    return ReadOnlyClient(**options) if read_only else Elasticsearch(**options)


def _tls_options(settings: Settings) -> dict[str, Any]:
    """The client's TLS options. The client drops the client certificate when it does not verify the
    server's, so in that one case the job builds the TLS context itself."""
    if not settings.es_verify_certs and settings.es_client_cert is not None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        key = str(settings.es_client_key) if settings.es_client_key is not None else None
        context.load_cert_chain(str(settings.es_client_cert), key)
        return {"ssl_context": context}
    options: dict[str, Any] = {}
    for option, path in (
        ("ca_certs", settings.es_ca_certs),
        ("client_cert", settings.es_client_cert),
        ("client_key", settings.es_client_key),
    ):
        if path is not None:
            options[option] = str(path)
    return options


@functools.cache
def _warn_unverified() -> None:
    log.warning(
        "DETECTION_ES_VERIFY_CERTS is false: the cluster's TLS certificate is not verified, so anyone on the "
        "network path can read and change the traffic, credentials included"
    )
