"""The OCI spec Docker hands runc for `docker run busybox`, as berth's defaults.

Sources: moby daemon/pkg/oci/defaults.go (mounts, devices, masked/read-only paths, namespaces),
daemon/pkg/oci/caps/defaults.go (capabilities), daemon/oci_linux.go (sysctls for a private netns),
summarised in notes/runtime.md §1.3-1.7. berthd builds every container's spec on top of this.
"""

from __future__ import annotations

import glob
import os
from typing import Any

# What config.json says: 1.0.2-dev, as runc 1.1's `spec` writes, because peers judge it (crun 1.8
# refuses newer spec versions); nothing berth writes needs a later one.
SPEC_VERSION = "1.0.2-dev"

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/devices/virtual/powercap",
    "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Docker's device cgroup rules: deny everything, then allow the default nodes (and deny fuse).
DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]


def default_mounts(shm_size: int = 64 << 20) -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def masked_paths() -> list[str]:
    """Docker's list plus every thermal_throttle dir this host has (GHSA-6fw5-f8r9-fgfm)."""
    return MASKED_PATHS + sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle"))


def cgroup_v2_host() -> bool:
    try:
        return os.statvfs("/sys/fs/cgroup").f_fsid != 0 and os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    except OSError:
        return False


def default_spec(args: list[str] | None = None, *, seccomp: bool = True, terminal: bool = False) -> dict[str, Any]:
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if cgroup_v2_host():
        namespaces.append({"type": "cgroup"})  # Docker's default cgroupns mode is private on v2
    caps = list(DOCKER_CAPS)
    spec: dict[str, Any] = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": [DEFAULT_PATH_ENV],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "berth",
        "mounts": default_mounts(),
        "linux": {
            "resources": {"devices": [dict(d) for d in DEVICE_RULES]},
            "namespaces": namespaces,
            "maskedPaths": masked_paths(),
            "readonlyPaths": list(READONLY_PATHS),
            "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"},
        },
    }
    if seccomp:
        from berth.runtime.seccomp import default_oci

        spec["linux"]["seccomp"] = default_oci(caps)
    return spec


def rootless(spec: dict[str, Any]) -> dict[str, Any]:
    """runc spec --rootless: a user namespace mapping the caller to root, no cgroup or mknod needs."""
    uid, gid = os.getuid(), os.getgid()
    linux = spec["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)
    linux.pop("sysctl", None)
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] not in ("cgroup", "mqueue")]
    for m in spec["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
        if m["type"] == "sysfs":
            m.update({"type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    return spec
