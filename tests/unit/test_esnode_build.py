"""esnode's choice of release and JDK (no JVM is started: the JDKs here are folders made by the test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esnode import build
from esnode.build import ES8_VERSION, ES9_VERSION, ESQL_PLUGINS, NodeError, find_java, required_java, resolve_version
from esnode.esnode import esql_wanted
from esnode.node import NodeSpec


@pytest.mark.parametrize(
    ("given", "environment", "expected"),
    [
        (None, None, ES8_VERSION),
        ("", None, ES8_VERSION),
        (None, "", ES8_VERSION),
        ("8", None, ES8_VERSION),
        ("9", None, ES9_VERSION),
        (None, "9", ES9_VERSION),
        (" 9.5.2 ", None, "9.5.2"),
        ("8.19.21", "9", "8.19.21"),  # the argument wins over ES_VERSION
    ],
)
def test_resolve_version(
    given: str | None, environment: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if environment is None:
        monkeypatch.delenv("ES_VERSION", raising=False)
    else:
        monkeypatch.setenv("ES_VERSION", environment)
    assert resolve_version(given) == expected


@pytest.mark.parametrize("given", ["nine", "9.5", "9.5.4-SNAPSHOT", "../9.5.4", "10"])
def test_resolve_version_refuses_anything_but_a_major_or_an_exact_release(given: str) -> None:
    with pytest.raises(NodeError, match="ES_VERSION must be"):
        resolve_version(given)


@pytest.mark.parametrize(("version", "java"), [(ES8_VERSION, 17), (ES9_VERSION, 21), ("10.0.0", 21)])
def test_required_java(version: str, java: int) -> None:
    assert required_java(version) == java


def _jdk(home: Path, release: str | None, *, javac: bool = True) -> Path:
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    if javac:
        (home / "bin" / "javac").write_text("")
    if release is not None:
        (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{release}"\n')
    return home


@pytest.mark.parametrize(
    ("release", "javac", "major"),
    [("17.0.15", True, 17), ("21", True, 21), ("25.0.3", True, 25), ("1.8.0_392", True, 8), ("21.0.2", False, None)],
)
def test_java_major_reads_the_release_file(tmp_path: Path, release: str, javac: bool, major: int | None) -> None:
    assert build._java_major(_jdk(tmp_path / "jdk", release, javac=javac)) == major


@pytest.fixture
def no_java_hints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ES_JAVA_HOME, JAVA_HOME or javac on PATH; the JVM folder searched is an empty one of the test's."""
    for name in ("ES_JAVA_HOME", "JAVA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    folder = tmp_path / "jvm"
    folder.mkdir()
    monkeypatch.setattr(build, "JVM_FOLDERS", (str(folder),))
    return folder


def test_the_newest_installed_jdk_that_is_new_enough_is_found(no_java_hints: Path) -> None:
    _jdk(no_java_hints / "old", "17.0.1")
    _jdk(no_java_hints / "mid", "21.0.4")
    _jdk(no_java_hints / "new", "25.0.3")
    assert find_java(ES9_VERSION) == (no_java_hints / "new", 25)


def test_java_home_is_used_when_new_enough(no_java_hints: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _jdk(no_java_hints / "new", "25.0.3")
    home = _jdk(no_java_hints.parent / "chosen", "21.0.4")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert find_java(ES9_VERSION) == (home, 21)
    old = _jdk(no_java_hints.parent / "old", "17.0.1")
    monkeypatch.setenv("JAVA_HOME", str(old))  # too old for 9.x: the installed JDKs are searched instead
    assert find_java(ES9_VERSION) == (no_java_hints / "new", 25)
    assert find_java(ES8_VERSION) == (old, 17)


def test_es_java_home_wins_and_must_be_new_enough(no_java_hints: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _jdk(no_java_hints / "new", "25.0.3")
    old = _jdk(no_java_hints.parent / "old", "17.0.1")
    monkeypatch.setenv("ES_JAVA_HOME", str(old))
    assert find_java(ES8_VERSION) == (old, 17)
    with pytest.raises(NodeError, match=r"ES_JAVA_HOME=.* is not a JDK 21 or newer"):
        find_java(ES9_VERSION)


def test_no_suitable_jdk_is_one_clear_error(no_java_hints: Path) -> None:
    _jdk(no_java_hints / "old", "17.0.1")
    with pytest.raises(NodeError, match=r"needs a JDK 21 or newer; set ES_JAVA_HOME.*old \(17\)"):
        find_java(ES9_VERSION)


# --- the ES|QL node ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [ES9_VERSION, "9.0.0", "10.1.2"])
def test_the_esql_node_is_refused_past_8x_before_anything_is_built(version: str) -> None:
    with pytest.raises(NodeError, match=r"no local ES\|QL node for Elasticsearch .*none of x-pack-core"):
        build.build(version, esql=True)


@pytest.mark.parametrize(("esql", "folder"), [(False, ES8_VERSION), (True, f"{ES8_VERSION}-esql")])
def test_the_esql_build_has_a_folder_of_its_own(esql: bool, folder: str) -> None:
    built = build.Build(ES8_VERSION, Path("/jdk"), 17, esql)
    assert built.folder == build.TARGET / folder


def test_the_esql_build_digest_differs_so_neither_build_replaces_the_other() -> None:
    assert build._sources_digest(ES8_VERSION, Path("/jdk"), True) != build._sources_digest(
        ES8_VERSION, Path("/jdk"), False
    )


@pytest.mark.parametrize("esql", [False, True])
def test_the_node_command_names_the_esql_plugins_only_for_the_esql_node(esql: bool, tmp_path: Path) -> None:
    command = NodeSpec(tmp_path, ES8_VERSION, esql=esql).command(_Prebuilt(ES8_VERSION, esql), watch_stdin=True)
    assert ("--plugins" in command) is esql
    if esql:
        assert command[command.index("--plugins") + 1] == ",".join(ESQL_PLUGINS)
        assert command[command.index("--settings") + 1] == (
            "xpack.license.self_generated.type=basic,xpack.security.enabled=false"
        )
    assert command[-1] == "--watch-stdin"


class _Prebuilt(build.Build):
    """A build whose classpath is not read from disk (nothing is built)."""

    def __init__(self, version: str, esql: bool) -> None:
        super().__init__(version, Path("/jdk"), 17, esql)

    @property
    def classpath(self) -> str:
        return "classes"


@pytest.mark.parametrize(
    ("value", "wanted"),
    [("1", True), ("true", True), (" YES ", True), ("", False), ("0", False), ("false", False), ("no", False)],
)
def test_esql_from_the_environment(value: str, wanted: bool) -> None:
    assert esql_wanted(value) is wanted


def test_esql_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="ESQL must be 1 or 0"):
        esql_wanted("maybe")
