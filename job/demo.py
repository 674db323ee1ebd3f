"""``make demo``: the job end to end on the local node (``python -m job.demo``).

Loads a small set of Elastic-Endgame-style events (matching and non-matching events for several of
the 15 Endgame rules, some sharing one timestamp, one from an account that an exception excuses),
runs the job once, shows the alerts per rule, then runs it again to show that nothing is duplicated.
Everything it writes lives in its own indices (``*-demo``), reset at each start. Its last lines say how
to look at them with ``status``, ``alerts`` and ``preview``: the settings that point the commands there.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from job.cli import main as cli_main
from job.client.esclient import make_client
from job.config.settings import SHIPPED_RULES_DIR, load_settings

EVENTS_INDEX = "endgame-demo-000001"
ALERTS_INDEX = "detection-alerts-demo"
EXECUTIONS_INDEX = "detection-executions-demo"
DEAD_LETTER_INDEX = "detection-deadletter-demo"
SEED_RULE_FILE = "credential_access_endgame_cred_dumping_detected.toml"
EXCEPTION = """
[[rule.exceptions]]
item_id = "demo-backup-account"
name = "Nightly backup service account"
description = "svc-backup reads LSASS memory during the vendor-approved backup job."

  [[rule.exceptions.entries]]
  field = "user.name"
  type = "match"
  operator = "included"
  value = "svc-backup"
"""


def endgame_event(moment: datetime, action: str, kind: str = "detection", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": {"kind": "alert", "module": "endgame", "action": action, "category": "process"},
        "endgame": {"metadata": {"type": kind}, "event_subtype_full": action},
        "host": {"name": "ws-finance-07", "os": {"type": "windows"}},
        "user": {"name": "mallory"},
        "process": {"name": "procdump64.exe", "parent": {"name": "cmd.exe"}, "pid": 4242},
    }
    event.update(fields)
    return event


def sample_events(now: datetime) -> list[dict[str, Any]]:
    """About 30 events in the last ten minutes; 13 of them should become alerts."""
    tie = now - timedelta(minutes=4)
    events = [endgame_event(tie, "cred_theft_event", host={"name": f"ws-{i:02d}"}) for i in range(6)]  # one timestamp
    events += [
        endgame_event(now - timedelta(minutes=7), "cred_theft_event", user={"name": "svc-backup"}),  # excepted
        endgame_event(now - timedelta(minutes=6), "cred_theft_event", "prevention"),
        endgame_event(now - timedelta(minutes=5), "ransomware_event", process={"name": "locker.exe"}),
        endgame_event(now - timedelta(minutes=5), "ransomware_event", "prevention", process={"name": "locker.exe"}),
        endgame_event(
            now - timedelta(minutes=3), "file_classification_event", "prevention", file={"name": "inv.doc.exe"}
        ),
        endgame_event(now - timedelta(minutes=2), "exploit_event", process={"name": "winword.exe"}),
        endgame_event(now - timedelta(minutes=2), "token_manipulation_event"),
        endgame_event(now - timedelta(minutes=1), "behavior_protection_event", "prevention"),
    ]
    # Events no rule should alert on: ordinary telemetry, other modules, unknown alert types.
    for minutes in range(1, 9):
        moment = now - timedelta(minutes=minutes)
        noise = endgame_event(moment, "cred_theft_event")
        noise["event"]["kind"] = "event"
        events.append(noise)
        events.append(endgame_event(moment, "process_event"))
    other_module = endgame_event(now - timedelta(minutes=3), "cred_theft_event")
    other_module["event"]["module"] = "sysmon"
    events.append(other_module)
    return events


def load_events(es: Elasticsearch, now: datetime) -> int:
    # The execution log of earlier versions was a plain index; now it is an alias over EXECUTIONS_INDEX-*.
    es.options(ignore_status=404).indices.delete(
        index=f"{EVENTS_INDEX},{ALERTS_INDEX}-*,{EXECUTIONS_INDEX}-*,{DEAD_LETTER_INDEX}", ignore_unavailable=True
    )
    if es.indices.exists(index=EXECUTIONS_INDEX) and not es.indices.exists_alias(name=EXECUTIONS_INDEX):
        es.indices.delete(index=EXECUTIONS_INDEX)
    es.indices.create(
        index=EVENTS_INDEX,
        mappings={
            "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
            "properties": {"@timestamp": {"type": "date"}},
        },
    )
    events = sample_events(now)
    helpers.bulk(es, ({"_index": EVENTS_INDEX, "_source": e} for e in events), refresh=True)
    return len(events)


def demo_rules_dir() -> Path:
    """The shipped rules, plus an exception on the seed rule for the backup service account."""
    folder = Path(tempfile.mkdtemp(prefix="detection-job-demo-"))
    shutil.copytree(SHIPPED_RULES_DIR, folder, dirs_exist_ok=True)
    seed = folder / SEED_RULE_FILE
    seed.write_text(seed.read_text() + EXCEPTION)
    return folder


def alerts_per_rule(es: Elasticsearch) -> list[tuple[str, int]]:
    es.indices.refresh(index=ALERTS_INDEX)
    response = es.search(
        index=ALERTS_INDEX, size=0, aggs={"rules": {"terms": {"field": "kibana.alert.rule.name", "size": 50}}}
    )
    return [(bucket["key"], bucket["doc_count"]) for bucket in response["aggregations"]["rules"]["buckets"]]


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (as a newcomer types it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def look_around(hosts: str) -> list[str]:
    """The demo's last lines: the settings that point ``status``, ``alerts`` and ``preview`` at its indices."""
    command = _shown(Path(sys.executable).parent / "detection-job")
    seed = _shown(SHIPPED_RULES_DIR / SEED_RULE_FILE)
    settings = {name: os.environ[name] for name in DEMO_SETTINGS}
    exports = " ".join(f"{name}={value}" for name, value in {"DETECTION_ES_HOSTS": hosts, **settings}.items())
    return [
        "== look at what it made: the demo wrote to its own indices, so first point the commands at them",
        f"export {exports}",
        f"{command} status    # each rule's last run and when it is due again",
        f"{command} alerts    # the alerts, newest first (alerts close ID closes one)",
        f"{command} preview {seed} --from now-1h",
        "    # the shipped rule over the last hour, writing nothing: without the demo's exception, svc-backup's event",
        "    # would be one more alert; the others exist already",
    ]


# The settings the demo runs with that the commands after it need too (the rules folder is the shipped one).
DEMO_SETTINGS = (
    "DETECTION_ALERTS_INDEX",
    "DETECTION_EXECUTIONS_INDEX",
    "DETECTION_DEAD_LETTER_INDEX",
    "DETECTION_ALERTS_MAX",
)


def main() -> int:
    rules_dir = demo_rules_dir()
    os.environ.update(
        DETECTION_ALERTS_INDEX=ALERTS_INDEX,
        DETECTION_EXECUTIONS_INDEX=EXECUTIONS_INDEX,
        DETECTION_DEAD_LETTER_INDEX=DEAD_LETTER_INDEX,
        DETECTION_RULES_DIR=str(rules_dir),
        # The Endgame rules ask for up to 10000 alerts per run; raise the global cap to match.
        DETECTION_ALERTS_MAX="10000",
        # One key does everything here: the run installs the indices itself (a cluster uses `setup`).
        DETECTION_AUTO_SETUP="true",
        DETECTION_LOG_LEVEL=os.environ.get("DETECTION_LOG_LEVEL", "WARNING"),
    )
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        with make_client(settings) as es:
            print(f"== loading sample Endgame events into {EVENTS_INDEX}: {load_events(es, now)} events")
            print("\n== first run")
            first = cli_main(["run"])
            print("\n== alerts per rule")
            for name, count in alerts_per_rule(es):
                print(f"{count:>4}  {name}")
            print("\n== second run over the same window: nothing new, nothing duplicated")
            second = cli_main(["run", "--all"])  # not due yet: --all runs them anyway
            total = sum(count for _, count in alerts_per_rule(es))
            print(f"\n{total} alerts in {ALERTS_INDEX} (an exception excused svc-backup's credential-theft alert)")
            print("\n" + "\n".join(look_around(",".join(settings.es_hosts))))
    finally:
        shutil.rmtree(rules_dir, ignore_errors=True)
    return first or second


if __name__ == "__main__":
    sys.exit(main())
