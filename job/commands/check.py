"""``detection-job check``: can we reach the cluster with these settings?"""

from __future__ import annotations

import argparse

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.client.esclient import make_client
from job.client.eserrors import describe
from job.config.settings import Settings
from job.errors import ElasticsearchUnavailable
from job.text.redact import redact

NAME = "check"
HELP = "connect with the configured settings; print cluster name, version and health"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def describe_cluster(es: Elasticsearch) -> tuple[str, str, str]:
    """(cluster name, version, health status). Works without the root endpoint (``GET /``)."""
    health = es.cluster.health()
    try:
        version = str(es.info()["version"]["number"])
    except ApiError as exc:
        # A node without the rest-root module (like the local one) has no GET /.
        if exc.meta.status not in (404, 405):
            raise
        nodes = es.nodes.info(node_id="_local", filter_path="nodes.*.version")
        version = next(iter(nodes["nodes"].values()))["version"]
    return str(health["cluster_name"]), version, str(health["status"])


def unavailable(settings: Settings, exc: Exception) -> ElasticsearchUnavailable:
    """One line saying which cluster failed and why, with Elasticsearch's reason (never the credentials)."""
    hosts = redact(", ".join(settings.es_hosts))
    return ElasticsearchUnavailable(f"cannot use Elasticsearch at {hosts}: {describe(exc)}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    del args
    try:
        with make_client(settings) as es:
            name, version, status = describe_cluster(es)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    print(f"cluster {name}, Elasticsearch {version}, health {status}")
    return 0
