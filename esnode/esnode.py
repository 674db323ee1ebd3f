"""Build, start and stop the local Elasticsearch node (standard library only).

    python esnode/esnode.py up      # build if needed, start in the background, print the URL last
    python esnode/esnode.py down    # stop it; no JVM is left behind
    python esnode/esnode.py url     # print the URL of the running node, exit 1 if none

The pytest session fixture imports this module and calls :func:`start` with
``watch_stdin=True``, so the node dies with the test run even if pytest is killed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = HERE / "target"
CLASSES = TARGET / "classes"
CLASSPATH_FILE = TARGET / "cp.txt"
STAMP = TARGET / "build.stamp"
DEFAULT_WORKDIR = ROOT / ".esnode"
MAIN_CLASS = "dev.detectionjob.esnode.EsNode"
READY_TIMEOUT_S = 180.0

# The flags Elasticsearch's own launcher passes (server-cli SystemJvmOptions), plus a heap cap.
JVM_FLAGS = [
    "-Xms512m",
    "-Xmx1g",
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


class NodeError(RuntimeError):
    """The node could not be built, started or reached."""


@dataclass
class RunningNode:
    url: str
    process: subprocess.Popen[bytes] | None
    workdir: Path

    def stop(self, timeout: float = 30.0) -> None:
        """Stop a node started with ``watch_stdin`` by closing its standard input."""
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([HERE / "pom.xml", *HERE.glob("src/**/*.java")]):
        digest.update(path.relative_to(HERE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build() -> None:
    """Resolve the jars with Maven and compile the launcher, unless nothing changed."""
    digest = _sources_digest()
    if STAMP.exists() and STAMP.read_text() == digest and CLASSPATH_FILE.exists():
        return
    for tool in ("mvn", "javac", "java"):
        if shutil.which(tool) is None:
            raise NodeError(f"{tool} not found on PATH: the local node needs a JDK 17 and Maven")
    TARGET.mkdir(exist_ok=True)
    resolved = subprocess.run(
        ["mvn", "-B", "-q", "-Dstyle.color=never", "dependency:build-classpath", f"-Dmdep.outputFile={CLASSPATH_FILE}"],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    if resolved.returncode != 0:
        raise NodeError(f"Maven could not resolve the Elasticsearch jars:\n{resolved.stdout}{resolved.stderr}")
    if CLASSES.exists():
        shutil.rmtree(CLASSES)
    CLASSES.mkdir(parents=True)
    sources = [str(p) for p in sorted(HERE.glob("src/**/*.java"))]
    subprocess.run(
        ["javac", "-nowarn", "-d", str(CLASSES), "-cp", CLASSPATH_FILE.read_text().strip(), *sources],
        check=True,
    )
    STAMP.write_text(digest)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the cluster answers ``/_cluster/health`` with yellow or green."""
    try:
        with urllib.request.urlopen(
            f"{url}/_cluster/health?wait_for_status=yellow&timeout={int(timeout)}s", timeout=timeout + 3
        ) as response:
            body = json.load(response)
            return response.status == 200 and body.get("status") in ("yellow", "green")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _wait_ready(workdir: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    port_file = workdir / "http.port"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise NodeError(f"the node exited with code {process.returncode} while starting:\n{tail}")
        if port_file.exists():
            url = f"http://127.0.0.1:{port_file.read_text().strip()}"
            if healthy(url):
                return url
        time.sleep(0.3)
    process.kill()
    raise NodeError(f"the node was not ready within {READY_TIMEOUT_S:.0f}s; see {log}")


def start(workdir: Path, *, watch_stdin: bool) -> RunningNode:
    """Build if needed, start a node with its data under ``workdir`` and wait until it is ready."""
    build()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "http.port").unlink(missing_ok=True)
    log = workdir / "node.log"
    classpath = f"{CLASSES}{os.pathsep}{CLASSPATH_FILE.read_text().strip()}"
    command = ["java", *JVM_FLAGS, "-cp", classpath, MAIN_CLASS, str(workdir), str(_free_port())]
    if watch_stdin:
        command.append("--watch-stdin")
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if watch_stdin else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=not watch_stdin,
        )
    url = _wait_ready(workdir, process, log)
    return RunningNode(url=url, process=process, workdir=workdir)


def _pid_file(workdir: Path) -> Path:
    return workdir / "node.pid"


def _running_pid(workdir: Path) -> int | None:
    try:
        pid = int(_pid_file(workdir).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def current_url(workdir: Path = DEFAULT_WORKDIR) -> str | None:
    """URL of the background node started by ``up``, if it runs and is healthy."""
    if _running_pid(workdir) is None:
        return None
    port_file = workdir / "http.port"
    if not port_file.exists():
        return None
    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    return url if healthy(url) else None


def up(workdir: Path = DEFAULT_WORKDIR) -> str:
    """Start the background node unless it already runs; return its URL."""
    url = current_url(workdir)
    if url is not None:
        return url
    down(workdir)
    node = start(workdir, watch_stdin=False)
    assert node.process is not None
    _pid_file(workdir).write_text(str(node.process.pid))
    return node.url


def down(workdir: Path = DEFAULT_WORKDIR, timeout: float = 30.0) -> bool:
    """Stop the background node; return True if one was running."""
    pid = _running_pid(workdir)
    _pid_file(workdir).unlink(missing_ok=True) if pid is None else None
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _pid_file(workdir).unlink(missing_ok=True)
    (workdir / "http.port").unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "url", "build"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "up":
            started = time.monotonic()
            url = up(args.workdir)
            print(f"local Elasticsearch ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
            print(url)
        elif args.command == "down":
            print("stopped" if down(args.workdir) else "not running")
        else:
            url = current_url(args.workdir)
            if url is None:
                print("not running", file=sys.stderr)
                return 1
            print(url)
    except (NodeError, subprocess.CalledProcessError) as exc:
        print(f"esnode: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
