"""The chaos harness: a rule, its events and a schedule of runs; faults applied to some of the runs; the
outcome compared with a clean reference run of the same schedule.

A case is a list of :class:`Step`: run the job once at one of the schedule's times, under a fault or
none. A fault is any object with ``name`` and ``apply(harness, now) -> Applied``; :class:`KillJob`
(SIGKILL the job process when a chosen request reaches the proxy) is the one used today. Faults on the
node (SIGKILL and restart on the same port, SIGSTOP past the request timeout, a multi-node cluster)
are further fault kinds with the same interface: they run the job (``harness.run_job``) while doing
something to the node, and say whether the run may have left an interrupted record.

Every run goes through a fault proxy that refuses the alerts of the *poison* events (a 400 item error,
as for a document Elasticsearch cannot parse), in the reference run too, so that dead-lettering is part
of every case.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from job.run.execlog import INTERRUPTED_MESSAGE
from job.run.ids import alert_id
from tests.faultproxy import FaultProxy, refusing_bulk
from tests.integration.run.conftest import JobEnv, iso
from tests.jobprocess import JobResult, KillPoint, run_job


class Phase(enum.Enum):
    """Where a kill lands, seen from the killed run's execution record."""

    BEFORE_RECORD = "no record"  # before its running record was stored: it searched nothing
    DURING = "interrupted"  # its running record stays: the next run must mark it failed
    AFTER_RECORD = "finished"  # its final record was stored


@dataclass(frozen=True)
class Applied:
    """What one faulted run did."""

    result: JobResult
    interrupted: int  # execution records it left running (a later run must mark them failed)

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


@dataclass(frozen=True)
class Step:
    time: int  # index into the schedule
    fault: Fault | None = None


@dataclass
class ChaosHarness:
    """One rule over one events index, run through the refusing proxy; reads back what the runs left."""

    env: JobEnv
    es_url: str
    rule_id: str
    poison: frozenset[str]  # event ids whose alerts Elasticsearch refuses
    schedule: Sequence[datetime]
    reference_prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.reference_prefix = f"{self.env.prefix}-ref"

    @property
    def refused_alerts(self) -> frozenset[str]:
        index = self.env.events_index()
        return frozenset(alert_id(index, event_id, self.rule_id, "default") for event_id in self.poison)

    def _refusing(self, proxy: FaultProxy) -> None:
        proxy.always(r"^/_bulk", refusing_bulk(self.es_url, self.refused_alerts))

    def run_job(self, now: datetime, kill: KillPoint | None = None) -> JobResult:
        """The job as a process, through the refusing proxy (and the kill, if any). ``--all``: every run
        searches, also a rerun at the same ``--now`` after a run that completed (due-ness has tests of its
        own; here every run is a chance for a kill)."""
        return run_job(self.es_url, ["run", "--all", "--now", iso(now)], kill=kill, setup=self._refusing)

    def settle(self) -> None:
        """Time passes between runs: what the last run wrote becomes searchable (the index refresh interval,
        which a killed run's records wait for)."""
        indices = [self.env.executions, self.env.alerts, self.env.dead_letters]
        self.env.es.indices.refresh(index=indices, ignore_unavailable=True)

    # -- reading back ------------------------------------------------------------------------------

    def alerted(self, alerts: str | None = None) -> list[str]:
        """The event id of every alert of the rule (a list: a duplicate would show twice)."""
        index = alerts or self.env.alerts
        self.env.es.indices.refresh(index=index)
        return [
            hit["_source"]["kibana.alert.ancestors"][0]["id"]
            for hit in self._all(index, {"term": {"kibana.alert.rule.rule_id": self.rule_id}})
        ]

    def dead_lettered(self, index: str | None = None) -> list[str]:
        index = index or self.env.dead_letters
        if not self.env.es.indices.exists(index=index):
            return []
        self.env.es.indices.refresh(index=index)
        return [hit["_source"]["event"]["id"] for hit in self._all(index, {"term": {"rule.rule_id": self.rule_id}})]

    def records(self) -> list[dict[str, Any]]:
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
        with FaultProxy(self.es_url) as proxy:
            self._refusing(proxy)
            self.env.set(es_hosts=proxy.url, **names)
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

    def interrupted_records(self) -> int:
        return sum(1 for record in self.records() if record["execution"]["message"] == INTERRUPTED_MESSAGE)

    def running_records(self) -> int:
        return sum(1 for record in self.records() if record["execution"]["status"] == "running")


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
        # The final records of the batch, in one bulk request (index items).
        KillKind(
            "final-record",
            rf"^/{executions}/_bulk\?filter_path=items\.index",
            Phase.DURING,
            forwarded_phase=Phase.AFTER_RECORD,
        ),
        KillKind("pass-refresh", rf"^/{executions}/_refresh", Phase.AFTER_RECORD),
    ]
    return writing, every_run
