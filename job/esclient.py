"""The Elasticsearch client, built from settings. The only place that knows how to connect."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from job.jsoncodec import client_serializers
from job.settings import Settings


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
    if settings.es_ca_certs is not None:
        options["ca_certs"] = str(settings.es_ca_certs)
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username is not None:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        options["basic_auth"] = (settings.es_username, password)
    if not settings.es_verify_certs:
        options["ssl_show_warn"] = False
    return Elasticsearch(**options)
