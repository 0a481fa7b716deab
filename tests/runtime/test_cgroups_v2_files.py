"""cgroup v2 resource files, on a fake tree: what berth writes for each OCI field (runc's
conversions) and how it reads v2 accounting. The real v2 tree here delegates no memory, cpu, io or
pids controller, so these files exist only in the fake; freeze, kill, procs and destroy are proven
on the real tree by the conformance suite."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.runtime import cgroups
from berth.runtime.cgroups import CgroupWriteError, fs
from tests.runtime.test_cgroups_conformance import make_fake_v2

CG = "/ctr"


@pytest.fixture
def m(tmp_path: Path) -> cgroups.CgroupManager:
    root = str(tmp_path / "cg2")
    make_fake_v2(root, CG)
    mgr = cgroups.manager_for(CG, "id", root=root, version="v2")
    mgr.create()
    return mgr


def f(m: cgroups.CgroupManager, name: str) -> str:
    return fs.read(os.path.join(m.dir, name)).strip()


def test_create_delegates_the_controllers_it_needs(tmp_path: Path) -> None:
    root = str(tmp_path / "cg2")
    make_fake_v2(root, "/x")
    m = cgroups.manager_for("/a/b", "id", root=root, version="v2")
    m.create()
    assert os.path.isdir(os.path.join(root, "a", "b"))
    # hugetlb is offered by the root but not delegated: berth sets no hugetlb limits
    assert fs.read(os.path.join(root, "cgroup.subtree_control")) == "+cpuset +cpu +io +memory +pids"
    assert m.path == "/a/b" and m.dir == os.path.join(root, "a", "b")


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (3, 2), (512, 59), (1024, 100), (2048, 174),
                                                (262144, 10000)])
def test_cpu_shares_become_weight(m: cgroups.CgroupManager, shares: int, weight: int) -> None:
    m.apply({"cpu": {"shares": shares}})
    assert f(m, "cpu.weight") == str(weight)


@pytest.mark.parametrize(("cpu", "expected"), [
    ({"quota": 50000, "period": 200000}, "50000 200000"),
    ({"quota": 50000}, "50000 100000"),  # period defaults to 100 ms, as runc
    ({"quota": -1, "period": 250000}, "max 250000"),
    ({"period": 300000}, "max 300000"),
])
def test_cpu_quota_and_period(m: cgroups.CgroupManager, cpu: dict, expected: str) -> None:
    m.apply({"cpu": cpu})
    assert f(m, "cpu.max") == expected


def test_cpu_idle_burst_and_cpuset(m: cgroups.CgroupManager) -> None:
    m.apply({"cpu": {"idle": 1, "burst": 20000, "quota": 50000, "cpus": "0-1", "mems": "0"}})
    assert (f(m, "cpu.idle"), f(m, "cpu.max.burst"), f(m, "cpu.max")) == ("1", "20000", "50000 100000")
    assert (f(m, "cpuset.cpus"), f(m, "cpuset.mems")) == ("0-1", "0")


@pytest.mark.parametrize(("memory", "files"), [
    ({"limit": 100 << 20}, {"memory.max": str(100 << 20), "memory.swap.max": "max"}),
    ({"limit": 100 << 20, "swap": 150 << 20}, {"memory.max": str(100 << 20), "memory.swap.max": str(50 << 20)}),
    ({"limit": 100 << 20, "swap": 100 << 20}, {"memory.swap.max": "0"}),  # memory+swap == memory: no swap
    ({"limit": 100 << 20, "swap": -1}, {"memory.swap.max": "max"}),
    ({"limit": -1}, {"memory.max": "max", "memory.swap.max": "max"}),
    ({"reservation": 10 << 20}, {"memory.low": str(10 << 20)}),
])
def test_memory_conversions(m: cgroups.CgroupManager, memory: dict, files: dict[str, str]) -> None:
    fs.write(os.path.join(m.dir, "memory.swap.max"), "123")  # so "max" has to be written to show
    if "swap" not in memory and memory.get("limit", 0) != -1:
        files = {**files, "memory.swap.max": "123"}  # swap not given: left alone
    m.apply({"memory": memory})
    assert {k: f(m, k) for k in files} == files


@pytest.mark.parametrize(("memory", "message"), [
    ({"limit": 100, "swap": 50}, "memory+swap limit should be >= memory limit"),
    ({"swap": 1 << 30}, "unable to set swap limit without memory limit"),
])
def test_memory_swap_refusals(m: cgroups.CgroupManager, memory: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        m.apply({"memory": memory})
    assert f(m, "memory.max") == "max"


def test_check_before_update_compares_with_usage(m: cgroups.CgroupManager) -> None:
    # the fake's memory.current is 1234
    with pytest.raises(InvalidArgument, match="rejecting memory limit 1000 <= usage 1234"):
        m.apply({"memory": {"limit": 1000, "checkBeforeUpdate": True}})
    m.apply({"memory": {"limit": 4096, "checkBeforeUpdate": True}})
    assert f(m, "memory.max") == "4096"


def test_swappiness_and_oom_killer_are_ignored_on_v2(m: cgroups.CgroupManager) -> None:
    before = sorted(os.listdir(m.dir))
    m.apply({"memory": {"swappiness": 10, "disableOOMKiller": True}})
    assert sorted(os.listdir(m.dir)) == before


def test_io_weight_and_throttles(m: cgroups.CgroupManager) -> None:
    m.apply({"blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1 << 20}]}})
    assert f(m, "io.weight") == "4950"  # 10..1000 -> 1..10000, linearly
    assert f(m, "io.max") == f"254:0 rbps={1 << 20}"


def test_io_weight_through_bfq_when_present(m: cgroups.CgroupManager) -> None:
    Path(m.dir, "io.bfq.weight").write_text("default 100\n")
    m.apply({"blockIO": {"weight": 500}})
    assert f(m, "io.bfq.weight") == "500"  # BFQ takes the v1 scale as is


def test_io_weight_without_kernel_support_is_a_warning(m: cgroups.CgroupManager) -> None:
    os.unlink(os.path.join(m.dir, "io.weight"))
    m.apply({"blockIO": {"weight": 500}})
    assert m.warnings == ["Your kernel does not support cgroup blkio weight. Weight discarded."]


def test_device_rules_on_a_plain_file_tree_are_reported_unenforced(m: cgroups.CgroupManager) -> None:
    m.apply({"devices": [{"allow": False, "access": "rwm"}]})  # a real cgroup2 gets an eBPF filter
    assert any("device rules not enforced" in w for w in m.warnings)


def test_unified_keys(m: cgroups.CgroupManager) -> None:
    m.apply({"unified": {"memory.high": "50000000", "cgroup.freeze": "0"}})
    assert f(m, "memory.high") == "50000000"


@pytest.mark.parametrize(("unified", "message"), [
    ({"../memory.max": "1"}, "must be a file name (no slashes)"),
    ({"memoryhigh": "1"}, "must be in the form CONTROLLER.PARAMETER"),
    ({"hugetlb.2MB.max": "1"}, "can't be set: controller 'hugetlb' not available"),
    ({"memory.high": 5}, "maps file names to strings"),
    ({"memory.nosuchfile": "1"}, "unable to set unified resource 'memory.nosuchfile': open "),
])
def test_unified_refusals(m: cgroups.CgroupManager, unified: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        m.apply({"pids": {"limit": 7}, "unified": unified})
    assert f(m, "pids.max") == "max"  # the pids write before it was undone


def test_a_refused_write_is_undone_newest_first(m: cgroups.CgroupManager) -> None:
    """Make cpu.max unwritable (a directory): every write before it must be restored."""
    os.unlink(os.path.join(m.dir, "cpu.max"))
    os.mkdir(os.path.join(m.dir, "cpu.max"))
    with pytest.raises(CgroupWriteError) as info:
        m.apply({"pids": {"limit": 9}, "memory": {"limit": 1 << 30, "swap": 2 << 30},
                 "cpu": {"shares": 512, "quota": 1000}})
    assert str(info.value) == f"open {m.dir}/cpu.max: is a directory"
    assert info.value.path == f"{m.dir}/cpu.max" and info.value.value == "1000 100000"
    assert (f(m, "pids.max"), f(m, "memory.max"), f(m, "memory.swap.max"), f(m, "cpu.weight")) == (
        "max", "max", "max", "100")


def test_stats_from_v2_files(m: cgroups.CgroupManager) -> None:
    st = m.stats()
    assert st["memory_stats"] == {
        "usage": 1234, "max_usage": 5678, "failcnt": 3, "limit": 2**64 - 1,
        "stats": {"anon": 4096, "file": 8192, "inactive_file": 4096, "active_anon": 4096},
        "swap_usage": 0, "swap_limit": 2**64 - 1,
    }
    assert st["cpu_stats"] == {
        "cpu_usage": {"total_usage": 1_500_000, "percpu_usage": [], "usage_in_kernelmode": 500_000,
                      "usage_in_usermode": 1_000_000},
        "throttling_data": {"periods": 7, "throttled_periods": 2, "throttled_time": 30_000},
    }
    assert st["pids_stats"] == {"current": 0, "limit": 0}
    assert st["blkio_stats"] == {
        "io_service_bytes_recursive": [{"major": 254, "minor": 0, "op": "Read", "value": 4096},
                                       {"major": 254, "minor": 0, "op": "Write", "value": 8192}],
        "io_serviced_recursive": [{"major": 254, "minor": 0, "op": "Read", "value": 1},
                                  {"major": 254, "minor": 0, "op": "Write", "value": 2}],
    }
    assert m.oom_kill_count() == 1


def test_stats_without_memory_and_pids_controllers(m: cgroups.CgroupManager) -> None:
    for name in ("memory.current", "pids.current"):
        os.unlink(os.path.join(m.dir, name))
    fs.write(os.path.join(m.dir, "cgroup.procs"), "10\n11\n")
    st = m.stats()
    assert st["memory_stats"] == {}
    assert st["pids_stats"] == {"current": 2, "limit": 0}  # counted from cgroup.procs, as runc


def test_freeze_needs_cgroup_freeze(m: cgroups.CgroupManager) -> None:
    os.unlink(os.path.join(m.dir, "cgroup.freeze"))
    with pytest.raises(cgroups.CgroupError, match="freezer not supported"):
        m.freeze()
    assert not m.is_frozen()
