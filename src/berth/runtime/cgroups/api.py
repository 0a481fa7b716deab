"""The interface the runtime and the daemon program against (kept apart: it imports typing)."""

from __future__ import annotations

from typing import Protocol


class CgroupManager(Protocol):
    """One container's cgroup. Build with `manager_for` (from cgroupsPath) or `manager_from_paths`."""

    version: str  # "v1" | "v2"
    # The resolved path inside the hierarchy, as /proc/<pid>/cgroup shows it ("/docker/<id>");
    # fed back to manager_for it names the same cgroup (on v1: when every hierarchy resolved
    # alike, which absolute cgroupsPaths always do; otherwise keep `paths`).
    path: str
    dir: str  # the absolute directory of `path` (v1: in the devices hierarchy, runc's reference)
    root: str  # the cgroup mount root this manager was made for ("/sys/fs/cgroup")
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
