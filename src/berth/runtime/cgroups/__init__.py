"""cgroups v1 and v2 for berth's OCI runtime (cgroupfs driver only, as runc's `fs` and `fs2`).

The OCI runtime process imports this on every container start: stdlib only, nothing heavy.

    m = manager_for(spec["linux"].get("cgroupsPath"), container_id)
    m.create(); m.apply(spec["linux"].get("resources") or {}); m.add_pid(init_pid)

Errors: a value the kernel refuses raises `CgroupWriteError` (an InvalidArgument) worded as runc's
("failed to write \"99\": write /sys/fs/cgroup/cpuset/x/cpuset.cpus: invalid argument") and the
whole `apply` is undone; filesystem failures the user did not cause raise `CgroupError` (500)."""

from __future__ import annotations

import os
from typing import Protocol

from berth.errors import InvalidArgument

from .fs import CgroupError, CgroupWriteError
from .paths import cgroup_mounts, inner_path, mount_fstype, v1_paths, v2_path


class CgroupManager(Protocol):
    version: str  # "v1" | "v2"
    path: str  # v2: the cgroup directory; v1: its directory in the devices hierarchy (runc's reference)
    paths: dict[str, str]  # subsystem -> directory ("" is the cgroup2 directory, also on hybrid v1)
    warnings: list[str]  # settings skipped because the kernel cannot do them (Docker prints these)

    def create(self) -> None:
        """Make the cgroup: every v1 hierarchy berth joins, or the one v2 directory."""

    def apply(self, resources: dict) -> None:
        """OCI `linux.resources`, all or nothing; also `update`. Absent fields are left alone."""

    def add_pid(self, pid: int) -> None: ...

    def procs_files(self) -> list[str]:
        """The cgroup.procs files, for an init that opens them early and joins late."""

    def pids(self) -> list[int]:
        """Every pid in the cgroup, recursively."""

    def exists(self) -> bool: ...

    def freeze(self) -> None:
        """Pause; returns once the kernel reports the cgroup frozen."""

    def thaw(self) -> None: ...

    def is_frozen(self) -> bool: ...

    def kill_all(self, sig: int) -> None:
        """Signal every process (cgroup.kill for SIGKILL where available)."""

    def stats(self) -> dict:
        """Docker's stats numbers, in its field names, with the kernel's memory.stat keys:
        {"memory_stats": {usage, max_usage, failcnt, limit, stats, [swap_usage, swap_limit]},
         "cpu_stats": {"cpu_usage": {total_usage, percpu_usage, usage_in_kernelmode,
         usage_in_usermode}, "throttling_data": {periods, throttled_periods, throttled_time}},
         "pids_stats": {current, limit}, "blkio_stats": {"io_service_bytes_recursive":
         [{major, minor, op, value}], "io_serviced_recursive": [...]}}.
        Times are ns. An unlimited memory limit is 2**64-1 on v2 (the kernel's own huge number on
        v1); an unlimited pids limit is 0 (as runc). memory_stats is {} without a memory controller."""

    def oom_kill_count(self) -> int: ...

    def destroy(self) -> None:
        """Remove the cgroup(s), children first; idempotent; retries briefly while tasks exit."""


def detect(root: str = "/sys/fs/cgroup") -> str:
    """ "v2" if `root` is a cgroup2 mount, else "v1" (a hybrid host counts as v1)."""
    return "v2" if mount_fstype(root) == "cgroup2" else "v1"


def manager_for(
    cgroups_path: str | None,
    container_id: str,
    *,
    root: str = "/sys/fs/cgroup",
    version: str | None = None,
) -> CgroupManager:
    """The manager for a container's cgroup, resolving `cgroupsPath` as runc's cgroupfs driver:
    absolute paths under the hierarchy roots, relative ones under the runtime's own cgroup (v1) or
    its parent (v2), and the container id (relative) when the path is absent."""
    version = version or detect(root)
    try:
        inner = inner_path(cgroups_path, container_id)
    except ValueError as e:
        raise InvalidArgument(f"invalid cgroupsPath {cgroups_path!r}: {e}") from None
    if version == "v2":
        from .v2 import V2Manager

        return V2Manager(v2_path(inner, root), root)
    if version == "v1":
        from .v1 import V1Manager

        mounts = cgroup_mounts()
        try:
            paths = v1_paths(inner, root, mounts)
        except FileNotFoundError as e:
            raise CgroupError(str(e)) from None
        mountpoints: dict[str, str] = {}
        under = os.path.normpath(root) + "/"
        for m in mounts:
            if not m.mountpoint.startswith(under):
                continue
            for opt in m.options:
                mountpoints.setdefault(opt, m.mountpoint)
        return V1Manager(paths, mountpoints)
    raise InvalidArgument(f"unknown cgroup version {version!r}")


__all__ = ["CgroupError", "CgroupManager", "CgroupWriteError", "detect", "manager_for"]
