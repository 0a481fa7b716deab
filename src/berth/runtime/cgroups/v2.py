"""cgroup v2: one directory in the unified tree, as runc's fs2 driver."""

from __future__ import annotations

import errno
import os
import time

from berth.errors import InvalidArgument, NotFound

from . import devfilter, devices, fs
from .base import ManagerBase
from .resources import (
    blkio_to_io_weight,
    check_unsupported,
    get_cpu_list,
    get_int,
    pids_value,
    section,
    shares_to_weight,
    swap_to_v2,
    swappiness,
    throttle_devices,
    v2_num,
    weight_devices,
)

# Delegated down to the container's cgroup when its ancestors offer them: limits and stats need
# them. runc enables every available controller; berth leaves hugetlb, rdma and misc (which it sets
# no limits for) as the host has them, so a create never changes a hybrid host's cgroup2 root.
_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")
_UNLIMITED = 2**64 - 1


class V2Manager(ManagerBase):
    version = "v2"

    def __init__(self, directory: str, root: str) -> None:
        self.root = os.path.normpath(root)
        self.dir = os.path.normpath(directory)
        self.path = "/" + os.path.relpath(self.dir, self.root)
        self.paths = {"": self.dir}
        self.warnings: list[str] = []

    def _file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # --- lifecycle --------------------------------------------------------------------------
    def create(self) -> None:
        """mkdir every missing level, enabling controllers in each parent's subtree_control first
        (a child only gets the controllers its parent delegates). Levels made here are removed
        again if a later one fails."""
        made: list[str] = []
        cur = self.root
        try:
            for part in os.path.relpath(self.dir, self.root).split("/"):
                _enable(cur, _CONTROLLERS)
                cur = os.path.join(cur, part)
                try:
                    os.mkdir(cur)
                    made.append(cur)
                except FileExistsError:
                    pass
        except OSError as e:
            for d in reversed(made):
                fs.remove_tree(d)
            raise fs.CgroupError(f"mkdir {cur}: {fs.go_strerror(e.errno or errno.EIO)}") from None

    def destroy(self) -> None:
        err = fs.remove_tree(self.dir, time.monotonic() + fs.DESTROY_RETRY)
        if err:
            raise fs.CgroupError(f"Failed to remove paths: map[:{self.dir}: {fs.go_strerror(err)}]")

    def pids(self) -> list[int]:
        return fs.all_pids(self.dir)

    # --- freezer ----------------------------------------------------------------------------
    def _frozen_event(self) -> bool:
        return fs.parse_kv(fs.read(self._file("cgroup.events"))).get("frozen") == 1

    def _freeze(self) -> None:
        """Write 1 to cgroup.freeze, then wait for cgroup.events to say "frozen 1" (runc waits 10 s)."""
        f = self._file("cgroup.freeze")
        if not os.path.exists(f):
            raise fs.CgroupError(f"freezer not supported: open {f}: no such file or directory")
        fs.write(f, "1")
        if not fs.wait_until(self._frozen_event, 10.0):
            fs.write(f, "0")
            raise fs.CgroupError("timeout of 10s reached waiting for the cgroup to freeze")

    def _thaw(self) -> None:
        f = self._file("cgroup.freeze")
        if not os.path.exists(f):
            return
        fs.write(f, "0")
        fs.wait_until(lambda: not self._frozen_event(), 1.0)

    def is_frozen(self) -> bool:
        """Paused means this cgroup's own cgroup.freeze is 1 (a frozen ancestor does not count)."""
        return (fs.read_or(self._file("cgroup.freeze"), "0") or "0").strip() == "1"

    def _kill_file(self) -> str | None:
        f = self._file("cgroup.kill")
        return f if os.path.exists(f) else None

    # --- resources --------------------------------------------------------------------------
    def _apply(self, resources: dict, txn: fs.Txn) -> None:
        check_unsupported(resources)
        pids = section(resources, "pids")
        limit = get_int(pids, "limit", "pids")
        if limit is not None:
            txn.write(self._file("pids.max"), pids_value(limit))
        self._apply_memory(section(resources, "memory"), txn)
        self._apply_io(section(resources, "blockIO"), txn)
        cpu = section(resources, "cpu")
        self._apply_cpu(cpu, txn)
        cpus, mems = get_cpu_list(cpu, "cpus"), get_cpu_list(cpu, "mems")
        if cpus is not None:
            txn.write(self._file("cpuset.cpus"), cpus)
        if mems is not None:
            txn.write(self._file("cpuset.mems"), mems)
        unified = resources.get("unified")
        if unified:
            if not isinstance(unified, dict):
                raise InvalidArgument("linux.resources.unified must be an object")
            for key, value in unified.items():
                self._apply_unified(key, value, txn)
        rules = resources.get("devices")
        if rules:  # last: the other writes roll back if the filter cannot be put in place
            if not isinstance(rules, list):
                raise InvalidArgument("linux.resources.devices must be a list")
            state = devices.from_oci(rules)
            if devfilter.is_cgroup2(self.dir):
                devfilter.apply(self.dir, state)
            else:  # a tree of plain files (tests): no program can attach
                self.warnings.append(f"device rules not enforced: {self.dir} is not on a cgroup2 mount")

    def _apply_memory(self, mem: dict, txn: fs.Txn) -> None:
        limit = get_int(mem, "limit", "memory") or 0
        swap = get_int(mem, "swap", "memory") or 0
        reservation = get_int(mem, "reservation", "memory") or 0
        swappiness(mem)  # checked, then ignored: no v2 file (runc ignores it, and disableOOMKiller, too)
        if not (limit or swap or reservation):
            return
        if mem.get("checkBeforeUpdate"):
            usage = fs.read_int(self._file("memory.current"))
            if usage is not None:
                if swap > 0 and swap <= usage:
                    raise InvalidArgument(f"rejecting memory+swap limit {swap} <= usage {usage}")
                if limit > 0 and limit <= usage:
                    raise InvalidArgument(f"rejecting memory limit {limit} <= usage {usage}")
        v2_swap = swap_to_v2(swap, limit)
        swap_str = v2_num(v2_swap)
        if swap_str == "" and v2_swap == 0 and swap > 0:
            swap_str = "0"  # memory+swap == memory: no swap at all, said explicitly
        if swap_str:
            e = txn.try_write(self._file("memory.swap.max"), swap_str)
            # no swap accounting in the kernel: "no swap" and "unlimited" are already true
            if e is not None and not (e.errno == errno.ENOENT and swap_str in ("max", "0")):
                raise e
        if limit:
            txn.write(self._file("memory.max"), v2_num(limit))
        if reservation:
            txn.write(self._file("memory.low"), v2_num(reservation))

    def _apply_cpu(self, cpu: dict, txn: fs.Txn) -> None:
        shares = get_int(cpu, "shares", "cpu", unsigned=True) or 0
        quota = get_int(cpu, "quota", "cpu") or 0
        period = get_int(cpu, "period", "cpu", unsigned=True) or 0
        burst = get_int(cpu, "burst", "cpu", unsigned=True)
        idle = get_int(cpu, "idle", "cpu")
        if idle is not None:
            txn.write(self._file("cpu.idle"), str(idle))
        if shares:
            txn.write(self._file("cpu.weight"), str(shares_to_weight(shares)))
        pending_burst = None
        if burst is not None:
            e = txn.try_write(self._file("cpu.max.burst"), str(burst))
            if e is not None:
                # burst must fit under the quota: when the new quota is what makes room, retry after it
                if e.errno != errno.EINVAL or not quota:
                    raise e
                pending_burst = str(burst)
        if quota or period:
            value = f"{quota if quota > 0 else 'max'} {period or 100000}"
            txn.write(self._file("cpu.max"), value)
            if pending_burst is not None:
                txn.write(self._file("cpu.max.burst"), pending_burst)

    def _apply_io(self, bio: dict, txn: fs.Txn) -> None:
        weight = get_int(bio, "weight", "blockIO", unsigned=True) or 0
        wdevs = weight_devices(bio)
        if weight or any(w for _, _, w, _ in wdevs):
            bfq = self._file("io.bfq.weight")
            bfq_text = fs.read_or(bfq)
            if weight:
                if bfq_text is not None:
                    txn.write(bfq, str(weight))
                elif os.path.exists(self._file("io.weight")):
                    txn.write(self._file("io.weight"), str(blkio_to_io_weight(weight)))
                else:
                    self.warnings.append("Your kernel does not support cgroup blkio weight. Weight discarded.")
            # per-device weights only through BFQ, and only when it shows a "default N" table
            if bfq_text is not None and not bfq_text.strip().isdigit():
                for major, minor, w, _ in wdevs:
                    if w:
                        txn.write(bfq, f"{major}:{minor} {w}", restore=f"{major}:{minor} default")
        for key, op in (
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ):
            for major, minor, rate in throttle_devices(bio, key):
                dev = f"{major}:{minor}"
                old = "max"
                for line in (fs.read_or(self._file("io.max")) or "").splitlines():
                    parts = line.split()
                    if parts and parts[0] == dev:
                        old = next((p.split("=", 1)[1] for p in parts[1:] if p.startswith(op + "=")), "max")
                txn.write(self._file("io.max"), f"{dev} {op}={rate}", restore=f"{dev} {op}={old}")

    def _apply_unified(self, key: object, value: object, txn: fs.Txn) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument("linux.resources.unified maps file names to strings")
        if "/" in key or key in ("", ".", ".."):
            raise InvalidArgument(f"unified resource {key!r} must be a file name (no slashes)")
        controller, dot, _ = key.partition(".")
        if not dot:
            raise InvalidArgument(f"unified resource {key!r} must be in the form CONTROLLER.PARAMETER")
        f = self._file(key)
        if not os.path.exists(f) and controller != "cgroup":
            enabled = (fs.read_or(self._file("cgroup.controllers"), "") or "").split()
            if controller not in enabled:
                raise InvalidArgument(f"unified resource {key!r} can't be set: controller {controller!r} not available")
        try:
            txn.write(f, value)
        except fs.CgroupWriteError as e:
            msg = f"unable to set unified resource {key!r}: {e}"
            raise fs.CgroupWriteError(msg, e.path, e.value, e.errno) from None

    # --- accounting -------------------------------------------------------------------------
    def oom_kill_count(self) -> int:
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        return fs.parse_kv(fs.read_or(self._file("memory.events"), "") or "").get("oom_kill", 0)

    def stats(self) -> dict:
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        return {
            "memory_stats": self._memory_stats(),
            "cpu_stats": self._cpu_stats(),
            "pids_stats": self._pids_stats(),
            "blkio_stats": self._io_stats(),
        }

    def _memory_stats(self) -> dict:
        usage = fs.read_int(self._file("memory.current"))
        if usage is None:
            return {}  # memory controller not enabled here
        events = fs.parse_kv(fs.read_or(self._file("memory.events"), "") or "")
        out = {
            "usage": usage,
            "max_usage": fs.read_int(self._file("memory.peak"), 0) or 0,
            # v2 has no failcnt; "max" counts the times usage hit the limit, its nearest kin
            "failcnt": events.get("max", 0),
            "limit": fs.read_int(self._file("memory.max"), _UNLIMITED) or 0,
            "stats": fs.parse_kv(fs.read_or(self._file("memory.stat"), "") or ""),
        }
        swap = fs.read_int(self._file("memory.swap.current"))
        if swap is not None:
            out["swap_usage"] = swap
            out["swap_limit"] = fs.read_int(self._file("memory.swap.max"), _UNLIMITED) or 0
        return out

    def _cpu_stats(self) -> dict:
        st = fs.parse_kv(fs.read_or(self._file("cpu.stat"), "") or "")
        return {
            "cpu_usage": {
                "total_usage": st.get("usage_usec", 0) * 1000,
                "percpu_usage": [],  # v2 does not account per CPU
                "usage_in_kernelmode": st.get("system_usec", 0) * 1000,
                "usage_in_usermode": st.get("user_usec", 0) * 1000,
            },
            "throttling_data": {
                "periods": st.get("nr_periods", 0),
                "throttled_periods": st.get("nr_throttled", 0),
                "throttled_time": st.get("throttled_usec", 0) * 1000,
            },
        }

    def _pids_stats(self) -> dict:
        current = fs.read_int(self._file("pids.current"))
        if current is None:  # pids controller not enabled: count the processes (runc)
            return {"current": len(self.pids()), "limit": 0}
        limit = fs.read_int(self._file("pids.max"), 0) or 0
        return {"current": current, "limit": 0 if limit == _UNLIMITED else limit}

    def _io_stats(self) -> dict:
        out: dict[str, list[dict]] = {"io_service_bytes_recursive": [], "io_serviced_recursive": []}
        ops = {
            "rbytes": ("io_service_bytes_recursive", "Read"),
            "wbytes": ("io_service_bytes_recursive", "Write"),
            "rios": ("io_serviced_recursive", "Read"),
            "wios": ("io_serviced_recursive", "Write"),
        }
        for line in (fs.read_or(self._file("io.stat"), "") or "").splitlines():
            parts = line.split()
            if not parts or ":" not in parts[0]:
                continue
            major, _, minor = parts[0].partition(":")
            for item in parts[1:]:
                name, _, value = item.partition("=")
                if name in ops:
                    table, op = ops[name]
                    out[table].append({"major": int(major), "minor": int(minor), "op": op, "value": int(value)})
        return out


def _enable(directory: str, controllers: tuple[str, ...]) -> None:
    """Best effort, as runc: a parent with processes of its own cannot delegate (EBUSY)."""
    available = (fs.read_or(os.path.join(directory, "cgroup.controllers"), "") or "").split()
    stc = os.path.join(directory, "cgroup.subtree_control")
    enabled = (fs.read_or(stc, "") or "").split()
    want = [c for c in controllers if c in available and c not in enabled]
    if not want:
        return
    try:
        fs.write_raw(stc, " ".join("+" + c for c in want))
    except OSError:
        for c in want:
            try:
                fs.write_raw(stc, "+" + c)
            except OSError:
                pass

