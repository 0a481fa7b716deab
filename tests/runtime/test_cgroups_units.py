"""Pure logic of the cgroups package: path rules, mountinfo, conversions, the devices model, wording.
No root needed; the kernel-facing behaviour is proven in the other test_cgroups_* modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.errors import InvalidArgument, NotImplementedYet
from berth.runtime import cgroups
from berth.runtime.cgroups import devices, fs, paths, resources


# --- cgroupsPath -----------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "clean"), [
    ("", ""),
    ("/docker/abc", "/docker/abc"),
    ("/docker//abc/", "/docker/abc"),
    ("/../../etc", "/etc"),
    ("../../../x", "x"),  # a relative path never climbs above its base (runc's CleanPath)
    ("a/../../b", "b"),
    ("a/./b/", "a/b"),
    ("..", "."),
])
def test_clean_path_is_runcs(given: str, clean: str) -> None:
    assert paths.clean_path(given) == clean


def test_inner_path_defaults_to_the_container_id() -> None:
    assert paths.inner_path(None, "abc") == "abc"
    assert paths.inner_path("", "abc") == "abc"
    assert paths.inner_path("/docker/abc", "ignored") == "/docker/abc"
    for bad in ("/", "..", "/.."):
        with pytest.raises(ValueError):
            paths.inner_path(bad, "")


def test_a_path_at_the_hierarchy_root_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid cgroupsPath"):
        cgroups.manager_for("/", "id", root="/tmp", version="v2")


MOUNTINFO = """\
24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /nested /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 1 0:40 / /mnt/with\\040space rw - cgroup2 cgroup2 rw
"""

OWN = {"cpu": "/user.slice", "cpuacct": "/user.slice", "memory": "/nested/session", "devices": "/",
       "name=systemd": "/user.slice/s.scope", "": "/"}


@pytest.fixture
def mountinfo(tmp_path: Path) -> list[paths.Mount]:
    p = tmp_path / "mountinfo"
    p.write_text(MOUNTINFO)
    return paths.cgroup_mounts(str(p))


def test_mountinfo_parsing(mountinfo: list[paths.Mount], tmp_path: Path) -> None:
    assert [m.mountpoint for m in mountinfo] == [
        "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/devices",
        "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/mnt/with space"]
    assert mountinfo[1].root == "/nested" and mountinfo[0].options == ("rw", "cpu", "cpuacct")
    assert paths.mount_fstype("/mnt/with space", str(tmp_path / "mountinfo")) == "cgroup2"
    assert paths.mount_fstype("/sys/fs/cgroup", str(tmp_path / "mountinfo")) == "tmpfs"


def test_v1_absolute_paths_go_under_every_mounted_hierarchy(mountinfo: list[paths.Mount]) -> None:
    got = paths.v1_paths("/docker/abc", "/sys/fs/cgroup", mountinfo, OWN)
    assert got == {
        "devices": "/sys/fs/cgroup/devices/docker/abc",
        "memory": "/sys/fs/cgroup/memory/docker/abc",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/docker/abc",  # co-mounted: one directory for both
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/abc",
        "name=systemd": "/sys/fs/cgroup/systemd/docker/abc",
        "": "/sys/fs/cgroup/unified/docker/abc",
    }


def test_v1_relative_paths_go_under_the_own_cgroup(mountinfo: list[paths.Mount]) -> None:
    got = paths.v1_paths("abc", "/sys/fs/cgroup", mountinfo, OWN)
    assert got["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/user.slice/abc"
    assert got["memory"] == "/sys/fs/cgroup/memory/session/abc"  # own path made relative to the mount root
    assert got["devices"] == "/sys/fs/cgroup/devices/abc"
    assert got["name=systemd"] == "/sys/fs/cgroup/systemd/user.slice/s.scope/abc"
    assert got[""] == "/sys/fs/cgroup/unified/abc"  # runc: the hybrid tree ignores the own cgroup


def test_v1_without_a_devices_hierarchy_is_an_error(mountinfo: list[paths.Mount]) -> None:
    without = [m for m in mountinfo if "devices" not in m.options]
    with pytest.raises(FileNotFoundError, match="mountpoint for devices not found"):
        paths.v1_paths("/x", "/sys/fs/cgroup", without, OWN)


def test_v2_paths() -> None:
    assert paths.v2_path("/docker/abc", "/sys/fs/cgroup", {"": "/user.slice/s.scope"}) == "/sys/fs/cgroup/docker/abc"
    # relative: under the *parent* of the own cgroup (the own one holds processes)
    assert paths.v2_path("abc", "/sys/fs/cgroup", {"": "/user.slice/s.scope"}) == "/sys/fs/cgroup/user.slice/abc"
    assert paths.v2_path("abc", "/sys/fs/cgroup", {"": "/"}) == "/sys/fs/cgroup/abc"


@pytest.mark.root
def test_detect_on_this_host() -> None:
    assert cgroups.detect("/sys/fs/cgroup") == ("v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1")
    if os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        assert cgroups.detect("/sys/fs/cgroup/unified") == "v2"


def test_detect_a_plain_directory_is_v1(tmp_path: Path) -> None:
    assert cgroups.detect(str(tmp_path)) == "v1"


def test_unknown_version() -> None:
    with pytest.raises(InvalidArgument, match="unknown cgroup version"):
        cgroups.manager_for("/x", "id", version="v3")


def test_the_protocol_is_importable_lazily() -> None:
    from berth.runtime.cgroups import CgroupManager

    assert "apply" in dir(CgroupManager)


# --- conversions (runc's tables) -------------------------------------------------------------
@pytest.mark.parametrize(("shares", "weight"), [(0, 0), (1, 1), (2, 1), (3, 2), (1024, 100), (262143, 10000),
                                                (262144, 10000), (262145, 10000)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert resources.shares_to_weight(shares) == weight


@pytest.mark.parametrize(("swap", "memory", "expected"), [
    (0, 0, 0), (-1, 0, -1), (300, -1, 300), (-1, -1, -1), (-1, 1000, -1), (1000, 1000, 0), (1500, 1000, 500),
    (0, -1, -1),
])
def test_swap_to_v2(swap: int, memory: int, expected: int) -> None:
    assert resources.swap_to_v2(swap, memory) == expected


@pytest.mark.parametrize(("swap", "memory"), [(-2, 0), (500, 1000), (1000, 0), (100, -5)])
def test_swap_to_v2_refusals(swap: int, memory: int) -> None:
    with pytest.raises(InvalidArgument):
        resources.swap_to_v2(swap, memory)


def test_small_conversions() -> None:
    assert [resources.blkio_to_io_weight(w) for w in (0, 10, 100, 500, 1000)] == [0, 1, 910, 4950, 10000]
    assert [resources.v2_num(v) for v in (0, -1, 5)] == ["", "max", "5"]
    assert [resources.pids_value(v) for v in (10, 0, -1)] == ["10", "1", "max"]


def test_cpu_list_syntax() -> None:
    for good in ("0", "0-3", "0,2-3,7", " 1 "):
        assert resources.get_cpu_list({"cpus": good}, "cpus") == good
    for bad in ("a", "0-", "-1", "0,,1", "1-2-3", "٣"):
        with pytest.raises(InvalidArgument):
            resources.get_cpu_list({"cpus": bad}, "cpus")


def test_unsupported_sections_fail_loudly() -> None:
    resources.check_unsupported({"hugepageLimits": [], "network": {}})
    cases: list[dict] = [{"rdma": {"mlx": {}}}, {"network": {"classID": 1}}, {"hugepageLimits": [{"pageSize": "2MB"}]}]
    for res in cases:
        with pytest.raises(NotImplementedYet):
            resources.check_unsupported(res)


# --- the devices model -----------------------------------------------------------------------
DENY_ALL = {"allow": False, "access": "rwm"}


def test_device_rules_in_order() -> None:
    state = devices.from_oci([
        {"allow": True, "access": "rwm"},  # allow everything ...
        DENY_ALL,  # ... then Docker's deny-all resets it
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "m"},
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
        {"allow": False, "type": "c", "major": 136, "access": "m"},
    ])
    assert state == devices.DeviceState(False, {("c", 1, 3): 7, ("c", 136, -1): 3})


def test_device_list_round_trip() -> None:
    state = devices.parse_list("c 1:3 rwm\nc 136:* rw\nb *:* m\n")
    assert state == devices.DeviceState(False, {("c", 1, 3): 7, ("c", 136, -1): 3, ("b", -1, -1): 4})
    assert devices.parse_list("a *:* rwm\n") == devices.DeviceState(True)
    assert devices.parse_list("") == devices.DeviceState(False)


def test_device_transition_writes_only_the_difference() -> None:
    current = devices.parse_list("c 1:3 rwm\nc 1:5 rwm\n")
    target = devices.from_oci([DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
                               {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rw"}])
    assert devices.transition(current, target) == [("devices.allow", "c 1:9 rw"), ("devices.deny", "c 1:5 wm")]
    assert devices.transition(target, target) == []


def test_device_transition_from_allow_all_and_to_allow_all() -> None:
    allow_all = devices.DeviceState(True)
    target = devices.from_oci([DENY_ALL, {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}])
    assert devices.transition(allow_all, target) == [("devices.deny", "a"), ("devices.allow", "b 8:0 r")]
    privileged = devices.from_oci([{"allow": True, "access": "rwm"},
                                   {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}])
    assert devices.transition(target, privileged) == [("devices.allow", "a"), ("devices.deny", "c 10:229 rwm")]


@pytest.mark.parametrize(("rule", "message"), [
    ({"allow": True, "type": "x", "access": "r"}, "invalid device type"),
    ({"allow": True, "type": "c", "access": ""}, "device access at 0 field cannot be empty"),
    ({"allow": True, "type": "c", "access": "rq"}, "invalid device access"),
    ({"allow": True, "type": "c", "major": "1", "access": "r"}, "major must be an integer"),
])
def test_device_rule_refusals(rule: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        devices.from_oci([rule])


# --- wording and file helpers ----------------------------------------------------------------
def test_go_wording() -> None:
    assert fs.go_strerror(22) == "invalid argument"
    assert fs.go_strerror(16) == "device or resource busy"
    assert fs.go_quote('a"b\n') == '"a\\"b\\n"'


def test_write_refusal_names_file_and_value(tmp_path: Path) -> None:
    missing = str(tmp_path / "memory.max")
    with pytest.raises(fs.CgroupWriteError) as info:
        fs.write(missing, "64")
    assert str(info.value) == f"open {missing}: no such file or directory"
    assert (info.value.path, info.value.value, info.value.errno) == (missing, "64", 2)


def test_read_int_and_parse_kv(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_text("max\n")
    assert fs.read_int(str(p)) == 2**64 - 1
    p.write_text("42\n")
    assert fs.read_int(str(p)) == 42
    assert fs.read_int(str(tmp_path / "nope"), 7) == 7
    assert fs.parse_kv("a 1\nb x\nc 3 4\nd 5\n") == {"a": 1, "d": 5}


def test_txn_rollback_restores_newest_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1\n")
    b.write_text("x\n")
    txn = fs.Txn()
    txn.write(str(a), "2")
    txn.write(str(a), "3")
    txn.write(str(b), "y", restore="z")
    order: list[str] = []
    txn.on_rollback(lambda: order.append("custom"))
    txn.rollback()
    assert (a.read_text(), b.read_text(), order) == ("1", "z", ["custom"])
    txn.rollback()  # a second rollback does nothing
    assert a.read_text() == "1"


def test_runc_default_devices_are_appended() -> None:
    res = devices.with_runc_defaults({"devices": [DENY_ALL], "pids": {"limit": 5}})
    assert res["pids"] == {"limit": 5} and res["devices"][0] == DENY_ALL
    state = devices.from_oci(res["devices"])
    assert state.exceptions[("c", -1, -1)] == 4 and state.exceptions[("b", -1, -1)] == 4  # mknod anything
    assert state.exceptions[("c", 136, -1)] == 7 and state.exceptions[("c", 10, 200)] == 7
    # no rules at all still means a deny-all allow-list (runc's emulator starts empty)
    assert devices.from_oci(devices.with_runc_defaults({})["devices"]).default_allow is False
    # a node the spec defines itself drops the default rule for its path (runc's createDevices)
    res = devices.with_runc_defaults({}, [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}])
    assert ("c", 1, 3) not in devices.from_oci(res["devices"]).exceptions
