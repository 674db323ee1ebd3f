"""Installs (or upgrades) the alert index template, the write index behind the alert alias, the
execution log (a rollover alias, :mod:`job.execlog.lifecycle`) and the dead-letter index.
Idempotent and safe when two runs start at once. ``setup`` runs it; ``run`` and ``schedule`` only check
its result (:mod:`job.indices.preflight`) unless ``DETECTION_AUTO_SETUP`` is set."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from job.alerts.template import TEMPLATE_VERSION, alert_index_template, write_index_aliases
from job.client.retry import RetryPolicy
from job.config.indexnames import template_name, write_index_name
from job.execlog import lifecycle as execlog_lifecycle
from job.writing import deadletter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstallResult:
    template: str  # "installed", "upgraded" or "current"
    write_index: str  # "created" or "exists"
    execution_log: str = "exists"  # "created", "converted" (from an earlier version's plain index) or "exists"


def installed_template_version(es: Elasticsearch, policy: RetryPolicy, alias: str) -> int | None:
    """The version of the alert index template installed for ``alias`` (None: not installed, 0: no version)."""
    name = template_name(alias)
    existing = policy.call(lambda: es.options(ignore_status=404).indices.get_index_template(name=name))
    templates = existing.body.get("index_templates", []) if existing.meta.status == 200 else []
    version = templates[0]["index_template"].get("version") if templates else None
    if not templates:
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def install(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    executions_index: str,
    dead_letter_index: str | None = None,
) -> InstallResult:
    """Make sure alerts can be written to ``alias``, executions to ``executions_index`` and events that
    cannot become alerts to ``dead_letter_index``."""
    name = template_name(alias)
    body = alert_index_template(alias)
    installed_version = installed_template_version(es, policy, alias)
    if installed_version == TEMPLATE_VERSION:
        template_state = "current"
    else:
        policy.call(lambda: es.indices.put_index_template(name=name, **body))
        template_state = "installed" if installed_version is None else "upgraded"
        log.info("alert index template %s %s (version %s)", name, template_state, TEMPLATE_VERSION)

    if policy.call(lambda: es.indices.exists_alias(name=alias)):
        index_state = "exists"
        # Every time (a no-op when nothing changed): new fields reach the indices that exist (changed ones
        # wait for a rollover), and the ``_meta`` tells ``run``, which may not read templates, that this
        # version's setup ran.
        mappings = body["template"]["mappings"]
        policy.call(
            lambda: es.options(ignore_status=400).indices.put_mapping(
                index=alias, properties=mappings.get("properties", {}), meta=mappings["_meta"]
            )
        )
    else:
        created = policy.call(
            lambda: es.options(ignore_status=400).indices.create(
                index=write_index_name(alias), aliases=write_index_aliases(alias)
            )
        )
        index_state = "created" if created.meta.status == 200 else "exists"
    execution_log = execlog_lifecycle.ensure_log(es, policy, executions_index)
    if dead_letter_index is not None:
        deadletter.ensure_index(es, policy, dead_letter_index)
    return InstallResult(template=template_state, write_index=index_state, execution_log=execution_log)
