"""The field types a rule test's fixture events get when the test names no mapping: ECS's, for the fields the
shipped rules, the Sigma examples and the common summaries (host, user, process, network) use.

Types are ECS 8.x's (the ECS field reference), with the types every Elasticsearch node has in place of the
ones some lack: ``wildcard`` and ``constant_keyword`` become ``keyword``, ``match_only_text`` becomes ``text``
(the alert mapping makes the same choice, :mod:`job.alerts.template`). The ``endgame.*`` fields are not ECS:
their types are those of Elastic's Endgame integration. A field that is not here is mapped as Elasticsearch's
dynamic mapping would, but strings become ``keyword`` (as in ECS, where nearly every string is one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final


def _group(prefix: str, kind: str, names: str) -> dict[str, str]:
    return {f"{prefix}.{name}" if prefix else name: kind for name in names.split()}


_PROCESS = "name executable command_line args entity_id title working_directory hash.md5 hash.sha1 hash.sha256"

ECS_TYPES: Final[Mapping[str, str]] = {
    "@timestamp": "date",
    "message": "text",
    "tags": "keyword",
    "ecs.version": "keyword",
    **_group("event", "keyword", "kind category type action module dataset provider outcome code id reason"),
    **_group("event", "date", "created ingested start end"),
    **_group("event", "long", "severity duration sequence"),
    "event.risk_score": "float",
    **_group("data_stream", "keyword", "type dataset namespace"),
    **_group("agent", "keyword", "id name type version"),
    **_group("host", "keyword", "name hostname id mac architecture domain type"),
    **_group("host.os", "keyword", "family name platform type version kernel full"),
    "host.ip": "ip",
    **_group("user", "keyword", "name id domain email full_name"),
    **_group("user.target", "keyword", "name id domain"),
    **_group("process", "keyword", _PROCESS),
    "process.pid": "long",
    "process.args_count": "long",
    "process.exit_code": "long",
    **_group("process.parent", "keyword", _PROCESS),
    "process.parent.pid": "long",
    **_group("file", "keyword", "name path extension directory hash.md5 hash.sha1 hash.sha256"),
    "file.size": "long",
    **_group("registry", "keyword", "path key value hive data.strings"),
    **_group("source", "keyword", "domain address"),
    "source.ip": "ip",
    "source.port": "long",
    **_group("destination", "keyword", "domain address"),
    "destination.ip": "ip",
    "destination.port": "long",
    **_group("network", "keyword", "protocol transport direction type"),
    **_group("dns.question", "keyword", "name type"),
    **_group("url", "keyword", "full domain path original"),
    **_group("rule", "keyword", "name id"),
    "winlog.event_id": "keyword",
    "winlog.channel": "keyword",
    # Elastic's Endgame integration (not ECS).
    **_group("endgame.metadata", "keyword", "type"),
    **_group("endgame", "keyword", "event_subtype_full event_type_full"),
    **_group("endgame", "long", "serial_event_id pid"),
}

# Strings not in the table: keyword, as in ECS (a date-like string is still a date, as dynamic mapping detects).
STRINGS_AS_KEYWORDS: Final = {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}


def ecs_mapping(fields: Iterable[str]) -> dict[str, Any]:
    """The ``mappings`` of an index for events with these (dotted) fields: ECS types for the fields in the table,
    dynamic mapping (strings as keywords) for the others."""
    properties: dict[str, Any] = {}
    for path in sorted(set(fields)):
        kind = ECS_TYPES.get(path)
        if kind is None:
            continue
        node = properties
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[parts[-1]] = {"type": kind}
    return {"dynamic_templates": [STRINGS_AS_KEYWORDS], "properties": properties}
