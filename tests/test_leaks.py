"""The leak checker itself must be able to fail (a test that cannot fail is a defect)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import leaks


@pytest.mark.root
def test_detects_leaked_mount_and_cgroup(tmp_path: os.PathLike[str]) -> None:
    leaks.add_scope(str(tmp_path))
    before = leaks.snapshot()
    target = os.path.join(tmp_path, "m")
    os.mkdir(target)
    subprocess.run(["mount", "-t", "tmpfs", "x", target], check=True)
    cg = os.path.join("/sys/fs/cgroup/pids", leaks.name())
    os.mkdir(cg)
    try:
        diff = leaks.new_since(before)
        assert diff.get("mounts") == [target]
        assert diff.get("cgroups") == [cg]
    finally:
        subprocess.run(["umount", target], check=True)
        os.rmdir(cg)
    assert leaks.new_since(before) == {}


@pytest.mark.root
def test_detects_leaked_process() -> None:
    before = leaks.snapshot()
    p = subprocess.Popen(["sleep", "30"])
    try:
        diff = leaks.new_since(before)
        assert any(str(p.pid) in x for x in diff.get("processes", []))
    finally:
        p.kill()
        p.wait()
    assert "processes" not in leaks.new_since(before)
