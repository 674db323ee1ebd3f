"""A process-wide request to stop, set by SIGTERM or SIGINT and read by every rule run of the process.

The signal handler only records the request (:func:`request`); the work stops where it is safe:

* a rule run asks :func:`requested` after each page (the runner's ``should_stop``) and stops paging;
  the bulk request in flight finishes, the point in time is closed, and its record ends ``failed``
  with ``Run interrupted by SIGTERM`` and no ``searched_to`` (:func:`check` raises
  :class:`RunInterrupted`), so the next run searches that window again;
* a pass starts no further rule once a stop is requested (those rules get no record at all);
* the command exits with :func:`exit_code`: 143 for SIGTERM, 130 for SIGINT (128 + the signal number).

Thread-safe without a lock: the flag is one module variable, set and read with single (atomic)
operations, so rules running in parallel threads all see it, and the signal handler never waits on a
lock another frame of its own thread may hold. Signal handlers can only be installed from the main
thread (:func:`handled`); any thread may read the flag.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from job.errors import JobError

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested: str | None = None


class RunInterrupted(JobError):
    """A stop was requested while a rule ran: its record ends ``failed`` with this message."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(interrupted_message(signal_name))


def interrupted_message(signal_name: str) -> str:
    return f"Run interrupted by {signal_name}"


def request(signal_name: str) -> None:
    """Ask every rule run of this process to stop (the first request's signal is kept)."""
    global _requested
    if _requested is None:
        _requested = signal_name


def requested() -> str | None:
    """The signal that asked this process to stop (``SIGTERM``, ``SIGINT``), or None."""
    return _requested


def check() -> None:
    """Raise :class:`RunInterrupted` when a stop was requested."""
    name = requested()
    if name is not None:
        raise RunInterrupted(name)


def reset() -> None:
    """Forget a request (a new command in the same process, tests)."""
    global _requested
    _requested = None


def exit_code(signal_name: str) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + int(signal.Signals[signal_name])


@contextmanager
def handled(on_signal: Callable[[str], None] = request) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT call ``on_signal`` with the signal's name (default: :func:`request`)
    instead of ending the process; the previous handlers come back afterwards. Starts and ends with no request
    (read :func:`requested` inside the block)."""
    reset()

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        on_signal(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        reset()
