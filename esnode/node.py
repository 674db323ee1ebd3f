"""One local Elasticsearch node's JVM: start, wait until it serves, kill, pause, resume, restart.

See esnode.py for the API as the tests use it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esnode.build import ESQL_PLUGINS, ESQL_SETTINGS, Build, NodeError, build, resolve_version

MAIN_CLASS = "dev.detectionjob.esnode.EsNode"
READY_TIMEOUT_S = 180.0

# The flags Elasticsearch's own launcher passes (server-cli SystemJvmOptions).
JVM_FLAGS = [
    "-XX:+UseSerialGC",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Djna.nosys=true",
    "-Dfile.encoding=UTF-8",
    "-Des.set.netty.runtime.available.processors=false",
]
# Lucene 10 calls the foreign-function API; newer JDKs warn at every start without this.
JVM_FLAGS_21 = ["--enable-native-access=ALL-UNNAMED"]
SINGLE_NODE_HEAP_MB = 1024
CLUSTER_NODE_HEAP_MB = 512


# --- talking to a node ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, path: str, timeout: float = 10.0, *, also: tuple[int, ...] = ()) -> Any:
    """``GET url+path`` and the decoded JSON body, for 2xx and the statuses in ``also``.

    Raises OSError (urllib's errors, HTTPError for other statuses) or ValueError (not JSON).
    """
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code not in also:
            raise
        with exc:
            return json.load(exc)


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the cluster answers ``/_cluster/health`` with yellow or green through ``url``."""
    try:
        body = get_json(url, f"/_cluster/health?wait_for_status=yellow&timeout={int(timeout)}s", timeout + 3)
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") in ("yellow", "green") and not body.get("timed_out")


def has_license(url: str, timeout: float = 2.0) -> bool:
    """True once x-pack has generated the node's license (some time after the cluster is healthy; until
    then ``GET /_license`` answers 404 and license-checked features such as ES|QL may refuse)."""
    try:
        body = get_json(url, "/_license", timeout)
    except (OSError, ValueError):
        return False
    found = body.get("license") if isinstance(body, dict) else None
    return isinstance(found, dict) and found.get("status") == "active"


def read_port(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


# --- one node ------------------------------------------------------------------------------------


@dataclass
class NodeSpec:
    """Everything needed to start one node again exactly as before."""

    workdir: Path
    version: str
    name: str = "es0"
    http_port: int = 0
    transport_port: int = 0
    seed_hosts: tuple[str, ...] = ()  # empty: a single-node cluster
    initial_masters: tuple[str, ...] = ()  # used only while the node has no data yet
    heap_mb: int = SINGLE_NODE_HEAP_MB
    esql: bool = False  # with the x-pack plugins that serve ES|QL (8.x only)

    def command(self, built: Build, *, watch_stdin: bool) -> list[str]:
        heap = [f"-Xms{min(512, self.heap_mb)}m", f"-Xmx{self.heap_mb}m"]
        flags = [*heap, *JVM_FLAGS, *(JVM_FLAGS_21 if built.java_major >= 21 else [])]
        command = [built.java, *flags, "-cp", built.classpath, MAIN_CLASS, str(self.workdir)]
        command += ["--http-port", str(self.http_port), "--name", self.name]
        if self.seed_hosts:
            command += ["--transport-port", str(self.transport_port), "--seed-hosts", ",".join(self.seed_hosts)]
            if self.initial_masters and not (self.workdir / "data").exists():
                command += ["--initial-masters", ",".join(self.initial_masters)]
        if self.esql:
            command += ["--plugins", ",".join(ESQL_PLUGINS)]
            command += ["--settings", ",".join(f"{key}={value}" for key, value in ESQL_SETTINGS)]
        if watch_stdin:
            command.append("--watch-stdin")
        return command


class RunningNode:
    """One node's JVM, which the tests can kill, pause, resume and restart on the same port."""

    def __init__(self, spec: NodeSpec, *, watch_stdin: bool) -> None:
        self.spec = spec
        self.watch_stdin = watch_stdin
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec.http_port}"

    @property
    def port(self) -> int:
        return self.spec.http_port

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def workdir(self) -> Path:
        return self.spec.workdir

    @property
    def log(self) -> Path:
        return self.spec.workdir / "node.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __repr__(self) -> str:
        state = "paused" if self.paused else "alive" if self.alive else "down"
        return f"<RunningNode {self.name} {self.version} {self.url} {state}>"

    def launch(self) -> None:
        """Start the JVM without waiting for it (``wait_ready`` does)."""
        if self.alive:
            raise NodeError(f"node {self.name} is already running")
        built = build(self.spec.version, esql=self.spec.esql)
        self.spec.workdir.mkdir(parents=True, exist_ok=True)
        (self.spec.workdir / "config").mkdir(exist_ok=True)
        port_file = self.spec.workdir / "http.port"
        if not self.spec.http_port:
            previous = read_port(port_file) if (self.spec.workdir / "data").exists() else None
            self.spec.http_port = previous or free_port()
        port_file.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.spec.command(built, watch_stdin=self.watch_stdin),
                stdin=subprocess.PIPE if self.watch_stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.spec.workdir,
                start_new_session=not self.watch_stdin,
            )
        self.paused = False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the node has bound its port and the cluster answers through it (the ES|QL node: and its
        license is there)."""
        deadline = time.monotonic() + timeout
        port_file = self.spec.workdir / "http.port"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                raise NodeError(f"node {self.name} exited with code {code} while starting:\n{tail}")
            if port_file.exists() and healthy(self.url) and (not self.spec.esql or has_license(self.url)):
                return
            time.sleep(0.3)
        self.kill()
        raise NodeError(f"node {self.name} was not ready within {timeout:.0f}s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed beyond what Elasticsearch already made durable."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the node keeps its connections and answers nothing until ``resume``."""
        if not self.alive or self.process is None:
            raise NodeError(f"node {self.name} is not running")
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.alive and self.process is not None:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 30.0) -> bool:
        """Graceful shutdown (closing standard input, or SIGTERM); SIGKILL after ``timeout``. False when it had
        to be killed."""
        if self.process is None:
            return True
        if self.alive:
            self.resume()
            if self.process.stdin is not None:
                self.process.stdin.close()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return False
        elif self.process.stdin is not None:
            self.process.stdin.close()
        return True

    def restart(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start again with the same data and ports (stopping gracefully first if alive); wait until it serves."""
        self.stop()
        self.launch()
        self.wait_ready(timeout)


def start(
    workdir: Path,
    *,
    watch_stdin: bool,
    version: str | None = None,
    heap_mb: int = SINGLE_NODE_HEAP_MB,
    esql: bool = False,
) -> RunningNode:
    """Build if needed, start a single-node cluster with its data under ``workdir``; return it ready.

    An existing data folder is reused, and so is the HTTP port that node had. ``esql``: the node also
    serves ES|QL (``POST /_query``; 8.x only, NodeError otherwise).
    """
    spec = NodeSpec(Path(workdir), resolve_version(version), heap_mb=heap_mb, esql=esql)
    node = RunningNode(spec, watch_stdin=watch_stdin)
    node.launch()
    node.wait_ready()
    return node


@contextlib.contextmanager
def running_node(workdir: Path, *, version: str | None = None, esql: bool = False) -> Iterator[RunningNode]:
    """A node that dies with the calling process and is stopped when the block ends."""
    node = start(workdir, watch_stdin=True, version=version, esql=esql)
    try:
        yield node
    finally:
        node.stop()
