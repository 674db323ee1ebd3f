"""The restricted Pod Security Standard (and the baseline it includes), checked field by field.

Written from the standard's published controls (Kubernetes 1.30): what ``pod-security.kubernetes.io/
enforce: restricted`` would refuse to admit. Returns one message per violation, empty when admitted.
"""

from __future__ import annotations

from typing import Any

_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def _baseline(spec: dict[str, Any]) -> list[str]:
    problems = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    pod_sc = spec.get("securityContext", {})
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"volume {volume['name']}: hostPath")
    problems += [
        f"sysctl {sysctl['name']} is not in the safe set"
        for sysctl in pod_sc.get("sysctls", [])
        if sysctl["name"] not in _SAFE_SYSCTLS
    ]
    contexts = [("pod", pod_sc)] + [(f"container {c['name']}", c.get("securityContext", {})) for c in _containers(spec)]
    for where, sc in contexts:
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            problems.append(f"{where}: seccompProfile Unconfined")
        if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
            problems.append(f"{where}: appArmorProfile Unconfined")
        selinux = sc.get("seLinuxOptions", {})
        if selinux.get("type", "") not in _SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            problems.append(f"{where}: seLinuxOptions {selinux}")
    for container in _containers(spec):
        sc = container.get("securityContext", {})
        name = container["name"]
        if sc.get("privileged"):
            problems.append(f"container {name}: privileged")
        extra = set(sc.get("capabilities", {}).get("add", [])) - _BASELINE_CAPABILITIES
        if extra:
            problems.append(f"container {name}: adds capabilities {sorted(extra)}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"container {name}: procMount {sc['procMount']}")
        problems += [f"container {name}: hostPort" for port in container.get("ports", []) if port.get("hostPort")]
    return problems


def _restricted(spec: dict[str, Any]) -> list[str]:
    problems = []
    pod_sc = spec.get("securityContext", {})
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0")
    for container in _containers(spec):
        sc = container.get("securityContext", {})
        name = container["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"container {name}: runAsNonRoot is not true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"container {name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"container {name}: seccompProfile {seccomp} (RuntimeDefault or Localhost needed)")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"container {name}: capabilities.drop lacks ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"container {name}: adds capabilities other than NET_BIND_SERVICE")
    return problems


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Why the restricted profile would refuse this pod spec; empty when it would admit it."""
    return _baseline(spec) + _restricted(spec)
