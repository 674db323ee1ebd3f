"""Start a rendered pod's container as a local process, the way the kubelet would start it.

The Secrets and ConfigMaps the container mounts are written under a temporary folder at their
rendered mount paths, laid out as the kubelet lays out such a volume (the files in a hidden
timestamped folder, a ``..data`` link to it, one link per top-level entry), with the rendered
file modes. Every setting or argument naming a path under a mount is rewritten under that folder.
The command is the image's ENTRYPOINT (read from the Dockerfile) plus the container's args; the
environment is the image's ENV plus the container's env, and nothing from the test's own.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
_KUBELET_PAYLOAD = "..2026_01_01_00_00_00.000000001"


@dataclass(frozen=True)
class Image:
    """What the final stage of the Dockerfile sets: ENTRYPOINT, ENV, WORKDIR and USER."""

    entrypoint: list[str]
    env: dict[str, str]
    workdir: str
    user: str


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, rest), continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def read_image(dockerfile: Path = DOCKERFILE) -> Image:
    steps = instructions(dockerfile.read_text())
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    entrypoint: list[str] = []
    env: dict[str, str] = {}
    workdir, user = "/", "root"
    for keyword, rest in steps[last_from:]:
        if keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif keyword == "WORKDIR":
            workdir = rest
        elif keyword == "USER":
            user = rest
    return Image(entrypoint, env, workdir, user)


@dataclass
class Cluster:
    """Objects the pod reads that the release itself does not create: existing Secrets and ConfigMaps."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_rendered(self, docs: list[dict[str, Any]]) -> None:
        """The release's own ConfigMaps and Secrets, as installing it would create them."""
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                self.config_maps[doc["metadata"]["name"]] = dict(doc.get("data") or {})
            elif doc["kind"] == "Secret":
                self.secrets[doc["metadata"]["name"]] = dict(doc.get("stringData") or {})


@dataclass(frozen=True)
class LocalPod:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    mounts: dict[str, Path]  # mount path in the pod -> folder on this machine


def _payload(source: dict[str, Any], data: dict[str, str], what: str) -> dict[str, tuple[str, int]]:
    """File path -> (content, mode) of a Secret or ConfigMap volume, as its items select them."""
    default_mode = int(source.get("defaultMode", 0o644))
    items = source.get("items")
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            raise AssertionError(f"{what} has no key {item['key']!r}: the kubelet would not start the pod")
        path = item["path"]
        if path.startswith("/") or ".." in path.split("/"):
            raise AssertionError(f"{what}: item path {path!r} is not a relative path inside the volume")
        files[path] = (data[item["key"]], int(item.get("mode", default_mode)))
    return files


def _write_volume(folder: Path, files: dict[str, tuple[str, int]]) -> None:
    """The kubelet's layout: payload in a hidden folder, ``..data`` pointing at it, links at the top."""
    payload = folder / _KUBELET_PAYLOAD
    for path, (content, mode) in files.items():
        target = payload / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
    (folder / "..data").symlink_to(_KUBELET_PAYLOAD)
    for top in {path.split("/")[0] for path in files}:
        (folder / top).symlink_to(f"..data/{top}")


def _volume_files(volume: dict[str, Any], cluster: Cluster) -> dict[str, tuple[str, int]] | None:
    """The files of a volume; None for an empty folder (emptyDir)."""
    if "emptyDir" in volume:
        return None
    if "secret" in volume:
        source = volume["secret"]
        name = source["secretName"]
        if name not in cluster.secrets:
            raise AssertionError(f"volume {volume['name']}: no Secret {name!r} in the cluster")
        return _payload(source, cluster.secrets[name], f"Secret {name}")
    if "configMap" in volume:
        source = volume["configMap"]
        name = source["name"]
        if name not in cluster.config_maps:
            raise AssertionError(f"volume {volume['name']}: no ConfigMap {name!r} in the cluster")
        return _payload(source, cluster.config_maps[name], f"ConfigMap {name}")
    raise AssertionError(f"volume {volume['name']}: this test cannot lay out {sorted(volume)}")


def _env_value(entry: dict[str, Any], cluster: Cluster) -> str:
    if "value" in entry:
        return str(entry["value"])
    source = entry["valueFrom"]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return cluster.secrets[ref["name"]][ref["key"]]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return cluster.config_maps[ref["name"]][ref["key"]]
    raise AssertionError(f"env {entry['name']}: this test cannot resolve {sorted(source)}")


def _relocate(value: str, mounts: dict[str, Path]) -> str:
    """A path under one of the pod's mounts, moved under the local folder; anything else unchanged."""
    for mount_path, local in sorted(mounts.items(), key=lambda item: -len(item[0])):
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return str(local) + value[len(mount_path) :]
    return value


def prepare(
    pod_spec: dict[str, Any],
    container_name: str,
    cluster: Cluster,
    root: Path,
    bin_dir: Path,
    image: Image | None = None,
) -> LocalPod:
    """The container ``container_name`` of ``pod_spec``, ready to run under ``root``."""
    image = image or read_image()
    [container] = [c for c in pod_spec["containers"] if c["name"] == container_name]
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        local = root / mount["mountPath"].lstrip("/")
        local.mkdir(parents=True)
        files = _volume_files(volumes[mount["name"]], cluster)
        if files is not None:
            _write_volume(local, files)
        mounts[mount["mountPath"]] = local
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOSTNAME": "pod-0"}
    env.update({key: _relocate(value, mounts) for key, value in image.env.items()})
    for entry in container.get("env", []):
        env[entry["name"]] = _relocate(_env_value(entry, cluster), mounts)
    command = container.get("command") or image.entrypoint
    argv = [_relocate(part, mounts) for part in [*command, *container.get("args", [])]]
    cwd = root / image.workdir.lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)
    return LocalPod(argv, env, cwd, mounts)
