"""``make bench-peers``: the job beside ElastAlert 2 on the same events, timed per rule execution.

ElastAlert 2 needs Python 3.12 or newer: it is installed into a virtualenv of its own (``.venv-peers``)
from an interpreter found on the PATH or under pyenv; without one, this says so and stops. Its rule is
the seed rule's query as ``query_string`` (Lucene), ``type: any``, ``realert`` 0 (every match alerted),
searching the same window (``--start``/``--end``). Each tool's time is the one it records per rule
execution (ElastAlert: ``time_taken`` in its status index; the job: end minus start of its execution
record), and each tool's alerts are counted. Never fails: a problem is printed, the exit code is 0.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from bench import data
from bench.suite import Bench, Row, table

# The release measured; ElastAlert 2 brings its own Elasticsearch client (7.x).
ELASTALERT = "elastalert2==2.31.0"
VENV = Path(__file__).resolve().parents[1] / ".venv-peers"
RESULTS = Path(__file__).resolve().parent / "results" / "peers.json"
EVENTS = 2_000
REPEAT = 3
LUCENE = (
    "event.kind:alert AND event.module:endgame AND endgame.metadata.type:detection AND "
    "(event.action:cred_theft_event OR endgame.event_subtype_full:cred_theft_event)"
)


def interpreter() -> str | None:
    """A Python 3.12+ interpreter that runs: on the PATH, or a pyenv version (a pyenv shim on the PATH may
    name a version that is installed but not selected, and then fails)."""
    candidates = [found for name in ("python3.12", "python3.13", "python3.14") if (found := shutil.which(name))]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(version / "bin" / "python3") for version in sorted(root.glob("3.1[2-9]*"), reverse=True)]
    for candidate in candidates:
        check = [candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def install(python: str) -> Path:
    elastalert = VENV / "bin" / "elastalert"
    if not elastalert.exists():
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", ELASTALERT], check=True)
    return elastalert


def elastalert_once(elastalert: Path, es: Elasticsearch, es_url: str, index: str, work: Path) -> tuple[float, int]:
    """One ElastAlert run of the rule over the window: (its time_taken, alerts it wrote)."""
    writeback = "bench-peers-elastalert"
    es.options(ignore_status=404).indices.delete(index=f"{writeback}*", expand_wildcards="all")
    host, port = es_url.split("//", 1)[1].rsplit(":", 1)
    rules = work / "rules"
    rules.mkdir(exist_ok=True)
    (work / "config.yaml").write_text(
        f"rules_folder: {rules}\nrun_every:\n  minutes: 1\nbuffer_time:\n  minutes: 15\nes_host: {host}\n"
        f"es_port: {port}\nwriteback_index: {writeback}\nalert_time_limit:\n  days: 1\nmax_query_size: 10000\n"
    )
    (rules / "seed.yaml").write_text(
        f"name: seed\ntype: any\nindex: {index}\ntimestamp_field: '@timestamp'\nrealert:\n  minutes: 0\n"
        f"filter:\n- query:\n    query_string:\n      query: {json.dumps(LUCENE)}\nalert:\n- debug\n"
    )
    start = (data.NOW - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S")
    end = data.NOW.strftime("%Y-%m-%dT%H:%M:%S")
    subprocess.run(
        [str(elastalert), "--config", str(work / "config.yaml"), "--rule", "seed.yaml", "--start", start, "--end", end],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=1800,
        check=False,
    )
    es.indices.refresh(index=f"{writeback}*")
    status = es.search(index=f"{writeback}_status", size=1)["hits"]["hits"]
    alerts = int(es.count(index=writeback, query={"term": {"rule_name": "seed"}})["count"])
    return float(status[0]["_source"]["time_taken"]), alerts


def job_once(bench: Bench, index: str) -> tuple[float, int]:
    """One run of the job over the same window: (its execution record's duration, alerts created)."""
    rules = bench.rules_dir("peers-seed", [data.seed_rule(index, EVENTS)])
    env = bench.fresh("bench-peers-job", rules, alerts_max=str(EVENTS))
    bench.job(env)
    bench.es.indices.refresh(index="bench-peers-job-executions")
    [record] = bench.es.search(index="bench-peers-job-executions", size=1)["hits"]["hits"]
    execution = record["_source"]["execution"]
    seconds = (datetime.fromisoformat(execution["end"]) - datetime.fromisoformat(execution["start"])).total_seconds()
    return seconds, bench.created("bench-peers-job")


def main() -> int:
    python = interpreter()
    if python is None:
        print("bench-peers: skipped, ElastAlert 2 needs Python 3.12 or newer and none was found")
        return 0
    try:
        elastalert = install(python)
        es_url = os.environ.get("DETECTION_ES_HOSTS", "http://127.0.0.1:9200").split(",")[0]
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as folder:
            bench = Bench(es_url, Path(folder))
            index = data.matching_events(bench.es, EVENTS).index
            peer: list[float] = []
            ours: list[float] = []
            for _ in range(REPEAT):
                seconds, alerts = elastalert_once(elastalert, bench.es, es_url, index, Path(folder))
                assert alerts == EVENTS, f"ElastAlert 2 wrote {alerts} of {EVENTS} alerts"
                peer.append(seconds)
                seconds, alerts = job_once(bench, index)
                assert alerts == EVENTS, f"the job wrote {alerts} of {EVENTS} alerts"
                ours.append(seconds)
        elastalert_s, job_s = statistics.median(peer), statistics.median(ours)
        rows = [
            Row(f"ElastAlert 2, {EVENTS:,} alerts, per rule execution", f"{elastalert_s:.2f} s"),
            Row(f"the job, {EVENTS:,} alerts, per rule execution", f"{job_s:.2f} s"),
            Row("ElastAlert 2 / the job", f"{elastalert_s / job_s:.1f}"),
        ]
        print(table(rows))
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(
            json.dumps({"date": stamp, "elastalert": ELASTALERT, "elastalert_s": elastalert_s, "job_s": job_s}) + "\n"
        )
    except Exception as exc:  # noqa: BLE001 - the comparison is informative, it never fails
        print(f"bench-peers: did not complete: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
