"""Containers outlive berthd: SIGKILL the daemon, start it again, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.e2e.daemon import Berthd, preload_busybox


@pytest.fixture
def own_berthd(tmp_path_factory: pytest.TempPathFactory, image_cache: str) -> Iterator[Berthd]:
    base = str(tmp_path_factory.mktemp("berthd-lr"))
    leaks.add_scope(base)
    d = Berthd(base)
    preload_busybox(d, image_cache)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


def _inspect(d: Berthd, ref: str) -> dict:
    return json.loads(d.docker("inspect", ref).stdout)[0]


def test_sigkill_daemon_containers_keep_running_and_logging(own_berthd: Berthd) -> None:
    d = own_berthd
    cid = d.docker("run", "-d", "busybox", "sh", "-c",
                   "i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done").stdout.strip()
    ended = d.docker("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 4").stdout.strip()
    pid = _inspect(d, cid)["State"]["Pid"]
    time.sleep(0.5)
    d.stop(signal.SIGKILL)
    time.sleep(1.5)  # the container keeps writing; the other one exits while berthd is down
    assert os.path.exists(f"/proc/{pid}"), "the container died with the daemon"
    d.start()
    st = _inspect(d, cid)["State"]
    assert st["Running"] and st["Pid"] == pid
    gone = _inspect(d, ended)["State"]
    assert not gone["Running"] and gone["ExitCode"] == 4
    time.sleep(0.3)
    lines = d.docker("logs", cid).stdout.split()
    numbers = [int(x[4:]) for x in lines]
    assert numbers == list(range(1, len(numbers) + 1)), "a log line was lost or reordered"
    assert len(numbers) >= 15
    # and it is fully manageable again
    r = d.docker("exec", cid, "echo", "still here")
    assert r.stdout == "still here\n", r.stderr
    assert d.docker("stop", "-t", "1", cid).returncode == 0
    assert _inspect(d, cid)["State"]["ExitCode"] == 137
    d.docker("rm", "-f", cid, ended)


def test_without_live_restore_containers_stop_with_the_daemon(tmp_path_factory: pytest.TempPathFactory,
                                                                image_cache: str) -> None:
    base = str(tmp_path_factory.mktemp("berthd-nolr"))
    leaks.add_scope(base)
    d = Berthd(base, "--live-restore=false")
    preload_busybox(d, image_cache)
    d.start()
    try:
        cid = d.docker("run", "-d", "busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done").stdout
        cid = cid.strip()
        pid = _inspect(d, cid)["State"]["Pid"]
        d.stop()
        assert not os.path.exists(f"/proc/{pid}")
        d.start()
        st = _inspect(d, cid)["State"]
        assert not st["Running"] and st["ExitCode"] == 0
    finally:
        d.cleanup()


def test_always_restart_policy_comes_back_with_the_daemon(own_berthd: Berthd) -> None:
    d = own_berthd
    d2 = Berthd(d.base, "--live-restore=false")
    d2.cgroup_parent = d.cgroup_parent
    cid = d.docker("run", "-d", "--restart", "always", "busybox", "sleep", "60").stdout.strip()
    d.stop()  # live restore: the container keeps running
    d2.start()  # no live-restore now: it stops what runs, then starts `always` containers again
    try:
        st = _inspect(d2, cid)["State"]
        assert st["Running"], st
    finally:
        d2.cleanup()


def test_a_killed_monitor_leaves_nothing_behind(own_berthd: Berthd) -> None:
    d = own_berthd
    cid = d.docker("run", "-d", "busybox", "sleep", "60").stdout.strip()
    pid = _inspect(d, cid)["State"]["Pid"]
    with open(os.path.join(d.exec_root, cid, "monitor.pid")) as f:
        monitor = int(f.read())
    os.kill(monitor, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _inspect(d, cid)["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    st = _inspect(d, cid)["State"]
    assert not st["Running"] and st["ExitCode"] == 137 and "monitor" in st["Error"]
    assert not _alive(pid), "the container outlived its monitor's cleanup"
    d.docker("rm", cid)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for the host's init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
