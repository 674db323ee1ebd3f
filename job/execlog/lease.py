"""Who runs a rule, and whether a run that never recorded its end is still alive.

A run's record carries a lease (``execution.lease_expires``, ``DETECTION_RUN_TIMEOUT`` after its
start) and its process (host name and pid). A ``running`` record is *abandoned* when its lease
has expired, or when it was written on this host by a process that no longer exists (a pid that
is gone, or this very process when the run is not one of its live runs). Host names must tell
processes apart: in Kubernetes every pod has its own.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Runner:
    """The process running a rule: host name and pid."""

    host: str
    pid: int


def this_runner() -> Runner:
    return Runner(host=socket.gethostname(), pid=os.getpid())


_live: set[str] = set()
_live_lock = threading.Lock()


def started(execution_uuid: str) -> None:
    """Note a run of this process as live (from its first record until its last)."""
    with _live_lock:
        _live.add(execution_uuid)


def finished(execution_uuid: str) -> None:
    with _live_lock:
        _live.discard(execution_uuid)


def is_live_here(execution_uuid: str) -> bool:
    with _live_lock:
        return execution_uuid in _live


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def abandoned(
    *,
    execution_uuid: str,
    lease_expires: datetime | None,
    runner: Runner | None,
    me: Runner,
    now: datetime,
) -> bool:
    """Whether a ``running`` record belongs to a run that can no longer finish (``now``: the wall clock)."""
    if lease_expires is None or lease_expires <= now:
        return True
    if runner is None or runner.host != me.host:
        return False
    if runner.pid == me.pid:
        return not is_live_here(execution_uuid)
    return not pid_alive(runner.pid)
