"""Run ``detection-job`` as a real process behind the fault proxy, and SIGKILL it at a chosen request; or
start it (:func:`started_job`) and signal it while it runs.

A kill point names a kind of request (a path pattern and method) and which occurrence of it kills
the job: before Elasticsearch sees it, or after Elasticsearch handled it but before the job reads
the answer. Counting requests (not time) makes every kill land at the same place on every run.

For a cluster (``es_url`` lists several comma-separated node URLs) each node gets its own proxy and the
job all of them; the proxies share their faults and counts, so a kill point counts requests to any node.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from tests.faultproxy import FaultProxy, ProxyState


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL the job when the ``nth`` (1-based) request matching ``path`` (a regex) reaches the proxy."""

    name: str
    path: str
    nth: int
    method: str | None = None
    forward_first: bool = False  # Elasticsearch handles that request; the job dies before it reads the answer

    def __str__(self) -> str:
        return f"{self.name}#{self.nth}{' (handled)' if self.forward_first else ''}"


@dataclass(frozen=True)
class JobResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_job(
    es_url: str,
    args: Sequence[str],
    *,
    kill: KillPoint | None = None,
    env: Mapping[str, str] | None = None,
    setup: Callable[[FaultProxy], None] | None = None,
    finish: Callable[[FaultProxy], None] | None = None,
    timeout: float = 300,
) -> JobResult:
    """Run ``python -m job ARGS`` with ``DETECTION_*`` from ``env`` (default: this process's environment);
    ``setup`` prepares the proxy (standing answers, more faults) before the job starts, ``finish`` runs
    once the job has ended, while the proxy still forwards what the job sent."""
    environment = dict(os.environ if env is None else env)
    process: list[subprocess.Popen[str]] = []

    def kill_job() -> None:
        os.kill(process[0].pid, signal.SIGKILL)

    state = ProxyState()
    with contextlib.ExitStack() as stack:
        proxies = [stack.enter_context(FaultProxy(url.strip(), state)) for url in es_url.split(",")]
        proxy = proxies[0]
        environment["DETECTION_ES_HOSTS"] = ",".join(each.url for each in proxies)
        if setup is not None:
            setup(proxy)
        if kill is not None:
            proxy.on_request(
                kill.path, after=kill.nth - 1, action=kill_job, method=kill.method, forward_first=kill.forward_first
            )
        process.append(
            subprocess.Popen(
                [sys.executable, "-m", "job", *args],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        stdout, stderr = process[0].communicate(timeout=timeout)
        if finish is not None:
            finish(proxy)
    return JobResult(process[0].returncode, stdout, stderr)


class RunningJob:
    """A job process that is still running: send it signals, wait for lines of its output, then finish it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(process.stderr, self._stderr, True), daemon=True),
            threading.Thread(target=self._read, args=(process.stdout, self._stdout, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str] | None, into: list[str], watched: bool) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)
            if watched:
                self._lines.put(line)
        if watched:
            self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 300) -> str:
        """The first line of stderr (from now on) that contains ``text``; fails if the job ends without one.
        The timeout only guards against a hung job: nothing here depends on how fast the job is."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout}s:\n{''.join(self._stderr)}") from None
            if line is None:
                raise AssertionError(f"the job ended without a line with {text!r}:\n{''.join(self._stderr)}")
            if text in line:
                return line

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 300) -> JobResult:
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return JobResult(self.process.returncode, "".join(self._stdout), "".join(self._stderr))


@contextmanager
def started_job(
    es_url: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    setup: Callable[[FaultProxy], None] | None = None,
) -> Iterator[RunningJob]:
    """Start ``python -m job ARGS`` behind a fault proxy (prepared by ``setup``) and hand it over while it runs;
    it is killed if the block leaves it running."""
    environment = dict(os.environ if env is None else env)
    with FaultProxy(es_url) as proxy:
        environment["DETECTION_ES_HOSTS"] = proxy.url
        if setup is not None:
            setup(proxy)
        process = subprocess.Popen(
            [sys.executable, "-m", "job", *args],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield RunningJob(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
