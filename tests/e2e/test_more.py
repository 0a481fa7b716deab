"""commit, export, update, --init, clamped resources, prune: the rest of a Docker user's day."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time

from tests.e2e.daemon import DOCKER, Berthd


def test_commit_and_run_the_new_image(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sh", "-c", "echo committed > /marker; sleep 60").stdout.strip()
    try:
        time.sleep(0.5)
        r = d("commit", "-c", "CMD [\"cat\", \"/marker\"]", cid, "berth-test/committed:1")
        assert r.returncode == 0, r.stderr
        r = d("run", "--rm", "berth-test/committed:1")
        assert r.stdout == "committed\n", r.stderr
    finally:
        d("rm", "-f", cid)
        d("rmi", "berth-test/committed:1")


def test_export_is_a_flat_tar_of_the_container(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("create", "busybox", "true").stdout.strip()
    try:
        p = subprocess.run([DOCKER, "export", cid], env=berthd.env(), capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
            names = tf.getnames()
        assert any(n.rstrip("/").endswith("bin/busybox") for n in names)
    finally:
        d("rm", "-f", cid)


def test_update_resources_of_a_running_container(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "-m", "64m", "busybox", "sleep", "60").stdout.strip()
    try:
        r = d("update", "--memory", "96m", "--memory-swap", "96m", "--pids-limit", "33", cid)
        assert r.returncode == 0, r.stderr
        hc = json.loads(d("inspect", cid).stdout)[0]["HostConfig"]
        assert hc["Memory"] == 96 << 20 and hc["PidsLimit"] == 33
        r = d("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max")
        assert r.stdout.split() == [str(96 << 20), "33"], r.stderr
    finally:
        d("rm", "-f", cid)


def test_init_is_pid1_and_stops_fast(berthd: Berthd) -> None:
    d = berthd.docker
    r = d("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.stdout.startswith("/sbin/docker-init -- sh"), r.stdout + r.stderr
    cid = d("run", "-d", "--init", "busybox", "sleep", "60").stdout.strip()
    try:
        t0 = time.monotonic()
        assert d("stop", cid).returncode == 0
        assert time.monotonic() - t0 < 5
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["ExitCode"] == 143
    finally:
        d("rm", "-f", cid)


def test_requests_the_host_cannot_grant_are_clamped_with_a_warning(berthd: Berthd) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    r = berthd.docker("run", "--rm", "--ulimit", f"nofile={hard + 1000}:{hard + 1000}", "busybox", "sh", "-c",
                      "ulimit -Hn")
    assert r.returncode == 0, r.stderr
    if int(r.stdout.strip()) == hard + 1000:
        return  # this host can raise hard limits: nothing to clamp
    assert int(r.stdout.strip()) <= hard
    assert "WARNING" in r.stderr


def test_prune_removes_stopped_containers_only(berthd: Berthd) -> None:
    d = berthd.docker
    stopped = d("run", "-d", "busybox", "true").stdout.strip()
    running = d("run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        d("wait", stopped)
        r = d("container", "prune", "-f")
        assert r.returncode == 0 and stopped in r.stdout
        assert d("inspect", stopped).returncode == 1
        assert json.loads(d("inspect", running).stdout)[0]["State"]["Running"]
    finally:
        d("rm", "-f", stopped, running)
