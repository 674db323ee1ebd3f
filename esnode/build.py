"""Which Elasticsearch release, which JDK, and the compiled launcher for it (standard library only).

Each release is built in its own folder, ``esnode/target/<version>``: the classpath Maven resolves
(``cp.txt``) and the launcher compiled against it (``classes/``), rebuilt only when the sources,
the release or the JDK change. The ES|QL node of a release (``esql=True``: the same launcher, plus
the x-pack plugins that serve ``POST /_query``, Maven profile ``esql``) is built beside it, in
``esnode/target/<version>-esql``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "target"

# The last 8.x line; runs on Java 17. The default: make demo, make es-up, a plain pytest.
ES8_VERSION = "8.19.21"
# The newest 9.x release whose three artifacts (org.elasticsearch:elasticsearch,
# org.elasticsearch.plugin:transport-netty4, org.elasticsearch.test:framework) and all their
# dependencies resolve on Maven Central: 9.5.5 and 9.5.6 are not there. Needs Java 21 or newer.
ES9_VERSION = "9.5.4"
DEFAULT_VERSION = ES8_VERSION
# The plugins the ES|QL node loads from the classpath besides netty4, in this order: x-pack core (the
# license, async results), then ES|QL's core, KQL (the KQL() function) and ES|QL itself, which extends
# the first two. Their jars come with the pom's esql profile.
ESQL_PLUGINS = (
    "org.elasticsearch.xpack.core.XPackPlugin",
    "org.elasticsearch.xpack.esql.core.plugin.EsqlCorePlugin",
    "org.elasticsearch.xpack.kql.KqlPlugin",
    "org.elasticsearch.xpack.esql.plugin.EsqlPlugin",
)
# Neither is needed to serve _query (basic is the self-generated default, and x-pack security is not
# loaded); both are said out loud so that a change of either default cannot change the node.
ESQL_SETTINGS = (("xpack.license.self_generated.type", "basic"), ("xpack.security.enabled", "false"))
TESTED_VERSIONS = (ES8_VERSION, ES9_VERSION)
_ALIASES = {"8": ES8_VERSION, "9": ES9_VERSION}

# Where JDKs are installed when nothing says which one to use (Linux distributions, macOS).
JVM_FOLDERS = ("/usr/lib/jvm", "/usr/lib64/jvm", "/usr/java", "/opt/java", "/Library/Java/JavaVirtualMachines")


class NodeError(RuntimeError):
    """A node could not be built, started or reached."""


def resolve_version(version: str | None = None) -> str:
    """The exact release for ``version`` (None or "": ``ES_VERSION`` or the default; "8"/"9": the pins)."""
    chosen = (version or os.environ.get("ES_VERSION") or "").strip() or DEFAULT_VERSION
    chosen = _ALIASES.get(chosen, chosen)
    if not re.fullmatch(r"\d+\.\d+\.\d+", chosen):
        raise NodeError(f"ES_VERSION must be 8, 9 or an exact release like {ES8_VERSION}, not {chosen!r}")
    return chosen


def check_esql(version: str) -> None:
    """NodeError unless ``version`` has an ES|QL node: Maven Central has the 8.x x-pack plugins, not 9.x's."""
    if int(version.split(".")[0]) != 8:
        raise NodeError(
            f"no local ES|QL node for Elasticsearch {version}: Maven Central has no complete set of the x-pack "
            f"plugins that serve ES|QL past 8.x (at {ES9_VERSION} none of x-pack-core, x-pack-esql, x-pack-esql-core "
            f"and x-pack-esql-compute); the ES|QL node runs {ES8_VERSION}"
        )


def required_java(version: str) -> int:
    """The lowest Java major release that runs this Elasticsearch release."""
    return 21 if int(version.split(".")[0]) >= 9 else 17


# --- finding a JDK -------------------------------------------------------------------------------


def _java_major(home: Path) -> int | None:
    """Major release of the JDK at ``home`` (None if it is not a JDK with javac)."""
    if not (home / "bin" / "javac").is_file() or not (home / "bin" / "java").is_file():
        return None
    text = ""
    with contextlib.suppress(OSError):
        text = (home / "release").read_text(errors="replace")
    found = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.MULTILINE)
    if found is None:
        try:
            probe = subprocess.run([str(home / "bin" / "java"), "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = re.search(r'version "([^"]+)"', probe.stderr)
        if found is None:
            return None
    parts = found.group(1).split(".")
    major = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    digits = re.match(r"\d+", major)
    return int(digits.group()) if digits else None


def _installed_homes() -> Iterator[Path]:
    for folder in JVM_FOLDERS:
        base = Path(folder)
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            yield entry / "Contents" / "Home" if (entry / "Contents" / "Home").is_dir() else entry


def find_java(version: str) -> tuple[Path, int]:
    """(JDK home, major release) to build and run ``version`` with; NodeError if there is none."""
    need = required_java(version)
    explicit = os.environ.get("ES_JAVA_HOME")
    if explicit:
        major = _java_major(Path(explicit))
        if major is None or major < need:
            raise NodeError(f"ES_JAVA_HOME={explicit} is not a JDK {need} or newer (Elasticsearch {version} needs it)")
        return Path(explicit), major
    preferred: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        preferred.append(Path(os.environ["JAVA_HOME"]))
    javac = shutil.which("javac")
    if javac:
        preferred.append(Path(javac).resolve().parent.parent)
    for home in preferred:
        major = _java_major(home)
        if major is not None and major >= need:
            return home, major
    found = [(major, home) for home in _installed_homes() if (major := _java_major(home)) is not None]
    suitable = sorted((m, h) for m, h in found if m >= need)
    if not suitable:
        seen = ", ".join(f"{h} ({m})" for m, h in found) or "none"
        raise NodeError(
            f"Elasticsearch {version} needs a JDK {need} or newer; set ES_JAVA_HOME to one. JDKs found: {seen}"
        )
    major, home = suitable[-1]
    return home, major


# --- building ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """A compiled launcher for one release (with the ES|QL plugins or not), and the JDK that runs it."""

    version: str
    java_home: Path
    java_major: int
    esql: bool = False

    @property
    def folder(self) -> Path:
        return TARGET / (f"{self.version}-esql" if self.esql else self.version)

    @property
    def classpath(self) -> str:
        jars = (self.folder / "cp.txt").read_text().strip()
        return f"{self.folder / 'classes'}{os.pathsep}{jars}"

    @property
    def java(self) -> str:
        return str(self.java_home / "bin" / "java")


def _sources_digest(version: str, java_home: Path, esql: bool) -> str:
    digest = hashlib.sha256(f"{version}\0{java_home}\0{'esql' if esql else ''}\0".encode())
    for path in sorted([HERE / "pom.xml", *HERE.glob("src/**/*.java")]):
        digest.update(path.relative_to(HERE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(version: str | None = None, *, esql: bool = False) -> Build:
    """Resolve the jars with Maven and compile the launcher for one release, unless nothing changed.
    ``esql``: the ES|QL node's build (8.x only)."""
    version = resolve_version(version)
    if esql:
        check_esql(version)
    java_home, major = find_java(version)
    result = Build(version, java_home, major, esql)
    stamp, classpath_file, classes = result.folder / "build.stamp", result.folder / "cp.txt", result.folder / "classes"
    digest = _sources_digest(version, java_home, esql)
    if stamp.exists() and stamp.read_text() == digest and classpath_file.exists():
        return result
    if shutil.which("mvn") is None:
        raise NodeError("mvn not found on PATH: the local node needs Maven to fetch the Elasticsearch jars")
    result.folder.mkdir(parents=True, exist_ok=True)
    resolved = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-Dstyle.color=never",
            f"-Des.version={version}",
            *(["-Pesql"] if esql else []),
            "dependency:build-classpath",
            f"-Dmdep.outputFile={classpath_file}",
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    if resolved.returncode != 0:
        raise NodeError(
            f"Maven could not resolve the Elasticsearch {version}{' ES|QL' if esql else ''} jars:\n"
            f"{resolved.stdout}{resolved.stderr}"
        )
    if classes.exists():
        shutil.rmtree(classes)
    classes.mkdir(parents=True)
    sources = [str(p) for p in sorted(HERE.glob("src/**/*.java"))]
    compiled = subprocess.run(
        [str(java_home / "bin" / "javac"), "-nowarn", "-d", str(classes), "-cp", classpath_file.read_text().strip()]
        + sources,
        capture_output=True,
        text=True,
    )
    if compiled.returncode != 0:
        raise NodeError(f"the launcher does not compile against Elasticsearch {version}:\n{compiled.stderr}")
    stamp.write_text(digest)
    return result
