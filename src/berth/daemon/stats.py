"""`docker stats` frames: berth's cgroup numbers in the exact shape moby sends (API 1.50, moby v28).

moby's daemon/stats_unix.go turns containerd's cgroup metrics into a StatsResponse: v1 keeps a fixed
set of memory.stat keys and all eight blkio lists, v2 a different key set and only byte counts (op
"read"/"write"); the memory limit is capped at the host's RAM; `system_cpu_usage` and `online_cpus`
come from /proc/stat, sampled right after the cgroup. The CLI then computes (stats_helpers.go):
CPU % = Δtotal_usage / Δsystem_cpu_usage × online_cpus × 100 (Δ against `precpu_stats`),
MEM = usage − total_inactive_file (v1) or − inactive_file (v2), MEM % = MEM / limit.
Go's `omitempty` rules are kept: zero numbers and empty maps vanish, structs never do.
"""

from __future__ import annotations

import functools
import time
from typing import Any

JSON = dict[str, Any]
ZERO_TIME = "0001-01-01T00:00:00Z"
_CLOCK_TICKS = 100  # moby hard-codes USER_HZ (C.sysconf(_SC_CLK_TCK) is 100 on Linux)

# moby statsV1: the memory.stat keys it copies (containerd's cgroup1 MemoryStat), zero when absent
V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault", "pgmajfault",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "hierarchical_memory_limit",
    "hierarchical_memsw_limit", "total_cache", "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty",
    "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault", "total_inactive_anon",
    "total_active_anon", "total_inactive_file", "total_active_file", "total_unevictable",
)
# moby statsV2 ("not compatible with v1")
V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault", "workingset_activate",
    "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
)
BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
              "sectors_recursive")
_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
               "tx_dropped")


def rfc3339nano(ns: int) -> str:
    """Go's time.Time in JSON (RFC3339Nano, UTC): the fraction's trailing zeros are trimmed."""
    sec, frac = divmod(ns, 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def system_cpu_usage(path: str = "/proc/stat") -> tuple[int, int]:
    """(the host's CPU time in ns, online CPUs) as moby reads them: the first seven fields of the
    "cpu" line in clock ticks × 1e9 / 100, and the number of "cpuN" lines."""
    usage = ncpu = 0
    with open(path, "rb") as f:
        for raw in f:
            if len(raw) < 4 or not raw.startswith(b"cpu"):
                break  # the cpu lines come first, as glibc assumes too
            if raw[3:4] == b" ":
                parts = raw.split()
                if len(parts) < 8:
                    raise ValueError("invalid number of cpu fields")
                usage = sum(int(v) for v in parts[1:8]) * 1_000_000_000 // _CLOCK_TICKS
            elif raw[3:4].isdigit():
                ncpu += 1
    return usage, ncpu


@functools.cache
def machine_memory() -> int:
    """The host's RAM in bytes (MemTotal), the cap moby puts on a container's memory limit."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def network_stats(pid: int, *, skip: tuple[str, ...] = ("lo",)) -> dict[str, JSON]:
    """Per-interface counters of the network namespace `pid` lives in (/proc/<pid>/net/dev), in
    moby's NetworkStats shape; loopback left out, as libnetwork only reports endpoints."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except (FileNotFoundError, ProcessLookupError):
        return {}
    out: dict[str, JSON] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        v = rest.split()
        if not name or name in skip or len(v) < 16:
            continue
        nums = [int(x) for x in v]
        out[name] = dict(zip(_NET_FIELDS, (*nums[0:4], *nums[8:12]), strict=True))
    return out


def _nonzero(d: JSON) -> JSON:
    return {k: v for k, v in d.items() if v}


def _cpu_stats(cg: JSON, system_ns: int, online: int) -> JSON:
    usage = cg.get("cpu_usage") or {}
    thr = cg.get("throttling_data") or {}
    cpu_usage: JSON = {"total_usage": int(usage.get("total_usage", 0))}
    if usage.get("percpu_usage"):
        cpu_usage["percpu_usage"] = [int(x) for x in usage["percpu_usage"]]
    cpu_usage["usage_in_kernelmode"] = int(usage.get("usage_in_kernelmode", 0))
    cpu_usage["usage_in_usermode"] = int(usage.get("usage_in_usermode", 0))
    out: JSON = {"cpu_usage": cpu_usage}
    if system_ns:
        out["system_cpu_usage"] = int(system_ns)
    if online:
        out["online_cpus"] = int(online)
    out["throttling_data"] = {"periods": int(thr.get("periods", 0)),
                              "throttled_periods": int(thr.get("throttled_periods", 0)),
                              "throttled_time": int(thr.get("throttled_time", 0))}
    return out


def _zero_cpu() -> JSON:
    return _cpu_stats({}, 0, 0)


def _memory_stats(mem: JSON, v2: bool, cap: int) -> JSON:
    if not mem:
        return {}
    raw = mem.get("stats") or {}
    keys = V2_MEMORY_KEYS if v2 else V1_MEMORY_KEYS
    limit = int(mem.get("limit", 0))
    if cap > 0 and limit > cap:  # "if the container does not set memory limit, use the machineMemory"
        limit = cap
    return _nonzero({
        "usage": int(mem.get("usage", 0)),
        "max_usage": 0 if v2 else int(mem.get("max_usage", 0)),  # v2: "MaxUsage is not supported"
        "stats": {k: int(raw.get(k, 0)) for k in keys},
        "failcnt": int(mem.get("failcnt", 0)),
        "limit": limit,
    })


def _blkio_stats(blk: JSON, v2: bool) -> JSON:
    if v2:  # only byte counts, as "read"/"write"; the other lists are unsupported (null)
        entries = [{**e, "op": str(e.get("op", "")).lower()} for e in blk.get("io_service_bytes_recursive") or []]
        return {k: (entries or None) if k == "io_service_bytes_recursive" else None for k in BLKIO_KEYS}
    return {k: [dict(e) for e in blk.get(k) or []] for k in BLKIO_KEYS}


def _is_v2(cg: JSON) -> bool:
    """v1's memory.stat has the hierarchical totals ("total_*"); v2's has none of them."""
    raw = (cg.get("memory_stats") or {}).get("stats") or {}
    return bool(raw) and not any(k.startswith(("total_", "hierarchical_")) for k in raw)


def frame(cgroup_stats: JSON, *, prev: JSON | None, read_time_ns: int, pids_current: int | None = None,
          net: dict[str, JSON] | None = None, online_cpus: int, system_cpu_usage_ns: int, name: str, id: str,
          cgroup_version: str | None = None, machine_memory_bytes: int | None = None) -> JSON:
    """One stats frame as moby sends it. `cgroup_stats` is a cgroup manager's `stats()`; `prev` the
    frame sent before (its cpu_stats and read become precpu_stats and preread), None for the first;
    `net` per-interface counters (`network_stats`), None when the container has no network;
    `pids_current` overrides the cgroup's count (a runtime without the pids controller counts
    processes). The version ("v1"/"v2") is inferred from memory.stat when not given."""
    v2 = cgroup_version == "v2" if cgroup_version else _is_v2(cgroup_stats)
    cap = machine_memory() if machine_memory_bytes is None else machine_memory_bytes
    pids = dict(cgroup_stats.get("pids_stats") or {})
    if pids_current is not None:
        pids["current"] = pids_current
    out: JSON = {
        "name": name if name.startswith("/") else "/" + name,
        "id": id,
        "read": rfc3339nano(read_time_ns),
        "preread": prev["read"] if prev else ZERO_TIME,
        "pids_stats": _nonzero({"current": int(pids.get("current", 0)), "limit": int(pids.get("limit", 0))}),
        "blkio_stats": _blkio_stats(cgroup_stats.get("blkio_stats") or {}, v2),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_stats(cgroup_stats.get("cpu_stats") or {}, system_cpu_usage_ns, online_cpus),
        "precpu_stats": prev["cpu_stats"] if prev else _zero_cpu(),
        "memory_stats": _memory_stats(cgroup_stats.get("memory_stats") or {}, v2, cap),
    }
    if net:
        out["networks"] = net
    return out


def empty_frame(name: str, id: str) -> JSON:
    """What moby sends for a container that is not running (stream=0): only the name and the ID."""
    return {
        "name": name if name.startswith("/") else "/" + name, "id": id, "read": ZERO_TIME, "preread": ZERO_TIME,
        "pids_stats": {}, "blkio_stats": dict.fromkeys(BLKIO_KEYS), "num_procs": 0, "storage_stats": {},
        "cpu_stats": _zero_cpu(), "precpu_stats": _zero_cpu(), "memory_stats": {},
    }


def sample(manager: Any, *, pid: int | None, name: str, id: str, prev: JSON | None = None,
           network: bool = True) -> JSON:
    """Measure now and build the frame: the cgroup (`manager.stats()`), then the host's CPU time right
    after it (moby: "sample system CPU usage close to container usage"), then the network of `pid`
    (the container's init) unless `network` is false (NetworkDisabled)."""
    cg = manager.stats()
    read_ns = time.time_ns()
    system_ns, ncpu = system_cpu_usage()
    net = network_stats(pid) if network and pid else None
    return frame(cg, prev=prev, read_time_ns=read_ns, net=net, online_cpus=ncpu, system_cpu_usage_ns=system_ns,
                 name=name, id=id, cgroup_version=getattr(manager, "version", None))
