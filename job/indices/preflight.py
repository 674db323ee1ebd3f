"""Before a pass: are the indices ``setup`` installs there and current? (Least privilege.)

``run``, ``schedule`` and ``backfill`` never install anything with the runtime role: they check, with
two requests that take only ``view_index_metadata`` (the aliases, then the mappings of the write
indices), that this version's ``setup`` has run:

* the alerts alias has a write index whose mapping carries this version's ``_meta.template_version``
  (``setup`` writes it with the template and into the mapping of the existing indices);
* the execution log is a rollover alias (not the plain index of an earlier version) whose write index
  maps every field this version writes;
* the dead-letter index exists and maps every field this version writes.

If not, they stop with exit code 2 and ``run "detection-job setup" first``; with ``DETECTION_AUTO_SETUP``
they install and maintain the indices themselves instead (``make demo``, single-key installations).
The index template itself is not read: reading it takes a cluster privilege, and only index creation
(``setup``, a rollover) uses it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from elasticsearch import Elasticsearch

from job.alerts.template import TEMPLATE_VERSION
from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.errors import ConfigError
from job.execlog.execution import EXECUTIONS_MAPPING
from job.indices.install import install
from job.indices.rollover import maintain, maintain_log
from job.writing.deadletter import DEAD_LETTER_MAPPING

SETUP_FIRST = 'run "detection-job setup" first'


class SetupNeeded(ConfigError):
    """The indices are missing or of an earlier version, and this process may not install them (exit 2)."""


def field_paths(properties: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every field path of a mapping's ``properties`` (objects and leaves)."""
    for name, node in properties.items():
        path = f"{prefix}{name}"
        yield path
        if isinstance(node, Mapping) and isinstance(node.get("properties"), Mapping):
            yield from field_paths(node["properties"], f"{path}.")


def missing_fields(actual: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The fields of mapping ``wanted`` that mapping ``actual`` lacks (both with ``properties``)."""
    have = set(field_paths(actual.get("properties") or {}))
    return [path for path in field_paths(wanted["properties"]) if path not in have]


def write_indices(aliases: Mapping[str, Any]) -> dict[str, str]:
    """alias -> its write index, from a ``GET <names>/_alias`` answer (a lone index counts as the write index)."""
    members: dict[str, list[tuple[str, bool]]] = {}
    for index, body in aliases.items():
        for alias, meta in (body.get("aliases") or {}).items():
            members.setdefault(alias, []).append((index, bool((meta or {}).get("is_write_index"))))
    return {
        alias: flagged[0] if flagged else indices[0][0]
        for alias, indices in members.items()
        for flagged in [[index for index, is_write in indices if is_write]]
        if flagged or len(indices) == 1
    }


def problems(es: Elasticsearch, policy: RetryPolicy, settings: Settings) -> list[str]:
    """What ``setup`` would still have to do for this version; empty when everything is current."""
    alerts, executions, dead_letters = settings.alerts_index, settings.executions_index, settings.dead_letter_index
    found = policy.call(
        lambda: es.indices.get_alias(index=[alerts, executions, dead_letters], ignore_unavailable=True)
    ).body
    writes = write_indices(found)
    found_problems: list[str] = []
    targets: dict[str, str] = {}
    if alerts in writes:
        targets[alerts] = writes[alerts]
    else:
        found_problems.append(f"the alerts alias {alerts} does not exist")
    if executions in writes:
        targets[executions] = writes[executions]
    elif executions in found:
        found_problems.append(f"the execution log {executions} is the plain index of an earlier version")
    else:
        found_problems.append(f"the execution log {executions} does not exist")
    if dead_letters in found:
        targets[dead_letters] = dead_letters
    else:
        found_problems.append(f"the dead-letter index {dead_letters} does not exist")
    if not targets:
        return found_problems
    mappings = policy.call(lambda: es.indices.get_mapping(index=sorted(set(targets.values())))).body
    for name, index in targets.items():
        mapping = (mappings.get(index) or {}).get("mappings") or {}
        if name == alerts:
            version = (mapping.get("_meta") or {}).get("template_version")
            if version != TEMPLATE_VERSION:
                found_problems.append(f"the alert indices are of template version {version}, not {TEMPLATE_VERSION}")
            continue
        wanted = EXECUTIONS_MAPPING if name == executions else DEAD_LETTER_MAPPING
        missing = missing_fields(mapping, wanted)
        if missing:
            found_problems.append(
                f"{index} lacks the fields {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"
            )
    return found_problems


def prepare(es: Elasticsearch, policy: RetryPolicy, settings: Settings) -> None:
    """Before a pass: with ``DETECTION_AUTO_SETUP``, install and maintain the indices (what ``setup`` does);
    else raise :class:`SetupNeeded` unless this version's ``setup`` has run."""
    if settings.auto_setup:
        install(es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
        maintain(es, policy, settings.alerts_index, settings.alerts_rollover, settings.alerts_retention)
        maintain_log(es, policy, settings)
        return
    found = problems(es, policy, settings)
    if found:
        raise SetupNeeded(f"not set up for this version: {'; '.join(found)}; {SETUP_FIRST}")
