"""cgroup v1: one directory per hierarchy (cpu, memory, devices, freezer, ...), as runc's fs driver.

On a hybrid host the cgroup2 tree is joined too (runc does): it gives cgroup.kill for SIGKILL."""

from __future__ import annotations

import errno
import os
import time

from berth.errors import InvalidArgument, NotFound

from . import devices, fs
from .base import ManagerBase
from .resources import (
    check_unsupported,
    get_cpu_list,
    get_int,
    pids_value,
    section,
    swappiness,
    throttle_devices,
    weight_devices,
)

_UNLIMITED_PIDS = 2**64 - 1


class V1Manager(ManagerBase):
    version = "v1"

    def __init__(self, paths: dict[str, str], mountpoints: dict[str, str], root: str = "/sys/fs/cgroup") -> None:
        """`paths`: subsystem -> cgroup directory; `mountpoints`: subsystem -> hierarchy mount."""
        if not paths:
            raise fs.CgroupError("no cgroup v1 hierarchy is mounted")
        self.paths = paths
        self.root = os.path.normpath(root)
        # runc's reference hierarchy for "does it exist" and "which pids" is devices
        ref = "devices" if "devices" in paths else next(iter(paths))
        self.dir = paths[ref]
        self.path = "/" + os.path.relpath(self.dir, mountpoints.get(ref, os.path.dirname(self.dir)))
        self._mountpoints = mountpoints
        self.warnings: list[str] = []

    # --- lifecycle --------------------------------------------------------------------------
    def create(self) -> None:
        """mkdir in every hierarchy; on failure, the directories this call made are removed again."""
        made = []
        try:
            for sub, d in self.paths.items():
                if not os.path.isdir(d):
                    made.append(d)
                if sub == "cpuset":
                    self._create_cpuset(d)
                else:
                    os.makedirs(d, exist_ok=True)
        except (OSError, fs.CgroupWriteError) as e:
            for d in reversed(made):
                fs.remove_tree(d)
            if isinstance(e, OSError):
                raise fs.CgroupError(f"mkdir {e.filename or d}: {fs.go_strerror(e.errno or errno.EIO)}") from None
            raise fs.CgroupError(str(e)) from None

    def _create_cpuset(self, d: str) -> None:
        """A new v1 cpuset starts with no cpus and mems, and a task cannot join it (ENOSPC):
        copy them from the parent, top-down, for every level (also levels made by others)."""
        mnt = self._mountpoints["cpuset"]
        prefix = "cpuset." if os.path.exists(os.path.join(mnt, "cpuset.cpus")) else ""
        cur = mnt
        for part in os.path.relpath(d, mnt).split("/"):
            parent, cur = cur, os.path.join(cur, part)
            try:
                os.mkdir(cur)
            except FileExistsError:
                pass
            for name in ("cpus", "mems"):
                mine = fs.read(os.path.join(cur, prefix + name))
                if not mine.strip():
                    fs.write(os.path.join(cur, prefix + name), fs.read(os.path.join(parent, prefix + name)).strip())

    def destroy(self) -> None:
        failed = {}
        deadline = time.monotonic() + fs.DESTROY_RETRY
        for sub, d in self.paths.items():
            err = fs.remove_tree(d, deadline)
            if err:
                failed[sub or "unified"] = f"{d}: {fs.go_strerror(err)}"
        if failed:
            listing = " ".join(f"{k}:{v}" for k, v in failed.items())
            raise fs.CgroupError(f"Failed to remove paths: map[{listing}]")

    def pids(self) -> list[int]:
        return fs.all_pids(self.dir)

    # --- freezer ----------------------------------------------------------------------------
    def _freezer(self) -> str:
        d = self.paths.get("freezer")
        if d is None:
            raise fs.CgroupError("cannot toggle freezer: cgroups not configured for container")
        return os.path.join(d, "freezer.state")

    def _freeze(self) -> None:
        """Write FROZEN and re-read until the kernel says FROZEN. A task stuck in the kernel keeps
        the state at FREEZING: thaw, let it run a moment, and try again (runc's fs/freezer.go)."""
        state = self._freezer()
        for _ in range(20):
            fs.write(state, "FROZEN")
            if fs.wait_until(lambda: fs.read(state).strip() == "FROZEN", 0.05):
                return
            fs.write(state, "THAWED")
            time.sleep(0.01)
        fs.write(state, "THAWED")
        raise fs.CgroupError("unable to freeze")

    def _thaw(self) -> None:
        state = self._freezer()
        fs.write(state, "THAWED")
        fs.wait_until(lambda: fs.read(state).strip() == "THAWED", 1.0)

    def is_frozen(self) -> bool:
        """Paused means frozen by its own freezer.state (a frozen parent does not count, as runc)."""
        state = self._freezer()
        current = fs.read_or(state)
        if current is None:
            return False
        if current.strip() == "FREEZING":
            fs.wait_until(lambda: fs.read(state).strip() != "FREEZING", 1.0)
            current = fs.read(state)
        if current.strip() != "FROZEN":
            return False
        self_freezing = fs.read_or(os.path.join(os.path.dirname(state), "freezer.self_freezing"), "1\n")
        return (self_freezing or "").strip() == "1"

    def _kill_file(self) -> str | None:
        hybrid = self.paths.get("")
        if hybrid is None:
            return None
        f = os.path.join(hybrid, "cgroup.kill")
        return f if os.path.exists(f) else None

    # --- resources --------------------------------------------------------------------------
    def _dir(self, sub: str, what: str) -> str:
        d = self.paths.get(sub)
        if d is None:
            raise InvalidArgument(f"cannot set {what}: the {sub} cgroup hierarchy is not mounted")
        return d

    def _apply(self, resources: dict, txn: fs.Txn) -> None:
        check_unsupported(resources)
        if resources.get("unified"):
            raise InvalidArgument("invalid configuration: cannot use unified on cgroup v1")
        cpu = section(resources, "cpu")
        self._apply_cpuset(cpu, txn)
        rules = resources.get("devices")
        if rules:
            if not isinstance(rules, list):
                raise InvalidArgument("linux.resources.devices must be a list")
            self._apply_devices(rules, txn)
        self._apply_memory(section(resources, "memory"), txn)
        self._apply_cpu(cpu, txn)
        pids = section(resources, "pids")
        limit = get_int(pids, "limit", "pids")
        if limit is not None:
            txn.write(os.path.join(self._dir("pids", "pids limit"), "pids.max"), pids_value(limit))
        self._apply_blkio(section(resources, "blockIO"), txn)

    def _apply_cpuset(self, cpu: dict, txn: fs.Txn) -> None:
        cpus, mems = get_cpu_list(cpu, "cpus"), get_cpu_list(cpu, "mems")
        if cpus is None and mems is None:
            return
        d = self._dir("cpuset", "cpuset")
        prefix = "cpuset." if os.path.exists(os.path.join(d, "cpuset.cpus")) else ""
        if cpus is not None:
            txn.write(os.path.join(d, prefix + "cpus"), cpus)
        if mems is not None:
            txn.write(os.path.join(d, prefix + "mems"), mems)

    def _apply_devices(self, rules: list, txn: fs.Txn) -> None:
        d = self._dir("devices", "device rules")
        list_file = os.path.join(d, "devices.list")
        target = devices.from_oci(rules)
        before = devices.parse_list(fs.read(list_file))

        def undo() -> None:
            for name, rule in devices.transition(devices.parse_list(fs.read(list_file)), before):
                fs.write_raw(os.path.join(d, name), rule)

        txn.on_rollback(undo)
        for name, rule in devices.transition(before, target):
            fs.write(os.path.join(d, name), rule)
        after = devices.parse_list(fs.read(list_file))
        if target.default_allow != after.default_allow or (not target.default_allow and after != target):
            raise fs.CgroupError("resulting devices cgroup doesn't precisely match target")

    def _apply_memory(self, mem: dict, txn: fs.Txn) -> None:
        limit = get_int(mem, "limit", "memory") or 0
        swap = get_int(mem, "swap", "memory") or 0
        reservation = get_int(mem, "reservation", "memory") or 0
        swp = swappiness(mem)
        oom = mem.get("disableOOMKiller")
        if oom is not None and not isinstance(oom, bool):
            raise InvalidArgument("linux.resources.memory.disableOOMKiller must be a boolean")
        if not (limit or swap or reservation or swp is not None or oom is not None):
            return  # kernel / kernelTCP alone: deprecated and ignored, as runc does
        d = self._dir("memory", "memory limit")
        limit_file = os.path.join(d, "memory.limit_in_bytes")
        swap_file = os.path.join(d, "memory.memsw.limit_in_bytes")
        if limit == -1 and swap == 0 and os.path.exists(swap_file):
            swap = -1  # unlimited memory with swap unset means unlimited swap too
        if limit and swap:
            # memory <= memory+swap must hold after every single write: order them so it does
            current = fs.read_int(limit_file, 0) or 0
            if swap == -1 or current < swap:
                txn.write(swap_file, str(swap))
                self._write_memory_limit(d, limit, txn)
            else:
                self._write_memory_limit(d, limit, txn)
                txn.write(swap_file, str(swap))
        elif limit:
            self._write_memory_limit(d, limit, txn)
        elif swap:
            txn.write(swap_file, str(swap))
        if reservation:
            txn.write(os.path.join(d, "memory.soft_limit_in_bytes"), str(reservation))
        if oom is not None:
            oom_file = os.path.join(d, "memory.oom_control")
            old = fs.parse_kv(fs.read(oom_file)).get("oom_kill_disable", 0)
            txn.write(oom_file, "1" if oom else "0", restore=str(old))
        if swp is not None:
            txn.write(os.path.join(d, "memory.swappiness"), str(swp))

    @staticmethod
    def _write_memory_limit(d: str, limit: int, txn: fs.Txn) -> None:
        try:
            txn.write(os.path.join(d, "memory.limit_in_bytes"), str(limit))
        except fs.CgroupWriteError as e:
            if e.errno != errno.EBUSY:
                raise
            usage = fs.read_int(os.path.join(d, "memory.usage_in_bytes"), 0)
            peak = fs.read_int(os.path.join(d, "memory.max_usage_in_bytes"), 0)
            raise fs.CgroupWriteError(
                f"unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})",
                e.path, e.value, e.errno,
            ) from None

    def _apply_cpu(self, cpu: dict, txn: fs.Txn) -> None:
        shares = get_int(cpu, "shares", "cpu", unsigned=True) or 0
        quota = get_int(cpu, "quota", "cpu") or 0
        period = get_int(cpu, "period", "cpu", unsigned=True) or 0
        burst = get_int(cpu, "burst", "cpu", unsigned=True)
        idle = get_int(cpu, "idle", "cpu")
        rt_runtime = get_int(cpu, "realtimeRuntime", "cpu") or 0
        rt_period = get_int(cpu, "realtimePeriod", "cpu", unsigned=True) or 0
        if not (shares or quota or period or burst is not None or idle is not None or rt_runtime or rt_period):
            return
        d = self._dir("cpu", "cpu limits")
        if shares:
            f = os.path.join(d, "cpu.shares")
            txn.write(f, str(shares))
            # the kernel clamps silently to [2, 262144]; runc turns that into an error
            got = fs.read_int(f, shares) or shares
            if shares > got:
                raise InvalidArgument(f"the maximum allowed cpu-shares is {got}")
            if shares < got:
                raise InvalidArgument(f"the minimum allowed cpu-shares is {got}")
        self._quota_and_period(d, "cpu.cfs_quota_us", quota, "cpu.cfs_period_us", period, burst, txn)
        if idle is not None:
            txn.write(os.path.join(d, "cpu.idle"), str(idle))
        self._quota_and_period(d, "cpu.rt_runtime_us", rt_runtime, "cpu.rt_period_us", rt_period, None, txn)

    @staticmethod
    def _quota_and_period(
        d: str, quota_name: str, quota: int, period_name: str, period: int, burst: int | None, txn: fs.Txn
    ) -> None:
        """The kernel checks quota against period (and burst against quota) on each write: when the
        period (or burst) is refused first, write the quota and then retry it (runc's order)."""
        pending: list[tuple[str, str]] = []
        if period:
            e = txn.try_write(os.path.join(d, period_name), str(period))
            if e is not None:
                if e.errno != errno.EINVAL or not quota:
                    raise e
                pending.append((period_name, str(period)))
        if burst is not None:
            e = txn.try_write(os.path.join(d, "cpu.cfs_burst_us"), str(burst))
            if e is not None and e.errno != errno.ENOENT:  # ENOENT: kernel without burst, skip
                if e.errno != errno.EINVAL or not quota:
                    raise e
                pending.append(("cpu.cfs_burst_us", str(burst)))
        if quota:
            txn.write(os.path.join(d, quota_name), str(quota))
            for name, value in pending:
                txn.write(os.path.join(d, name), value)

    def _apply_blkio(self, bio: dict, txn: fs.Txn) -> None:
        weight = get_int(bio, "weight", "blockIO", unsigned=True) or 0
        leaf = get_int(bio, "leafWeight", "blockIO", unsigned=True) or 0
        wdevs = weight_devices(bio)
        throttles = {
            key: throttle_devices(bio, key)
            for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                        "throttleWriteIOPSDevice")
        }
        if not (weight or leaf or wdevs or any(throttles.values())):
            return
        d = self._dir("blkio", "blkio limits")
        if os.path.exists(os.path.join(d, "blkio.weight")):
            weight_name, wdev_name = "blkio.weight", "blkio.weight_device"
        elif os.path.exists(os.path.join(d, "blkio.bfq.weight")):
            weight_name, wdev_name = "blkio.bfq.weight", "blkio.bfq.weight_device"
        else:
            weight_name = wdev_name = ""
        if (weight or any(w for _, _, w, _ in wdevs)) and not weight_name:
            # Docker: "Your kernel does not support cgroup blkio weight": skipped, not an error
            self.warnings.append("Your kernel does not support cgroup blkio weight. Weight discarded.")
        if weight and weight_name:
            txn.write(os.path.join(d, weight_name), str(weight))
        leaf_file = os.path.join(d, "blkio.leaf_weight")
        if leaf and os.path.exists(leaf_file):
            txn.write(leaf_file, str(leaf))
        for major, minor, w, lw in wdevs:
            if w and wdev_name:
                self._write_device(os.path.join(d, wdev_name), major, minor, str(w), txn)
            leaf_dev = os.path.join(d, "blkio.leaf_weight_device")
            if lw and os.path.exists(leaf_dev):
                self._write_device(leaf_dev, major, minor, str(lw), txn)
        names = {
            "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
            "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
            "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
            "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
        }
        for key, devs in throttles.items():
            for major, minor, rate in devs:
                self._write_device(os.path.join(d, names[key]), major, minor, str(rate), txn)

    @staticmethod
    def _write_device(path: str, major: int, minor: int, value: str, txn: fs.Txn) -> None:
        """A per-device "maj:min value" entry; undo restores that device's entry (0 = none)."""
        dev = f"{major}:{minor}"
        old = "0"
        for line in (fs.read_or(path) or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == dev:
                old = parts[1]
        txn.write(path, f"{dev} {value}", restore=f"{dev} {old}")

    # --- accounting -------------------------------------------------------------------------
    def oom_kill_count(self) -> int:
        d = self.paths.get("memory")
        if d is None:
            return 0
        text = fs.read_or(os.path.join(d, "memory.oom_control"))
        if text is None:
            raise NotFound(f"cgroup {d} does not exist")
        return fs.parse_kv(text).get("oom_kill", 0)

    def stats(self) -> dict:
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        return {
            "memory_stats": self._memory_stats(),
            "cpu_stats": self._cpu_stats(),
            "pids_stats": self._pids_stats(),
            "blkio_stats": self._blkio_stats(),
        }

    def _memory_stats(self) -> dict:
        d = self.paths.get("memory")
        if d is None:
            return {}

        def num(name: str) -> int:
            return fs.read_int(os.path.join(d, name), 0) or 0

        out = {
            "usage": num("memory.usage_in_bytes"),
            "max_usage": num("memory.max_usage_in_bytes"),
            "failcnt": num("memory.failcnt"),
            "limit": num("memory.limit_in_bytes"),
            "stats": fs.parse_kv(fs.read_or(os.path.join(d, "memory.stat"), "") or ""),
        }
        if os.path.exists(os.path.join(d, "memory.memsw.usage_in_bytes")):
            out["swap_usage"] = num("memory.memsw.usage_in_bytes")
            out["swap_limit"] = num("memory.memsw.limit_in_bytes")
        return out

    def _cpu_stats(self) -> dict:
        usage: dict = {"total_usage": 0, "percpu_usage": [], "usage_in_kernelmode": 0, "usage_in_usermode": 0}
        acct = self.paths.get("cpuacct")
        if acct is not None:
            usage["total_usage"] = fs.read_int(os.path.join(acct, "cpuacct.usage"), 0) or 0
            percpu = fs.read_or(os.path.join(acct, "cpuacct.usage_percpu")) or ""
            usage["percpu_usage"] = [int(x) for x in percpu.split()]
            user = fs.read_int(os.path.join(acct, "cpuacct.usage_user"))
            system = fs.read_int(os.path.join(acct, "cpuacct.usage_sys"))
            if user is None or system is None:  # older kernels: clock ticks in cpuacct.stat
                ticks = fs.parse_kv(fs.read_or(os.path.join(acct, "cpuacct.stat"), "") or "")
                hz = os.sysconf("SC_CLK_TCK")
                user = ticks.get("user", 0) * 1_000_000_000 // hz
                system = ticks.get("system", 0) * 1_000_000_000 // hz
            usage["usage_in_usermode"], usage["usage_in_kernelmode"] = user, system
        throttling = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        cpu = self.paths.get("cpu")
        if cpu is not None:
            st = fs.parse_kv(fs.read_or(os.path.join(cpu, "cpu.stat"), "") or "")
            throttling = {
                "periods": st.get("nr_periods", 0),
                "throttled_periods": st.get("nr_throttled", 0),
                "throttled_time": st.get("throttled_time", 0),
            }
        return {"cpu_usage": usage, "throttling_data": throttling}

    def _pids_stats(self) -> dict:
        d = self.paths.get("pids")
        if d is None:
            return {"current": len(self.pids()), "limit": 0}
        limit = fs.read_int(os.path.join(d, "pids.max"), 0) or 0
        return {
            "current": fs.read_int(os.path.join(d, "pids.current"), 0) or 0,
            "limit": 0 if limit == _UNLIMITED_PIDS else limit,
        }

    def _blkio_stats(self) -> dict:
        d = self.paths.get("blkio")
        out: dict[str, list[dict]] = {"io_service_bytes_recursive": [], "io_serviced_recursive": []}
        if d is None:
            return out
        # runc's order: BFQ, CFQ, then the throttle layer (which sees all I/O, whatever the scheduler)
        for prefix in ("blkio.bfq.", "blkio.", "blkio.throttle."):
            found = {}
            for key in out:
                text = fs.read_or(os.path.join(d, prefix + key))
                found[key] = _blkio_entries(text or "")
            if found["io_service_bytes_recursive"] or found["io_serviced_recursive"]:
                return found
        return out


def _blkio_entries(text: str) -> list[dict]:
    """"8:0 Read 4096" lines -> Docker's {major, minor, op, value}; the "Total N" line is dropped."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return out
