"""The chaos harness: a rule, its events and a schedule of runs; faults applied to some of the runs; the
outcome compared with a clean reference run of the same schedule.

A case is a list of :class:`Step`: run the job once at one of the schedule's times, under a fault or
none. A fault is any object with ``name`` and ``apply(harness, now) -> Applied``; it runs the job
(``harness.run_job``) while doing something to it or to Elasticsearch, at a counted request (never after
a delay), and says how many execution records the run left ``running``:

* :class:`KillJob`: SIGKILL the job process;
* :class:`KillNode`: SIGKILL a node (the single node, a cluster's elected master, the node holding a
  shard) and start it again on the same data and port, after the job gave up or while it retries;
* :class:`PauseNode`: SIGSTOP a node for longer than the job's request timeout, then SIGCONT it, when
  the job retries or after it gave up (what the job sent meanwhile is still handled, late);
* :class:`RestartNode`: restart a node gracefully in the background while the runs go on (the steps of
  a rolling restart);
* :class:`LateAnswer`: let Elasticsearch apply a request and hold its answer past the job's request
  timeout, so the job retries a request that was applied.

:meth:`ChaosHarness.play` runs the steps and checks after each: no alert twice, none beyond the clean
reference, and a run whose records say it completed left exactly the reference's alerts and dead
letters and had every earlier interrupted run marked ``failed``.

With *poison* events, every run goes through a fault proxy that refuses their alerts (a 400 item error,
as for a document Elasticsearch cannot parse), in the reference run too, so that dead-lettering is part
of every case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from esnode.esnode import RunningNode
from job.alerts.ids import alert_id
from job.execlog.execution import INTERRUPTED_MESSAGE
from tests.faultproxy import FaultProxy, refusing_bulk
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.jobprocess import JobResult, KillPoint, run_job

COMPLETED = ("succeeded", "partial failure")


class Phase(enum.Enum):
    """Where a kill lands, seen from the killed run's execution record."""

    BEFORE_RECORD = "no record"  # before its running record was stored: it searched nothing
    DURING = "interrupted"  # its running record stays: the next run must mark it failed
    AFTER_RECORD = "finished"  # its final record was stored


@dataclass(frozen=True)
class Applied:
    """What one faulted run did."""

    result: JobResult
    interrupted: int | None  # records it left running (a later run marks them failed); None: not foreseen
    fired: bool = True  # the fault happened (its request came)

    @property
    def completed(self) -> bool:
        return not self.result.killed


class Fault(Protocol):
    name: str

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied: ...


@dataclass(frozen=True)
class KillJob:
    """SIGKILL the job process at ``point``."""

    point: KillPoint
    phase: Phase

    @property
    def name(self) -> str:
        return f"kill at {self.point}"

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied:
        result = harness.run_job(now, kill=self.point)
        return Applied(result, 1 if result.killed and self.phase is Phase.DURING else 0)


Pick = Callable[[], RunningNode]
Settings = Mapping[str, str]

# Settings of the faulted runs (DETECTION_*): give up soon on a dead or paused node, or retry for long
# enough to outlast a restart.
GIVE_UP = {"retry_attempts": "2", "retry_max_seconds": "3"}
OUTLAST_RESTART = {"retry_attempts": "30", "retry_max_seconds": "180"}
PAUSE_TIMEOUT = {"es_request_timeout": "2"}  # seconds; a paused node answers nothing for longer


def _ignore() -> None:
    pass


def _arm(point: KillPoint, action: Callable[[], None], **how: bool) -> Callable[[FaultProxy], None]:
    def arm(proxy: FaultProxy) -> None:
        proxy.on_request(point.path, after=point.nth - 1, action=action, method=point.method, **how)

    return arm


class _Background:
    """A node operation (a restart) on a thread; its error is raised by ``join``."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self.error = exc

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


@dataclass(frozen=True)
class KillNode:
    """SIGKILL the node ``pick`` names when the job's request ``point`` reaches the proxy (with
    ``point.forward_first``, once Elasticsearch has handled it), and start it again on the same data and
    port: once the job has given up (``restart="after"``), or at once, while the job retries
    (``"during"``). ``healed`` waits until the cluster is whole again (a cluster's health)."""

    point: KillPoint
    phase: Phase  # where the run stands when the node dies, seen from its record (with restart="after")
    pick: Pick
    restart: Literal["after", "during"] = "after"
    healed: Callable[[], None] = _ignore
    label: str = "the node"
    settings: Settings | None = None  # of the run; default: give up soon (restart after), or outlast the restart

    @property
    def name(self) -> str:
        return f"SIGKILL {self.label} at {self.point}, restarted {self.restart} the run"

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied:
        victims: list[RunningNode] = []
        restarts: list[_Background] = []

        def kill() -> None:
            node = self.pick()
            node.kill()
            victims.append(node)
            if self.restart == "during":
                restarts.append(_Background(node.restart))

        how = {"forward_first": self.point.forward_first}
        settings = self.settings
        if settings is None:
            settings = GIVE_UP if self.restart == "after" else OUTLAST_RESTART
        try:
            result = harness.run_job(now, arm=_arm(self.point, kill, **how), settings=settings)
        finally:
            for restart in restarts:
                restart.join()
            for node in victims:
                if not node.alive:
                    node.restart()
        self.healed()
        # A single node that stays dead until the job gave up: the phase says whether a record stays running.
        predictable = self.settings is None and self.restart == "after" and victims
        expected = int(self.phase is Phase.DURING) if predictable else None
        return Applied(result, expected, fired=bool(victims))


@dataclass(frozen=True)
class PauseNode:
    """SIGSTOP the node ``pick`` names when the job's request ``point`` reaches the proxy, and send that
    request on to the stopped node. The job's request timeout is ``PAUSE_TIMEOUT``, so it times out; the node
    gets SIGCONT when the job's next request arrives (``resume="retry"``: the retry, so the node stayed
    stopped past the timeout), or once the job has given up (``"after"``). Everything the job sent is then
    handled, late: the harness waits for those answers before it looks."""

    point: KillPoint
    pick: Pick
    resume: Literal["retry", "after"] = "retry"
    label: str = "the node"

    @property
    def name(self) -> str:
        when = "at the retry" if self.resume == "retry" else "after the run"
        return f"SIGSTOP {self.label} at {self.point}, resumed {when}"

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied:
        paused: list[RunningNode] = []

        def arm(proxy: FaultProxy) -> None:
            def pause() -> None:
                node = self.pick()
                node.pause()
                paused.append(node)
                if self.resume == "retry":
                    proxy.on_request(r".", after=0, action=node.resume, answer=True)

            _arm(self.point, pause, answer=True)(proxy)

        def finish(proxy: FaultProxy) -> None:
            for node in paused:
                node.resume()
            assert proxy.drain(), "Elasticsearch did not answer the requests sent while it was paused"

        settings = {**PAUSE_TIMEOUT, **(GIVE_UP if self.resume == "after" else {"retry_attempts": "6"})}
        try:
            result = harness.run_job(now, arm=arm, finish=finish, settings=settings)
        finally:
            for node in paused:
                node.resume()
        return Applied(result, None, fired=bool(paused))


@dataclass
class RestartNode:
    """Restart ``node`` gracefully (stop, start on the same data and port, wait for ``healed``) in the
    background, starting when the job's request ``point`` reaches the proxy; the runs go on meanwhile.
    Before it arms, it waits for the restart of ``previous`` (the node before it in a rolling restart)."""

    point: KillPoint
    node: RunningNode
    healed: Callable[[], None] = _ignore
    previous: RestartNode | None = None
    restart: _Background | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"restart {self.node.name} from {self.point}"

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied:
        if self.previous is not None:
            self.previous.join()

        def begin() -> None:
            self.restart = _Background(lambda: (self.node.restart(), self.healed()))

        result = harness.run_job(now, arm=_arm(self.point, begin, answer=True))
        return Applied(result, None, fired=self.restart is not None)

    def join(self) -> None:
        if self.restart is not None:
            self.restart.join()


# Settings of a run whose request is answered late: the job gives up on it after this many seconds.
LATE_TIMEOUT = {"es_request_timeout": "2"}


@dataclass(frozen=True)
class LateAnswer:
    """Forward the job's request ``point`` to Elasticsearch at once, so it is applied, and hold the answer
    ``hold`` seconds, past the job's request timeout (``LATE_TIMEOUT``): the job sees a timeout and retries a
    request that was applied already (a bulk ``create`` then gets 409 for what it wrote itself). The run
    goes on: it must complete."""

    point: KillPoint
    hold: float = 4.0

    @property
    def name(self) -> str:
        return f"answer {self.point} after the job's request timeout"

    def apply(self, harness: ChaosHarness, now: datetime) -> Applied:
        fired: list[bool] = []

        def arm(proxy: FaultProxy) -> None:
            proxy.answer_late(self.point.path, seconds=self.hold, after=self.point.nth - 1, method=self.point.method)

        def finish(proxy: FaultProxy) -> None:
            fired.append(proxy.state.injected > 0)

        result = harness.run_job(now, arm=arm, finish=finish, settings=LATE_TIMEOUT)
        return Applied(result, 0, fired=any(fired))


@dataclass(frozen=True)
class Step:
    time: int  # index into the schedule
    fault: Fault | None = None
    must_complete: bool | None = None  # the run must record success (default: when there is no fault)


@dataclass
class Played:
    """What :meth:`ChaosHarness.play` saw."""

    log: list[str] = field(default_factory=list)
    fired: int = 0  # faults that happened
    interrupted: int = 0  # records faulted runs left running, each marked failed by a later run
    completed_under_fault: int = 0  # faulted runs whose records say they completed
    statuses: Counter[str] = field(default_factory=Counter)  # of every record the steps wrote
    results: list[JobResult] = field(default_factory=list)  # of each step's job process
    records: list[list[dict[str, Any]]] = field(default_factory=list)  # the records each step's run wrote


def event_of_alert(hit: Mapping[str, Any]) -> str:
    """An alert named by its event (the first ancestor): a query rule has one alert per event."""
    return str(hit["_source"]["kibana.alert.ancestors"][0]["id"])


def alert_id_of(hit: Mapping[str, Any]) -> str:
    """An alert named by its id: a sequence rule's events may each be in several alerts (shell, blocks)."""
    return str(hit["_id"])


@dataclass
class ChaosHarness:
    """One rule over one events index, run through the refusing proxy; reads back what the runs left."""

    env: JobEnv
    es_url: str
    rule_id: str
    poison: frozenset[str]  # event ids whose alerts Elasticsearch refuses
    schedule: Sequence[datetime]
    key: Callable[[Mapping[str, Any]], str] = event_of_alert  # what names an alert in the comparisons
    reference_prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.reference_prefix = f"{self.env.prefix}-ref"

    @property
    def refused_alerts(self) -> frozenset[str]:
        index = self.env.events_index()
        return frozenset(alert_id(index, event_id, self.rule_id, "default") for event_id in self.poison)

    def _refusing(self, proxy: FaultProxy) -> None:
        proxy.always(r"^/_bulk", refusing_bulk(self.es_url, self.refused_alerts))

    def run_job(
        self,
        now: datetime,
        kill: KillPoint | None = None,
        *,
        arm: Callable[[FaultProxy], None] | None = None,
        finish: Callable[[FaultProxy], None] | None = None,
        settings: Settings | None = None,
    ) -> JobResult:
        """The job as a process, through the refusing proxy (and the kill, if any; ``arm`` adds faults to the
        proxy, ``finish`` runs when the job has ended; ``settings`` are more ``DETECTION_*``). ``--all``:
        every run searches, also a rerun at the same ``--now`` after a run that completed (due-ness has
        tests of its own; here every run is a chance for a fault)."""

        def setup(proxy: FaultProxy) -> None:
            if self.poison:
                self._refusing(proxy)
            if arm is not None:
                arm(proxy)

        env = dict(os.environ) | {f"DETECTION_{key.upper()}": value for key, value in (settings or {}).items()}
        args = ["run", "--all", "--now", iso(now)]
        return run_job(self.es_url, args, kill=kill, env=env, setup=setup, finish=finish)

    def settle(self) -> None:
        """Time passes between runs: what the last run wrote becomes searchable (the index refresh interval,
        which a killed run's records wait for)."""
        indices = [self.env.executions, self.env.alerts, self.env.dead_letters]
        self.env.es.indices.refresh(index=indices, ignore_unavailable=True)

    # -- reading back ------------------------------------------------------------------------------

    def alerted(self, alerts: str | None = None) -> list[str]:
        """Every alert of the rule, by ``key`` (a list: a duplicate would show twice)."""
        index = alerts or self.env.alerts
        self.env.es.indices.refresh(index=index)
        return [self.key(hit) for hit in self._all(index, {"term": {"kibana.alert.rule.rule_id": self.rule_id}})]

    def dead_lettered(self, index: str | None = None) -> list[str]:
        index = index or self.env.dead_letters
        if not self.env.es.indices.exists(index=index):
            return []
        self.env.es.indices.refresh(index=index)
        return [hit["_source"]["event"]["id"] for hit in self._all(index, {"term": {"rule.rule_id": self.rule_id}})]

    def records(self) -> list[dict[str, Any]]:
        if not self.env.es.indices.exists(index=self.env.executions):
            return []
        self.env.es.indices.refresh(index=self.env.executions)
        return [hit["_source"] for hit in self._all(self.env.executions, {"term": {"rule.rule_id": self.rule_id}})]

    def _all(self, index: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.env.es.search(index=index, query=query, size=10_000, track_total_hits=True)
        assert response["hits"]["total"]["value"] < 10_000
        return list(response["hits"]["hits"])

    # -- the clean reference -----------------------------------------------------------------------

    def reference(self) -> list[tuple[set[str], set[str]]]:
        """Alerted and dead-lettered event ids after each scheduled run of a clean reference sequence
        (in-process runs into indices of its own, through the same refusing proxy)."""
        names = {
            "alerts_index": f"{self.reference_prefix}-alerts",
            "executions_index": f"{self.reference_prefix}-executions",
            "dead_letter_index": f"{self.reference_prefix}-deadletter",
        }
        outcome: list[tuple[set[str], set[str]]] = []
        with self._reference_hosts() as hosts:
            self.env.set(es_hosts=hosts, **names)
            try:
                for now in self.schedule:
                    assert self.env.run("--now", iso(now)) in (0, 1)
                    alerted = self.alerted(names["alerts_index"])
                    assert len(alerted) == len(set(alerted))
                    outcome.append((set(alerted), set(self.dead_lettered(names["dead_letter_index"]))))
            finally:
                self.env.set(
                    es_hosts=self.es_url,
                    alerts_index=self.env.alerts,
                    executions_index=self.env.executions,
                    dead_letter_index=self.env.dead_letters,
                )
                self.env.es.options(ignore_status=404).indices.delete_index_template(
                    name=f"{names['alerts_index']}-template"
                )
        return outcome

    @contextlib.contextmanager
    def _reference_hosts(self) -> Iterator[str]:
        """Where the reference runs connect: the refusing proxy when there are poison events."""
        if not self.poison:
            yield self.es_url
            return
        with FaultProxy(self.es_url) as proxy:
            self._refusing(proxy)
            yield proxy.url

    def created_by(self, execution_uuid: str) -> int:
        """How many of the rule's alerts the run ``execution_uuid`` wrote (each alert names its run)."""
        self.env.es.indices.refresh(index=self.env.alerts)
        query = {"term": {"kibana.alert.rule.execution.uuid": execution_uuid}}
        return int(self.env.es.count(index=self.env.alerts, query=query)["count"])

    def interrupted_records(self) -> int:
        return sum(1 for record in self.records() if record["execution"]["message"] == INTERRUPTED_MESSAGE)

    def running_records(self) -> int:
        return sum(1 for record in self.records() if record["execution"]["status"] == "running")

    # -- playing a case ----------------------------------------------------------------------------

    def play(
        self, steps: Sequence[Step], reference: Sequence[tuple[set[str], set[str]]], played: Played | None = None
    ) -> Played:
        """Run the steps; after each, check what holds whatever a fault did (see the module docstring).
        ``played``: what earlier steps of the same case saw, to go on from."""
        played = played or Played()
        for step in steps:
            now = self.schedule[step.time]
            before = {record["execution"]["uuid"] for record in self.records()}
            began = time.monotonic()
            applied = Applied(self.run_job(now), 0) if step.fault is None else step.fault.apply(self, now)
            took = time.monotonic() - began
            self.settle()
            result = applied.result
            mine = [record for record in self.records() if record["execution"]["uuid"] not in before]
            statuses = [record["execution"]["status"] for record in mine]
            ended = "killed" if result.killed else f"exit {result.returncode}"
            what = step.fault.name if step.fault else "clean run"
            played.log.append(f"t{step.time} {what}: {ended}, {statuses} ({took:.0f}s)")
            seen = f"{played.log[-1]}\nafter: {played.log[:-1]}\n{result.stderr[-3000:]}"
            played.statuses.update(statuses)
            played.results.append(result)
            played.records.append(mine)
            played.fired += step.fault is not None and applied.fired
            assert applied.fired or step.fault is None, f"the fault did not happen: {seen}"

            expected_alerts, expected_dead = reference[step.time]
            alerted, dead = self.alerted(), set(self.dead_lettered())
            assert len(alerted) == len(set(alerted)), f"duplicate alerts: {seen}"
            assert set(alerted) <= expected_alerts, f"alerts the reference does not have: {seen}"
            assert dead <= expected_dead and not dead & set(alerted), seen

            left_running = statuses.count("running")
            assert applied.interrupted in (None, left_running), f"{left_running} records left running: {seen}"
            played.interrupted += left_running
            completed = bool(statuses) and all(status in COMPLETED for status in statuses)
            if step.fault is not None and completed:
                played.completed_under_fault += 1
            if step.must_complete or (step.must_complete is None and step.fault is None):
                assert completed and result.returncode in (0, 1), f"the run did not complete: {seen}"
            if not completed:  # never a silent success: a run that did not finish says so
                assert result.killed or result.returncode != 0, f"a run that did not complete exited 0: {seen}"
                continue
            # A run that recorded success vouches for everything up to its time.
            missing = expected_alerts - set(alerted)
            assert not missing, f"a run recorded {statuses} with {len(missing)} alerts missing: {seen}"
            assert dead == expected_dead, f"dead letters {sorted(dead)} instead of {sorted(expected_dead)}: {seen}"
            assert self.running_records() == 0, f"a running record was not marked: {seen}"
            assert self.interrupted_records() == played.interrupted, seen
        return played


def schedule_events(
    schedule: Sequence[datetime], *, matching: int, ties: int, others: int, poison: Sequence[str], seed: int
) -> list[dict[str, Any]]:
    """Events for a schedule of runs of the test rule (``from = "now-15m"``): ``matching`` ones evenly
    spread from the first window's start to the last run, ``ties`` sharing one timestamp in the first
    window (across page boundaries), ``others`` that do not match at seeded times, and one event of
    ``poison`` five minutes before each run (so each in a window of its own)."""
    first = schedule[0] - timedelta(minutes=15)
    span = (schedule[-1] - first).total_seconds()
    events = [cred_event(first + timedelta(seconds=span * i / matching), _id=f"e{i}") for i in range(matching)]
    events += [cred_event(schedule[0] - timedelta(minutes=7), _id=f"tie-{i}") for i in range(ties)]
    rng = random.Random(seed)
    events += [
        cred_event(first + timedelta(seconds=rng.uniform(0, span)), _id=f"other-{i}", event={"kind": "alert"})
        for i in range(others)
    ]
    events += [cred_event(at - timedelta(minutes=5), _id=name) for at, name in zip(schedule, poison, strict=True)]
    return events


@dataclass(frozen=True)
class KillKind:
    """A kind of request the job makes during a run, where a kill can land."""

    name: str
    path: str
    phase: Phase
    max_nth: int = 1
    forwarded_phase: Phase | None = None  # the phase when Elasticsearch handles the request first

    def point(self, rng: random.Random) -> KillJob:
        nth = rng.randint(1, self.max_nth)
        forward = self.forwarded_phase is not None and rng.random() < 0.5
        phase = self.forwarded_phase if forward and self.forwarded_phase else self.phase
        return KillJob(KillPoint(self.name, self.path, nth, forward_first=forward), phase)


def kill_kinds(env: JobEnv) -> tuple[list[KillKind], list[KillKind]]:
    """(kinds that happen only while new alerts or dead letters are written, kinds that happen in every run)."""
    alerts, executions, dead = env.alerts, env.executions, env.dead_letters
    writing = [
        KillKind("bulk", r"^/_bulk", Phase.DURING, max_nth=3, forwarded_phase=Phase.DURING),
        KillKind("dead-letter", rf"^/{dead}/_bulk", Phase.DURING, forwarded_phase=Phase.DURING),
        # Once per pass, after the final records (a killed pass's alerts become visible on their own).
        KillKind("alerts-refresh", rf"^/{alerts}(,{dead})?/_refresh", Phase.AFTER_RECORD),
    ]
    every_run = [
        KillKind("history", rf"^/{executions}/_search", Phase.BEFORE_RECORD),
        # The running records of a batch of rules, in one bulk request (create items).
        KillKind(
            "write-ahead",
            rf"^/{executions}/_bulk\?filter_path=items\.create",
            Phase.BEFORE_RECORD,
            forwarded_phase=Phase.DURING,
        ),
        # The pass validates the rules it runs with the cluster's field types before any rule starts.
        KillKind("field-caps", r"/_field_caps", Phase.BEFORE_RECORD),
        # The first page of every rule of the batch in one _msearch; a window of a full probe is paged.
        KillKind("first-pages", r"^/_msearch", Phase.DURING),
        KillKind("point-in-time", r"/_pit\?", Phase.DURING),
        KillKind("page", r"^/_search", Phase.DURING, max_nth=6),
        KillKind("duplicate-check", rf"^/{alerts},{dead}/_search", Phase.DURING, max_nth=6),
        # The final records of the batch, in one bulk request (index items, each to its record's backing index).
        KillKind(
            "final-record",
            rf"^/{executions}/_bulk\?filter_path=items\.index",
            Phase.DURING,
            forwarded_phase=Phase.AFTER_RECORD,
        ),
        KillKind("pass-refresh", rf"^/{executions}/_refresh", Phase.AFTER_RECORD),
    ]
    return writing, every_run


def aggregation_kill_kinds(env: JobEnv) -> list[KillKind]:
    """Where a pass of threshold and new-terms rules can be killed: their aggregation searches of the events, the
    threshold history read from the alerts, and the requests every pass makes (the log, the records, the
    duplicate check, the alerts' bulk)."""
    writing, every_run = kill_kinds(env)
    kind = {each.name: each for each in (*writing, *every_run)}
    alerts, events = env.alerts, re.escape(env.events_pattern)
    return [
        kind["history"],
        kind["write-ahead"],
        KillKind("aggregation", rf"^/{events}/_search", Phase.DURING, max_nth=3),
        KillKind("alerts-history", rf"^/{alerts}/_search", Phase.DURING, forwarded_phase=Phase.DURING),
        dataclasses.replace(kind["duplicate-check"], max_nth=2),
        dataclasses.replace(kind["bulk"], max_nth=2),
        kind["final-record"],
        kind["pass-refresh"],
    ]
