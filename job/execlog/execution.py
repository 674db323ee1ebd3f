"""The execution log: one document per rule run, and the only state the job keeps.

A run's document is written twice: with status ``running`` before anything is searched (the
write-ahead record, with the planned window, a lease and the process running it), and again at
the end with the final status. Nothing is kept on local disk, so a CronJob pod can die at any
moment: the next run finds the abandoned ``running`` record, marks it ``failed``, and plans its own
window from the log (:mod:`job.execlog.history`).

A rule type may keep a small **state** from one run to the next (:class:`TypeState`: a threshold rule's signal
history, say): the final record of a run that ended without error carries it under ``type_state`` (stored, not
indexed: ``enabled: false``), at most :data:`STATE_MAX_BYTES` of JSON, and the planning history hands it to
the next run when it can be trusted (:mod:`job.execlog.history`). A state too large is not kept, with a
warning; the type then starts the next run without it, as after a run that did not finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from job.execlog.lease import Runner
from job.execlog.metrics import RunMetrics, metrics_mapping
from job.text.jsoncodec import document_bytes
from job.window import Gap, Window, isoformat

Status = Literal["running", "succeeded", "partial failure", "failed"]
# ``execution.type``: a run of the schedule (``run``, ``schedule``) or one window of ``backfill``. Planning and
# due-ness read only scheduled records (records written before the field existed are scheduled).
Kind = Literal["scheduled", "backfill"]
BACKFILL: Kind = "backfill"
# Kibana's order, used to sort runs by how bad they went.
STATUS_ORDER: dict[str, int] = {"succeeded": 0, "running": 15, "partial failure": 20, "failed": 30}
SUCCESS_MESSAGE = "Rule execution completed successfully"
RUNNING_MESSAGE = "Rule execution started; no completion recorded yet"
INTERRUPTED_MESSAGE = "Run interrupted: no completion was recorded"
# The largest state a rule type may keep in a record (its JSON); a larger one is not kept.
STATE_MAX_BYTES = 1024 * 1024

EXECUTIONS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "space_id": {"type": "keyword"},
        "rule": {
            "properties": {
                "rule_id": {"type": "keyword"},
                "name": {"type": "keyword"},
                "version": {"type": "long"},
                "source": {"type": "keyword"},
            }
        },
        "execution": {
            "properties": {
                "uuid": {"type": "keyword"},
                "start": {"type": "date"},
                "end": {"type": "date"},
                "scheduled_at": {"type": "date"},
                "status": {"type": "keyword"},
                "status_order": {"type": "long"},
                "message": {"type": "text"},
                "warnings": {"type": "text"},
                "errors": {"type": "text"},
                "lease_expires": {"type": "date"},
                "host": {"type": "keyword"},
                "pid": {"type": "long"},
                "interrupted_by": {"type": "keyword"},
                "type": {"type": "keyword"},
            }
        },
        "window": {
            "properties": {
                "from": {"type": "date"},
                "to": {"type": "date"},
                "searched_to": {"type": "date"},
                "covered_from": {"type": "date"},
            }
        },
        "metrics": metrics_mapping(),
        # What the rule's type keeps for its next run ({type, value}): stored in _source, never indexed.
        "type_state": {"type": "object", "enabled": False},
    },
}


@dataclass(frozen=True, slots=True)
class TypeState:
    """What a rule type keeps from one run for the next: the type's name (a rule whose type changed never reads
    another type's state) and a JSON object only the type reads."""

    type: str
    value: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}

    @classmethod
    def from_document(cls, document: Any) -> TypeState | None:
        """The state a record holds, or None (none, or not of this shape: a hand-edited or foreign record)."""
        if not isinstance(document, dict):
            return None
        kind, value = document.get("type"), document.get("value")
        return cls(kind, value) if isinstance(kind, str) and isinstance(value, dict) else None


def state_too_large(size: int) -> str:
    return (
        f"The rule's state ({size} bytes) is larger than {STATE_MAX_BYTES} bytes and was not kept; "
        "the next run starts without it"
    )


@dataclass
class Execution:
    """What one rule run did. Filled in by the runner; its document is ``running`` until ``end`` is set."""

    rule_id: str
    rule_name: str
    rule_version: int
    rule_source: str
    space_id: str
    uuid: str
    start: datetime
    end: datetime | None = None
    window: Window | None = None
    searched_to: datetime | None = None
    gap: Gap | None = None
    lease_expires: datetime | None = None
    runner: Runner | None = None
    scheduled_at: datetime | None = None  # the run's logical time (its ``now``); the rule's cadence counts from it
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    kind: Kind = "scheduled"
    # What the rule's type keeps for its next run (set by :meth:`keep_state` on a run that ended without error).
    type_state: TypeState | None = None
    # The concrete index holding the record once it is written (not part of the document): the final write
    # goes there, so a rollover of the execution log in between never makes a second document.
    record_index: str | None = None

    @property
    def status(self) -> Status:
        """``running`` until the end is set; then Kibana's order: errors make it failed, warnings a partial
        failure."""
        if self.end is None:
            return "running"
        if self.errors:
            return "failed"
        return "partial failure" if self.warnings else "succeeded"

    @property
    def message(self) -> str:
        if self.end is None:
            return RUNNING_MESSAGE
        if self.errors:
            return ", ".join(self.errors)
        return ", ".join(self.warnings) if self.warnings else SUCCESS_MESSAGE

    def keep_state(self, rule_type: str, value: dict[str, Any] | None) -> None:
        """Keep the type's state for the next run, when there is one and it is small enough (else a warning)."""
        self.type_state = None
        if value is None:
            return
        state = TypeState(rule_type, value)
        size = len(document_bytes(state.to_document()))
        self.metrics.state_bytes = size
        if size > STATE_MAX_BYTES:
            self.warnings.append(state_too_large(size))
            return
        self.type_state = state

    @property
    def covered_from(self) -> datetime | None:
        """For a completed run, the start of what it vouches for: searched from here to ``searched_to``, or
        reported as its gap."""
        if self.searched_to is None or self.window is None:
            return None
        return self.gap.start if self.gap is not None else self.window.start

    def to_document(self) -> dict[str, Any]:
        covered_from = self.covered_from
        return {
            "@timestamp": isoformat(self.end or self.start),
            "space_id": self.space_id,
            "rule": {
                "rule_id": self.rule_id,
                "name": self.rule_name,
                "version": self.rule_version,
                "source": self.rule_source,
            },
            "execution": {
                "uuid": self.uuid,
                "start": isoformat(self.start),
                "end": isoformat(self.end) if self.end else None,
                "scheduled_at": isoformat(self.scheduled_at) if self.scheduled_at else None,
                "status": self.status,
                "status_order": STATUS_ORDER[self.status],
                "message": self.message,
                "warnings": list(self.warnings),
                "errors": list(self.errors),
                "lease_expires": isoformat(self.lease_expires) if self.lease_expires else None,
                "host": self.runner.host if self.runner else None,
                "pid": self.runner.pid if self.runner else None,
                "type": self.kind,
            },
            "window": {
                "from": isoformat(self.window.start) if self.window else None,
                "to": isoformat(self.window.end) if self.window else None,
                "searched_to": isoformat(self.searched_to) if self.searched_to else None,
                "covered_from": isoformat(covered_from) if covered_from else None,
            },
            "metrics": self.metrics.to_document(),
            **({"type_state": self.type_state.to_document()} if self.type_state is not None else {}),
        }


def interrupted_update(marked_at: datetime, by: str) -> dict[str, Any]:
    """The partial document that turns an abandoned ``running`` record into a ``failed`` one."""
    return {
        "@timestamp": isoformat(marked_at),
        "execution": {
            "end": isoformat(marked_at),
            "status": "failed",
            "status_order": STATUS_ORDER["failed"],
            "message": INTERRUPTED_MESSAGE,
            "errors": [INTERRUPTED_MESSAGE],
            "interrupted_by": by,
        },
    }
