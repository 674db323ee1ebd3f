"""``make bench``: the job against the floor on the local node, and the figures with their targets.

Every measurement runs the job as a process (``detection-job run``, as a CronJob pod runs it) and times
it from start to exit; the floors (``bench/floor.py``) are processes too. Repetitions are interleaved
(job, floor, floor with the job's documents; then the next size) and the median is reported. Every run
starts from fresh alert and execution indices made by ``detection-job setup`` (not timed). The table is
printed and written to ``bench/results/latest.json``; a target missed prints FAIL and never fails the
command.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from bench import bench_eql, data, esql
from bench.new_terms import new_terms_figure
from job.backends import translate_rule_query
from job.client.fieldcaps import field_types_from_caps
from job.execlog.history import RuleHistory
from job.lists.plan import ExceptionPlan
from job.ruletypes.contract import PlanInputs
from job.ruletypes.registry import Compiler, type_for
from job.run.plan import plan_run

SIZES = (2_000, 10_000, 20_000)
REPEAT = 5
BACKGROUNDS = (30_000, 300_000)
GENERATED_RULES = 1_000
DAY_EVENTS = 20_000  # matches of the seed rule over 24 hours: about 139 per 10-minute window
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
BIN = Path(sys.executable).parent


@dataclass
class Proc:
    seconds: float
    rss_mb: float
    returncode: int


@dataclass
class Row:
    figure: str
    value: str
    target: str = ""
    passed: bool | None = None
    numbers: dict[str, Any] = field(default_factory=dict)


# Runs one command and reports its wall time, peak resident memory and exit code. The measured process is
# a child of this small launcher, never of the bench process: a child created by a large process counts
# that process's pages in its own peak (``ru_maxrss``) until it execs.
_LAUNCHER = """
import os, sys, time
out = sys.argv[1]
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(out, "w") as result:
    result.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_process(args: Sequence[str], env: dict[str, str], log: Path) -> Proc:
    """Run one process (through the launcher); its wall time, peak resident memory and exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".result") as result, log.open("ab") as stderr:
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, result.name, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            check=True,
        )
        seconds, rss_kb, code = result.read().split()
    return Proc(float(seconds), int(rss_kb) / 1024, int(code))


class Bench:
    def __init__(self, es_url: str, work: Path) -> None:
        self.es_url = es_url
        self.es = Elasticsearch(es_url, request_timeout=600)
        self.work = work
        self.log = work / "stderr.log"
        self.rows: list[Row] = []

    # -- processes ---------------------------------------------------------------------------------

    def env(self, prefix: str, rules: Path, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DETECTION_")}
        env.update(
            {
                "DETECTION_ES_HOSTS": self.es_url,
                "DETECTION_RULES_DIR": str(rules),
                "DETECTION_ALERTS_INDEX": f"{prefix}-alerts",
                "DETECTION_EXECUTIONS_INDEX": f"{prefix}-executions",
                "DETECTION_DEAD_LETTER_INDEX": f"{prefix}-deadletter",
                "DETECTION_LOG_FORMAT": "ecs",
                "DETECTION_LOG_LEVEL": "warning",
                "DETECTION_ES_REQUEST_TIMEOUT": "300",
            }
        )
        env.update({f"DETECTION_{key.upper()}": value for key, value in extra.items()})
        return env

    def fresh(self, prefix: str, rules: Path, **extra: str) -> dict[str, str]:
        """Delete the indices of ``prefix`` and install them again (not timed)."""
        data.reset(self.es, prefix)
        env = self.env(prefix, rules, **extra)
        setup = run_process([str(BIN / "detection-job"), "setup"], env, self.log)
        assert setup.returncode == 0, f"detection-job setup failed; see {self.log}"
        return env

    def job(self, env: dict[str, str], *args: str) -> Proc:
        proc = run_process([str(BIN / "detection-job"), "run", "--now", data.iso(data.NOW), *args], env, self.log)
        assert proc.returncode in (0, 1), f"detection-job run exited {proc.returncode}; see {self.log}"
        return proc

    def rules_dir(self, name: str, rules: list[Any]) -> Path:
        folder = self.work / name
        data.write_rules(folder, rules)
        return folder

    def created(self, prefix: str) -> int:
        self.es.indices.refresh(index=f"{prefix}-alerts")
        return int(self.es.count(index=f"{prefix}-alerts")["count"])

    # -- alerts vs floor ---------------------------------------------------------------------------

    def job_query(self, rule: Any, alias: str) -> dict[str, Any]:
        """The query the job searches for ``rule`` at ``NOW`` (its plan, with the cluster's field types)."""
        caps = self.es.field_caps(index=list(rule.index), fields="*", include_unmapped=True).body
        plan = plan_run(rule, data.NOW, RuleHistory(), max_catchup=timedelta(hours=24), alerts_max=100_000)
        inputs = PlanInputs(
            caps=caps,
            alerts_alias=alias,
            compiled=lambda: translate_rule_query(rule, field_types_from_caps(caps)),
            exceptions=ExceptionPlan,
        )
        search = type_for(rule).plan(rule, plan.window, inputs)
        assert search.query is not None
        return search.query

    def dump_alerts(self, prefix: str, path: Path) -> float:
        """Write the job's alerts as ``event id<TAB>JSON`` lines; their mean size in bytes."""
        total = count = 0
        with path.open("w", encoding="utf-8") as out:
            for hit in helpers.scan(self.es, index=f"{prefix}-alerts", query={"query": {"match_all": {}}}, size=1000):
                text = json.dumps(hit["_source"], separators=(",", ":"))
                out.write(f"{hit['_source']['kibana.alert.ancestors'][0]['id']}\t{text}\n")
                total += len(text.encode())
                count += 1
        return total / max(count, 1)

    def floor(self, events: str, query: dict[str, Any], docs: str, target: str) -> Proc:
        args = [sys.executable, "-m", "bench.floor", "--es", self.es_url, "--events", events]
        args += ["--query", json.dumps(query), "--target", target, "--docs", docs]
        env = dict(os.environ) | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = run_process(args, env, self.log)
        assert proc.returncode == 0, f"floor failed; see {self.log}"
        return proc

    def alerts_vs_floor(self) -> None:
        results: dict[int, dict[str, list[Proc]]] = {}
        setups: dict[int, dict[str, Any]] = {}
        for size in SIZES:
            events = data.matching_events(self.es, size)
            rules = self.rules_dir(f"seed-{size}", [data.seed_rule(events.index, size)])
            prefix = f"bench-docs-{size}"
            env = self.fresh(prefix, rules, alerts_max=str(size))
            self.job(env)  # the run whose alerts the second floor writes (and a warm-up)
            assert self.created(prefix) == size, f"the job wrote {self.created(prefix)} of {size} alerts"
            docs = self.work / f"alerts-{size}.tsv"
            mean = self.dump_alerts(prefix, docs)
            data.reset(self.es, prefix)
            query = self.job_query(data.seed_rule(events.index, size), f"bench-job-{size}-alerts")
            setups[size] = {"events": events.index, "rules": rules, "docs": docs, "mean": mean, "query": query}
            results[size] = {"job": [], "floor": [], "floor_job_docs": []}
        for rep in range(REPEAT):
            for size in SIZES:
                setup = setups[size]
                steps: list[tuple[str, Callable[[], Proc]]] = [
                    ("job", lambda size=size, setup=setup: self._job_once(size, setup)),
                    ("floor", lambda size=size, setup=setup: self._floor_once(size, setup, same_size=True)),
                    ("floor_job_docs", lambda size=size, setup=setup: self._floor_once(size, setup, same_size=False)),
                ]
                steps = steps[rep % 3 :] + steps[: rep % 3]  # interleaved, each first in turn
                for name, step in steps:
                    results[size][name].append(step())
            print(f"  repetition {rep + 1}/{REPEAT} done", flush=True)
        rss: dict[int, float] = {}
        for size in SIZES:
            job = statistics.median(p.seconds for p in results[size]["job"])
            floor = statistics.median(p.seconds for p in results[size]["floor"])
            floor_docs = statistics.median(p.seconds for p in results[size]["floor_job_docs"])
            rss[size] = max(p.rss_mb for p in results[size]["job"])
            numbers = {
                "job_s": job,
                "floor_s": floor,
                "floor_job_docs_s": floor_docs,
                "alert_bytes": setups[size]["mean"],
            }
            self.rows.append(
                Row(
                    f"{size:,} alerts: job / same-size floor",
                    f"{job:.2f} s / {floor:.2f} s = {job / floor:.2f}",
                    "<= 1.5",
                    job / floor <= 1.5,
                    numbers,
                )
            )
            docs_target = size >= 10_000
            self.rows.append(
                Row(
                    f"{size:,} alerts: job / floor with the job's documents",
                    f"{job:.2f} s / {floor_docs:.2f} s = {job / floor_docs:.2f}",
                    "<= 1.10" if docs_target else "",
                    job / floor_docs <= 1.10 if docs_target else None,
                    numbers,
                )
            )
            self.rows.append(
                Row(f"{size:,} alerts: peak RSS of the job", f"{rss[size]:.0f} MB", numbers={"rss_mb": rss[size]})
            )
        flat = rss[SIZES[-1]] <= 150 and rss[SIZES[-1]] <= rss[SIZES[0]] * 1.15
        self.rows.append(
            Row(
                "peak RSS at 20,000 alerts (and vs 2,000)",
                f"{rss[SIZES[-1]]:.0f} MB (2,000: {rss[SIZES[0]]:.0f} MB)",
                "<= 150 MB, within 15% of 2,000's",
                flat,
            )
        )

    def _job_once(self, size: int, setup: dict[str, Any]) -> Proc:
        prefix = f"bench-job-{size}"
        env = self.fresh(prefix, setup["rules"], alerts_max=str(size))
        proc = self.job(env)
        assert self.created(prefix) == size
        return proc

    def _floor_once(self, size: int, setup: dict[str, Any], *, same_size: bool) -> Proc:
        if same_size:
            target = f"bench-floor-{size}"
            self.es.options(ignore_status=404).indices.delete(index=target)
            self.es.indices.create(index=target, settings={"number_of_replicas": 0})
            proc = self.floor(setup["events"], setup["query"], f"same-size:{round(setup['mean'])}", target)
        else:
            prefix = f"bench-floordocs-{size}"
            self.fresh(prefix, setup["rules"])  # the job's alert template, write index and alias
            target = f"{prefix}-alerts"
            proc = self.floor(setup["events"], setup["query"], f"file:{setup['docs']}", target)
        self.es.indices.refresh(index=target)
        assert self.es.count(index=target)["count"] == size
        return proc

    # -- no matches ----------------------------------------------------------------------------------

    def no_matches(self) -> None:
        sets = [data.background(self.es, count) for count in BACKGROUNDS]
        timings: dict[int, list[float]] = {count: [] for count in BACKGROUNDS}
        for _ in range(REPEAT):
            for events in sets:
                rules = self.rules_dir(f"bg-{events.count}", [data.seed_rule(events.index, 10_000)])
                env = self.fresh(f"bench-bg-{events.count}", rules)
                timings[events.count].append(self.job(env).seconds)
        small, large = (statistics.median(timings[count]) for count in BACKGROUNDS)
        self.rows.append(
            Row(
                f"0 matches in {BACKGROUNDS[0]:,} / {BACKGROUNDS[1]:,} events",
                f"{small:.2f} s / {large:.2f} s",
                numbers={"small_s": small, "large_s": large},
            )
        )

    # -- many rules ----------------------------------------------------------------------------------

    def shipped_rules(self) -> None:
        data.rule_events(self.es, GENERATED_RULES)
        rules = [rule.model_copy(update={"index": (data.RULES_PATTERN,)}) for rule in data.shipped_rules()]
        folder = self.rules_dir("shipped", rules)
        one_pass: list[float] = []
        singles: list[float] = []
        for _ in range(3):
            one_pass.append(self.job(self.fresh("bench-shipped", folder), "--all").seconds)
            env = self.fresh("bench-shipped", folder)
            singles.append(sum(self.job(env, "--rule", rule.rule_id).seconds for rule in rules))
        together, apart = statistics.median(one_pass), statistics.median(singles)
        self.rows.append(
            Row(
                "15 shipped rules: one pass / 15 single runs",
                f"{together:.2f} s / {apart:.2f} s = {together / apart:.2f}",
                "<= 0.25",
                together / apart <= 0.25,
                {"pass_s": together, "singles_s": apart},
            )
        )

    def generated_rules(self) -> None:
        data.rule_events(self.es, GENERATED_RULES)
        folder = self.rules_dir("generated", data.generated_rules(GENERATED_RULES))
        one: list[float] = []
        two: list[float] = []
        for _ in range(3):
            one.append(self.job(self.fresh("bench-many", folder), "--all").seconds)
            env = self.fresh("bench-many", folder)
            started = time.perf_counter()
            processes = [
                subprocess.Popen(
                    [str(BIN / "detection-job"), "run", "--now", data.iso(data.NOW), "--all"],
                    env=env | {"DETECTION_SHARD": f"{i}/2"},
                    stdout=subprocess.DEVNULL,
                    stderr=self.log.open("ab"),
                )
                for i in (1, 2)
            ]
            assert all(process.wait() in (0, 1) for process in processes)
            two.append(time.perf_counter() - started)
        expected = sum(1 for k in range(GENERATED_RULES) if k % 6)
        alerts = sum(k % 6 for k in range(GENERATED_RULES))
        assert self.created("bench-many") == alerts, f"{self.created('bench-many')} of {alerts} alerts"
        single, sharded = statistics.median(one), statistics.median(two)
        self.rows.append(
            Row(
                f"{GENERATED_RULES:,} rules in one pass ({expected} match, {alerts:,} alerts)",
                f"{single:.2f} s",
                "<= 30 s",
                single <= 30,
                {"pass_s": single},
            )
        )
        self.rows.append(
            Row(
                "two shards as two processes / one process",
                f"{sharded:.2f} s / {single:.2f} s = {sharded / single:.2f}",
                "<= 0.6",
                sharded / single <= 0.6,
                {"shards_s": sharded},
            )
        )

    # -- preview vs backfill -------------------------------------------------------------------------------

    def preview_vs_backfill(self) -> None:
        """One rule over the same 24 hours: ``preview`` (writes nothing) against ``backfill`` (writes alerts and
        records), from fresh indices each time; the preview's table, and its ``--json`` lines, go to /dev/null."""
        events = data.day_events(self.es, DAY_EVENTS)
        rules = self.rules_dir("day", [data.seed_rule(events.index, 10_000)])
        span = ["--from", data.iso(data.NOW - timedelta(hours=24)), "--to", data.iso(data.NOW)]
        timings: dict[str, list[float]] = {"backfill": [], "preview": [], "preview --json": []}
        for rep in range(REPEAT):
            steps = list(timings)
            for name in steps[rep % 3 :] + steps[: rep % 3]:  # interleaved, each first in turn
                env = self.fresh("bench-day", rules, alerts_max="10000")
                command = (
                    ["backfill", "--rule", data.SEED_RULE_ID] if name == "backfill" else ["preview", data.SEED_RULE_ID]
                )
                proc = run_process([str(BIN / "detection-job"), *command, *span, *name.split()[1:]], env, self.log)
                assert proc.returncode == 0, f"detection-job {name} exited {proc.returncode}; see {self.log}"
                if name == "backfill":
                    assert self.created("bench-day") == DAY_EVENTS, f"{self.created('bench-day')} of {DAY_EVENTS}"
                timings[name].append(proc.seconds)
        backfill, preview, as_json = (statistics.median(timings[name]) for name in timings)
        numbers = {"backfill_s": backfill, "preview_s": preview, "preview_json_s": as_json, "events": DAY_EVENTS}
        self.rows.append(
            Row(
                f"preview / backfill, one rule over 24 h ({DAY_EVENTS:,} alerts, 144 windows)",
                f"{preview:.2f} s / {backfill:.2f} s = {preview / backfill:.2f}",
                "<= 1.2",
                preview / backfill <= 1.2,
                numbers,
            )
        )
        self.rows.append(
            Row(
                "preview --json / backfill (the same)", f"{as_json:.2f} s / {backfill:.2f} s = {as_json / backfill:.2f}"
            )
        )
    def new_terms(self) -> None:
        new_terms_figure(self)  # bench/new_terms.py
    # -- EQL ----------------------------------------------------------------------------------------

    def eql_vs_query(self) -> None:
        bench_eql.eql_vs_query(self)

    def eql_sequences(self) -> None:
        bench_eql.eql_sequences(self)

    # -- ES|QL --------------------------------------------------------------------------------------

    def esql_vs_query(self) -> None:
        url = esql.esql_url()
        if url is None:
            self.rows.append(Row("ES|QL rule / query rule", "not measured: no ES|QL node (BENCH_ESQL_HOSTS)"))
            return
        self.rows += esql.esql_vs_query(Bench(url, self.work), Row)

    # -- start and translation ---------------------------------------------------------------------

    def start_and_kql(self) -> None:
        helps = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run([str(BIN / "detection-job"), "--help"], stdout=subprocess.DEVNULL, check=True)
            helps.append(time.perf_counter() - started)
        help_s = statistics.median(helps)
        self.rows.append(Row("process start: detection-job --help", f"{help_s:.3f} s", "<= 0.25 s", help_s <= 0.25))
        rules = data.shipped_rules()
        caps = self.es.field_caps(index=data.RULES_PATTERN, fields="*", include_unmapped=True).body
        timings = []
        for _ in range(REPEAT):
            compiler = Compiler(lambda indices: field_types_from_caps(caps))
            started = time.perf_counter()
            for rule in rules:
                compiler.compile(rule)
            timings.append(time.perf_counter() - started)
        kql_ms = statistics.median(timings) * 1000
        self.rows.append(Row(f"KQL translation of the {len(rules)} shipped rules", f"{kql_ms:.1f} ms"))


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory),
        "python": platform.python_version(),
        "load_average_15m": round(os.getloadavg()[2], 1),  # other work on the machine skews every figure
    }


def table(rows: list[Row]) -> str:
    width = max(len(row.figure) for row in rows)
    value_width = max(len(row.value) for row in rows)
    lines = [
        f"| {'figure':<{width}} | {'value':<{value_width}} | target | |",
        f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|---|---|",
    ]
    for row in rows:
        verdict = "" if row.passed is None else ("PASS" if row.passed else "FAIL")
        lines.append(f"| {row.figure:<{width}} | {row.value:<{value_width}} | {row.target} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    es_url = os.environ.get("DETECTION_ES_HOSTS", "http://127.0.0.1:9200").split(",")[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        bench = Bench(es_url, Path(folder))
        version = _version(bench.es)
        parts = [
            bench.start_and_kql,
            bench.alerts_vs_floor,
            bench.no_matches,
            bench.shipped_rules,
            bench.generated_rules,
            bench.preview_vs_backfill,
            bench.new_terms,
            bench.eql_vs_query,
            bench.eql_sequences,
            bench.esql_vs_query,
        ]
        wanted = set(argv)
        for part in parts:
            if wanted and part.__name__ not in wanted:
                continue
            print(f"== {part.__name__}", flush=True)
            try:
                part()
            except Exception as exc:  # noqa: BLE001 - the benchmark reports, it never fails
                bench.rows.append(Row(part.__name__, f"did not complete: {type(exc).__name__}: {exc}"[:200], "", False))
        elapsed = time.monotonic() - started
        info = machine() | {"elasticsearch": version}
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        print()
        machine_line = f"{info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}"
        machine_line += f", load average {info['load_average_15m']} (15 min)"
        print(f"{stamp}, {machine_line}, Elasticsearch {version}; {elapsed / 60:.1f} minutes")
        print(table(bench.rows))
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "date": stamp,
                    "machine": info,
                    "minutes": round(elapsed / 60, 1),
                    "rows": [asdict(row) for row in bench.rows],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


def _version(es: Elasticsearch) -> str:
    nodes = es.nodes.info(node_id="_local", metric="_none")["nodes"]
    return str(next(iter(nodes.values()))["version"])
