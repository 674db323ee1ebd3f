"""The seed rule and events shared by the alert tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from job.rules.model import Rule

NOW = datetime(2026, 3, 1, 12, 10, 0, 250000, tzinfo=UTC)
EXECUTION_UUID = "5f0c3f0e-5d1c-4a4e-9a57-6c1f2f1b7e42"
SPACE_ID = "default"

SEED_RULE_FIELDS: dict[str, Any] = {
    "rule_id": "571afc56-5ed9-465d-a2a9-045f099f6e7e",
    "name": "Credential Dumping - Detected - Elastic Endgame",
    "description": (
        "Creates an alert for each Elastic Endgame alert reporting credential dumping "
        "(cred_theft_event) that the endpoint detected but did not block."
    ),
    "type": "query",
    "language": "kuery",
    "query": (
        "event.kind:alert and event.module:endgame and endgame.metadata.type:detection and "
        "(event.action:cred_theft_event or endgame.event_subtype_full:cred_theft_event)"
    ),
    "index": ["endgame-*"],
    "interval": "10m",
    "from": "now-15m",
    "to": "now",
    "max_signals": 10000,
    "severity": "high",
    "risk_score": 73,
    "version": 104,
    "author": ["Elastic"],
    "license": "Elastic License v2",
    "tags": [
        "Data Source: Elastic Endgame",
        "Use Case: Threat Detection",
        "Tactic: Credential Access",
        "Resources: Investigation Guide",
    ],
    "threat": [
        {
            "framework": "MITRE ATT&CK",
            "tactic": {
                "id": "TA0006",
                "name": "Credential Access",
                "reference": "https://attack.mitre.org/tactics/TA0006/",
            },
            "technique": [
                {
                    "id": "T1003",
                    "name": "OS Credential Dumping",
                    "reference": "https://attack.mitre.org/techniques/T1003/",
                    "subtechnique": [
                        {
                            "id": "T1003.001",
                            "name": "LSASS Memory",
                            "reference": "https://attack.mitre.org/techniques/T1003/001/",
                        }
                    ],
                }
            ],
        }
    ],
}


def seed_rule(**changes: Any) -> Rule:
    """The seed rule, with ``changes`` applied (API field names, e.g. ``from``)."""
    return Rule.model_validate({**SEED_RULE_FIELDS, **changes})


def endgame_hit(doc_id: str = "Xk3vBZIBm2Yx0f9aQ1lc", **source_changes: Any) -> dict[str, Any]:
    """A search hit of an Endgame credential-theft detection, with ``source_changes`` merged at the top."""
    source: dict[str, Any] = {
        "@timestamp": "2026-03-01T12:03:17.412Z",
        "event": {
            "kind": "alert",
            "module": "endgame",
            "dataset": "esensor",
            "action": "cred_theft_event",
            "category": ["intrusion_detection", "process"],
            "type": ["info"],
            "ingested": "2026-03-01T12:03:19.001Z",
        },
        "endgame": {
            "metadata": {"type": "detection"},
            "event_subtype_full": "cred_theft_event",
            "serial_event_id": 451873,
        },
        "host": {"name": "WIN-DC01", "hostname": "win-dc01", "ip": ["10.1.2.3"], "os": {"family": "windows"}},
        "user": {"name": "svc_backup", "domain": "CORP"},
        "process": {
            "name": "procdump64.exe",
            "pid": 4412,
            "executable": "C:\\Tools\\procdump64.exe",
            "command_line": "procdump64.exe -accepteula -ma lsass.exe lsass.dmp",
            "parent": {"name": "cmd.exe", "pid": 3120},
        },
        "agent": {"type": "endgame", "id": "5e1c8f3a-0a59-4d5f-8b0e-2f7c1d9f6a10"},
        "data_stream": {"type": "logs", "dataset": "endgame.esensor", "namespace": "default"},
    }
    source.update(source_changes)
    return {"_index": "endgame-2026.03.01", "_id": doc_id, "_source": source}
