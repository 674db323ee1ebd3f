"""The Elasticsearch client, built from settings. The only place that knows how to connect."""

from __future__ import annotations

import functools
import logging
import ssl
from typing import Any

from elasticsearch import Elasticsearch

from job.jsoncodec import client_serializers
from job.settings import Settings

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> Elasticsearch:
    """A client for the configured cluster.

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
    return Elasticsearch(**options)


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
