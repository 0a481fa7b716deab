"""What the kernel does with the limits berth writes, proven with real processes on cgroup v1
(this host), plus runc's path rules observed from a process placed in a real cgroup."""

from __future__ import annotations

import errno
import json
import os
import re
import select
import signal
from collections.abc import Callable, Iterator

import pytest

from berth.errors import InvalidArgument
from berth.runtime import cgroups
from berth.runtime.cgroups import CgroupWriteError, fs
from tests import leaks
from tests.runtime.test_cgroups_conformance import V2_ROOT, Child, children, host_block_node, join

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() == 0 and cgroups.detect() != "v1", reason="host is not cgroup v1"),
]
__all__ = ["children"]  # the fixture, re-exported for this module's tests

MiB = 1 << 20


@pytest.fixture
def v1() -> Iterator[cgroups.CgroupManager]:
    m = cgroups.manager_for("/" + leaks.name("berth-cg"), "cid", version="v1")
    m.create()
    yield m
    if m.exists():
        if m.is_frozen():
            m.thaw()
        for pid in m.pids():
            os.kill(pid, signal.SIGKILL)
    m.destroy()


def v1file(m: cgroups.CgroupManager, sub: str, name: str) -> str:
    return fs.read(os.path.join(m.paths[sub], name)).strip()


def test_memory_limit_gets_a_process_oom_killed(v1: cgroups.CgroupManager, children: Callable[..., Child]) -> None:
    v1.apply({"memory": {"limit": 32 * MiB}})
    assert v1.oom_kill_count() == 0
    c = children("alloc", 128 * MiB)
    join(v1, c)
    status = c.wait(30.0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert v1.oom_kill_count() == 1
    st = v1.stats()["memory_stats"]
    assert st["failcnt"] > 0 and st["max_usage"] > 16 * MiB and st["limit"] == 32 * MiB


def test_the_same_allocation_fits_without_the_limit(v1: cgroups.CgroupManager,
                                                    children: Callable[..., Child]) -> None:
    """The control for the OOM test: 128 MiB is not too much for this host, only for the limit."""
    c = children("alloc", 128 * MiB)
    join(v1, c)
    assert c.result() == f"allocated {128 * MiB}"
    assert v1.stats()["memory_stats"]["max_usage"] >= 128 * MiB
    assert v1.oom_kill_count() == 0


def test_disabled_oom_killer_leaves_the_process_waiting(v1: cgroups.CgroupManager,
                                                        children: Callable[..., Child]) -> None:
    v1.apply({"memory": {"limit": 16 * MiB, "swap": 16 * MiB, "disableOOMKiller": True}})
    c = children("alloc", 64 * MiB)
    join(v1, c)
    assert fs.wait_until(lambda: fs.parse_kv(v1file(v1, "memory", "memory.oom_control")).get("under_oom") == 1, 10.0)
    assert os.waitpid(c.pid, os.WNOHANG) == (0, 0)  # alive, stuck at the limit
    assert v1.oom_kill_count() == 0


def test_pids_limit_stops_forks_with_eagain(v1: cgroups.CgroupManager, children: Callable[..., Child]) -> None:
    v1.apply({"pids": {"limit": 3}})
    c = children("fork", 5)
    join(v1, c)
    made, err = map(int, c.result().split())
    assert (made, err) == (2, errno.EAGAIN)  # the child itself and two zombies fill pids.max = 3
    assert int(v1file(v1, "pids", "pids.events").split()[1]) >= 1


def test_memory_and_swap_updates_in_both_directions(v1: cgroups.CgroupManager) -> None:
    """memory <= memory+swap is checked on every write: growing needs swap first, shrinking memory first."""
    v1.apply({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    v1.apply({"memory": {"limit": 256 * MiB, "swap": 512 * MiB}})
    assert (v1file(v1, "memory", "memory.limit_in_bytes"), v1file(v1, "memory", "memory.memsw.limit_in_bytes")) == (
        str(256 * MiB), str(512 * MiB))
    v1.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    assert (v1file(v1, "memory", "memory.limit_in_bytes"), v1file(v1, "memory", "memory.memsw.limit_in_bytes")) == (
        str(32 * MiB), str(32 * MiB))
    v1.apply({"memory": {"limit": -1}})  # unlimited memory with swap unset: unlimited swap too
    assert int(v1file(v1, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


def test_memory_limit_below_usage_is_refused_in_runc_words(v1: cgroups.CgroupManager,
                                                            children: Callable[..., Child]) -> None:
    v1.apply({"memory": {"swappiness": 0}})
    c = children("alloc", 64 * MiB)
    join(v1, c)
    assert c.result() == f"allocated {64 * MiB}"
    with pytest.raises(CgroupWriteError, match=r"^unable to set memory limit to 8388608 \(current usage: \d+, "
                                               r"peak usage: \d+\)$"):
        v1.apply({"memory": {"limit": 8 * MiB}})
    assert int(v1file(v1, "memory", "memory.limit_in_bytes")) > 1 << 60
    assert v1file(v1, "memory", "memory.swappiness") == "0"


FILES = (("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"), ("cpu", "cpu.shares"),
         ("cpu", "cpu.cfs_period_us"), ("cpuset", "cpuset.cpus"), ("devices", "devices.list"), ("pids", "pids.max"))


def test_a_refused_value_changes_nothing(v1: cgroups.CgroupManager) -> None:
    """A CPU period under 1 ms is only refused by the kernel, after cpuset, devices, memory and
    shares were written: they are all restored, and the error names the file and the value."""
    before = {f: v1file(v1, sub, f) for sub, f in FILES}
    with pytest.raises(CgroupWriteError) as info:
        v1.apply({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}, "cpu": {"shares": 512, "period": 500, "cpus": "0"},
                  "devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 5}})
    path = os.path.join(v1.paths["cpu"], "cpu.cfs_period_us")
    assert str(info.value) == f'failed to write "500": write {path}: invalid argument'
    assert {f: v1file(v1, sub, f) for sub, f in FILES} == before


def test_a_cpu_that_does_not_exist_is_refused_in_runc_words(v1: cgroups.CgroupManager) -> None:
    bad_cpu = str((os.cpu_count() or 1) + 64)
    with pytest.raises(CgroupWriteError) as info:
        v1.apply({"cpu": {"cpus": f"0,{bad_cpu}"}})
    path = os.path.join(v1.paths["cpuset"], "cpuset.cpus")
    assert re.fullmatch(rf'failed to write "0,{bad_cpu}": write {path}: (invalid argument|numerical result out of '
                        rf'range)', str(info.value))


def test_cpu_shares_out_of_range_is_refused_and_undone(v1: cgroups.CgroupManager) -> None:
    v1.apply({"cpu": {"shares": 512}})
    with pytest.raises(InvalidArgument, match="the maximum allowed cpu-shares is 262144"):
        v1.apply({"cpu": {"shares": 1 << 20}})
    assert v1file(v1, "cpu", "cpu.shares") == "512"
    with pytest.raises(InvalidArgument, match="the minimum allowed cpu-shares is 2"):
        v1.apply({"cpu": {"shares": 1}})
    assert v1file(v1, "cpu", "cpu.shares") == "512"


def test_cpu_quota_period_and_burst(v1: cgroups.CgroupManager) -> None:
    v1.apply({"cpu": {"quota": 20000, "period": 50000}})
    assert (v1file(v1, "cpu", "cpu.cfs_quota_us"), v1file(v1, "cpu", "cpu.cfs_period_us")) == ("20000", "50000")
    # a burst above the current quota is refused until the new quota makes room: runc's ordering
    v1.apply({"cpu": {"quota": 80000, "burst": 60000}})
    assert (v1file(v1, "cpu", "cpu.cfs_quota_us"), v1file(v1, "cpu", "cpu.cfs_burst_us")) == ("80000", "60000")
    v1.apply({"cpu": {"quota": -1}})
    assert v1file(v1, "cpu", "cpu.cfs_quota_us") == "-1"


def test_cpu_realtime_budget(v1: cgroups.CgroupManager) -> None:
    if not os.path.exists(os.path.join(v1.paths["cpu"], "cpu.rt_runtime_us")):
        pytest.skip("kernel without RT group scheduling")
    v1.apply({"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 10000}})
    assert (v1file(v1, "cpu", "cpu.rt_period_us"), v1file(v1, "cpu", "cpu.rt_runtime_us")) == ("500000", "10000")


def test_cpu_quota_throttles_a_busy_process(v1: cgroups.CgroupManager, children: Callable[..., Child]) -> None:
    v1.apply({"cpu": {"quota": 10000, "period": 100000}})  # 10% of one CPU
    c = children("spin")
    join(v1, c)
    assert fs.wait_until(lambda: v1.stats()["cpu_stats"]["throttling_data"]["throttled_periods"] >= 3, 10.0)
    t = v1.stats()["cpu_stats"]["throttling_data"]
    assert t["periods"] >= t["throttled_periods"] and t["throttled_time"] > 0


def test_cpuset_is_copied_from_the_parent_at_every_level(children: Callable[..., Child]) -> None:
    top = "/" + leaks.name("berth-cg")
    m = cgroups.manager_for(top + "/a/b", "cid", version="v1")
    try:
        m.create()
        host = fs.read("/sys/fs/cgroup/cpuset/cpuset.cpus").strip()
        for level in (top, top + "/a", top + "/a/b"):
            d = "/sys/fs/cgroup/cpuset" + level
            assert fs.read(d + "/cpuset.cpus").strip() == host and fs.read(d + "/cpuset.mems").strip() != ""
        c = children("sleep")
        join(m, c)  # a task cannot join a cpuset without cpus (ENOSPC)
        assert c.result() == "ready"
        m.apply({"cpu": {"cpus": "0"}})
        assert os.sched_getaffinity(c.pid) == {0}
        m.kill_all(signal.SIGKILL)
        c.wait()
    finally:
        m.destroy()
        cgroups.manager_for(top, "cid", version="v1").destroy()


def test_device_allow_list(v1: cgroups.CgroupManager, children: Callable[..., Child]) -> None:
    deny_all = {"allow": False, "access": "rwm"}
    null = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    v1.apply({"devices": [deny_all, null]})
    assert v1file(v1, "devices", "devices.list") == "c 1:3 rwm"
    a = children("open", "/dev/zero")
    join(v1, a)
    assert a.result() == str(errno.EPERM)
    b = children("open", "/dev/null")
    join(v1, b)
    assert b.result() == "0"
    # an update adds one rule; /dev/null stays allowed throughout (no deny-all in between)
    v1.apply({"devices": [deny_all, null, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
    assert sorted(v1file(v1, "devices", "devices.list").splitlines()) == ["c 1:3 rwm", "c 1:5 r"]
    c = children("open", "/dev/zero")
    join(v1, c)
    assert c.result() == "0"


def test_runc_default_devices_keep_the_host_disk_out(v1: cgroups.CgroupManager, children: Callable[..., Child],
                                                     tmp_path: object) -> None:
    """With only runc's defaults a container may mknod, but not open, a host block device."""
    node = host_block_node(str(tmp_path))  # one the host opens (its real disk it refuses even root)
    v1.apply(cgroups.with_runc_defaults({}))
    assert "c 136:* rwm" in v1file(v1, "devices", "devices.list").splitlines()
    a = children("open", node)
    join(v1, a)
    assert a.result() == str(errno.EPERM)
    b = children("open", "/dev/ptmx")
    join(v1, b)
    assert b.result() == "0"


def test_device_rules_are_undone_with_a_refused_apply(v1: cgroups.CgroupManager) -> None:
    with pytest.raises(CgroupWriteError):
        v1.apply({"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": 64 * MiB},
                  "cpu": {"cpus": "0,999"}})
    assert v1file(v1, "devices", "devices.list") == "a *:* rwm"


def test_blkio_weight_without_kernel_support_is_a_warning(v1: cgroups.CgroupManager) -> None:
    d = v1.paths["blkio"]
    if os.path.exists(os.path.join(d, "blkio.weight")) or os.path.exists(os.path.join(d, "blkio.bfq.weight")):
        v1.apply({"blockIO": {"weight": 300}})
        assert not v1.warnings
        return
    v1.apply({"blockIO": {"weight": 300}})
    assert v1.warnings == ["Your kernel does not support cgroup blkio weight. Weight discarded."]


def _root_disk() -> tuple[int, int]:
    st = os.stat("/")
    return os.major(st.st_dev), os.minor(st.st_dev)


def test_blkio_throttle_and_io_accounting(v1: cgroups.CgroupManager, children: Callable[..., Child],
                                          tmp_path: object) -> None:
    major, minor = _root_disk()
    if not os.path.exists(f"/sys/dev/block/{major}:{minor}"):
        pytest.skip("/ is not on a block device")
    v1.apply({"blockIO": {"throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 30}]}})
    assert v1file(v1, "blkio", "blkio.throttle.write_bps_device") == f"{major}:{minor} {1 << 30}"
    c = children("write", os.path.join(str(tmp_path), "blob"))
    join(v1, c)
    assert c.result() == "written"
    entries = v1.stats()["blkio_stats"]["io_service_bytes_recursive"]
    written = sum(e["value"] for e in entries if (e["major"], e["minor"], e["op"]) == (major, minor, "Write"))
    assert written >= 4 << 20
    # a refused apply restores the throttle as it was
    with pytest.raises(CgroupWriteError):
        v1.apply({"blockIO": {"throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}]},
                  "cpu": {"cpus": "999"}})
    assert v1file(v1, "blkio", "blkio.throttle.write_bps_device") == f"{major}:{minor} {1 << 30}"


def test_unified_is_refused_on_v1(v1: cgroups.CgroupManager) -> None:
    with pytest.raises(InvalidArgument, match="cannot use unified on cgroup v1"):
        v1.apply({"unified": {"memory.high": "1"}})


def test_stats_on_v1_use_the_kernel_names(v1: cgroups.CgroupManager, children: Callable[..., Child]) -> None:
    c = children("alloc", 8 * MiB)
    join(v1, c)
    assert c.result()
    st = v1.stats()
    assert "total_inactive_file" in st["memory_stats"]["stats"] and "total_rss" in st["memory_stats"]["stats"]
    assert st["memory_stats"]["usage"] >= 8 * MiB
    assert st["pids_stats"]["current"] == 1


# --- runc's path rules, seen from a process inside a real cgroup -------------------------------
def _in_cgroup(m: cgroups.CgroupManager, code: str) -> list:
    """Fork a child, move it into `m`, then let it run `code` (which sets the list `out`); return it."""
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(go_w)
            os.close(res_r)
            os.read(go_r, 1)
            scope: dict = {"cgroups": cgroups}
            exec(code, scope)
            os.write(res_w, json.dumps(scope["out"]).encode())
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(res_w)
    try:
        m.add_pid(pid)
        os.write(go_w, b"g")
        ready, _, _ = select.select([res_r], [], [], 10)
        assert ready
        data = os.read(res_r, 65536)
    finally:
        os.close(go_w)
        os.close(res_r)
        os.waitpid(pid, 0)
    out: list = json.loads(data)
    return out


def test_relative_and_default_paths_on_v1_follow_the_runtimes_own_cgroup(v1: cgroups.CgroupManager) -> None:
    out = _in_cgroup(v1, "out = [cgroups.manager_for('rel/x', 'cid', version='v1').paths,"
                         " cgroups.manager_for(None, 'cid', version='v1').paths,"
                         " cgroups.manager_for('/abs', 'cid', version='v1').paths,"
                         " cgroups.manager_for('../../up', 'cid', version='v1').paths]")
    rel, default, absolute, up = out
    for sub, d in v1.paths.items():
        if sub == "":
            # runc's quirk: on a hybrid host the cgroup2 tree takes relative paths from its root
            assert rel[sub] == os.path.join(os.path.dirname(d), "rel/x")
            continue
        assert rel[sub] == d + "/rel/x"
        assert default[sub] == d + "/cid"  # no cgroupsPath: the container id, relative
        assert up[sub] == d + "/up"  # ".." cannot climb out of the runtime's cgroup
        assert absolute[sub] == os.path.join(os.path.dirname(d), "abs")


@pytest.mark.skipif(not os.path.exists(os.path.join(V2_ROOT, "cgroup.procs")), reason="no cgroup2 tree")
def test_relative_paths_on_v2_go_under_the_parent_of_the_runtimes_cgroup() -> None:
    top = "/" + leaks.name("berth-cg")
    m = cgroups.manager_for(top + "/leaf", "cid", root=V2_ROOT, version="v2")
    m.create()
    try:
        out = _in_cgroup(m, f"out = [cgroups.manager_for('rel', 'cid', root={V2_ROOT!r}, version='v2').dir,"
                            f" cgroups.manager_for(None, 'cid', root={V2_ROOT!r}, version='v2').path]")
        assert out == [V2_ROOT + top + "/rel", top + "/cid"]
    finally:
        m.destroy()
        cgroups.manager_for(top, "cid", root=V2_ROOT, version="v2").destroy()
