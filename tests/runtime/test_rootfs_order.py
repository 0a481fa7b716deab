"""Mounts the init defers until the cgroup exists keep their order relative to each other."""
from berth.runtime.linux.rootfs import _nested_in


def test_mount_under_a_deferred_cgroup_mount_is_deferred_too() -> None:
    cg = [{"destination": "/sys/fs/cgroup", "type": "cgroup"}]
    assert _nested_in({"destination": "/sys/fs/cgroup/x"}, cg)
    assert _nested_in({"destination": "/sys/fs/cgroup/"}, cg)
    assert _nested_in({"destination": "/sys/fs/cgroup/../cgroup/y"}, cg)


def test_unrelated_mounts_are_not_deferred() -> None:
    cg = [{"destination": "/sys/fs/cgroup", "type": "cgroup"}]
    assert not _nested_in({"destination": "/sys/fs/cgroupx"}, cg)
    assert not _nested_in({"destination": "/sys/fs"}, cg)
    assert not _nested_in({"destination": "/data"}, [])
