"""A Docker user's first minutes, through the real docker CLI 28 against berthd."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.e2e.daemon import DOCKER, Berthd


def _wait_for(fn, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def test_run_detached_ps_logs_stop_rm(berthd: Berthd) -> None:
    d = berthd.docker
    r = d("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo started; while :; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    try:
        ps = d("ps").stdout.splitlines()
        assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        assert cid[:12] in ps[1] and "web" in ps[1] and "Up " in ps[1]
        assert _wait_for(lambda: d("logs", "web").stdout == "started\n")
        insp = json.loads(d("inspect", "web").stdout)[0]
        assert insp["State"]["Running"] and insp["State"]["Status"] == "running" and insp["State"]["Pid"] > 0
        assert insp["Name"] == "/web" and insp["Config"]["Image"] == "busybox"
        assert os.path.exists(f"/proc/{insp['State']['Pid']}")
        r = d("rm", "web")
        assert r.returncode == 1
        assert "cannot remove container" in r.stderr and "container is running" in r.stderr
        t0 = time.monotonic()
        r = d("stop", "-t", "1", "web")
        assert r.returncode == 0 and r.stdout.strip() == "web"
        assert 0.9 < time.monotonic() - t0 < 8  # sh as pid 1 ignores SIGTERM: SIGKILL after 1 s
        insp = json.loads(d("inspect", "web").stdout)[0]
        assert insp["State"]["Status"] == "exited" and insp["State"]["ExitCode"] == 137
        assert "Exited (137)" in d("ps", "-a").stdout
        assert d("rm", "web").returncode == 0
    finally:
        d("rm", "-f", cid)
    r = d("inspect", "web")
    assert r.returncode == 1 and "No such object: web" in r.stderr


def test_stop_with_trap_is_quick_and_clean(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done").stdout.strip()
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        assert d("stop", cid).returncode == 0
        assert time.monotonic() - t0 < 5
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["ExitCode"] == 0
    finally:
        d("rm", "-f", cid)


def test_exec(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        r = d("exec", cid, "sh", "-c", "echo $$ from exec; exit 5")
        assert r.returncode == 5 and r.stdout.endswith("from exec\n")
        r = d("exec", "-e", "A=b", "-w", "/tmp", "-u", "1000", cid, "sh", "-c", "echo $A $(pwd) $(id -u)")
        assert r.stdout == "b /tmp 1000\n", r.stderr
        r = d("exec", cid, "nosuchcmd")
        assert r.returncode == 127, (r.returncode, r.stdout, r.stderr)
        r = subprocess.run([DOCKER, "exec", "-i", cid, "cat"], input="piped\n", capture_output=True, text=True,
                           env=berthd.env(), timeout=30)
        assert r.stdout == "piped\n"
        assert d("exec", "-d", cid, "sh", "-c", "echo bg > /tmp/bg").returncode == 0
        assert _wait_for(lambda: d("exec", cid, "cat", "/tmp/bg").stdout == "bg\n")
    finally:
        d("rm", "-f", cid)


def test_pause_unpause(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sh", "-c", "while :; do date +%s%N > /tmp/t; done").stdout.strip()
    try:
        time.sleep(0.3)
        assert d("pause", cid).returncode == 0
        assert "(Paused)" in d("ps").stdout
        r = d("exec", cid, "true")
        assert r.returncode != 0 and "is paused" in r.stderr
        assert d("pause", cid).returncode == 1
        assert d("unpause", cid).returncode == 0
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["Status"] == "running"
    finally:
        d("rm", "-f", cid)


def test_wait_and_exit_codes(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sh", "-c", "sleep 0.3; exit 7").stdout.strip()
    try:
        r = d("wait", cid)
        assert r.stdout.strip() == "7"
    finally:
        d("rm", "-f", cid)
    assert d("run", "--rm", "busybox", "nosuchcmd").returncode == 127
    assert d("run", "--rm", "busybox", "/etc").returncode == 126
    r = d("run", "--rm", "busybox", "sh", "-c", "kill -9 $$ & sleep 5; sleep 30 & kill -9 $!; wait $!")
    assert r.returncode == 137


def test_errors_change_nothing(berthd: Berthd) -> None:
    d = berthd.docker
    r = d("rm", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    r = d("start", "nosuch")
    assert "No such container: nosuch" in r.stderr
    cid = d("create", "--name", "dup", "busybox", "true").stdout.strip()
    try:
        # `docker create` exits 1 on a daemon error (only `run` uses 125)
        r = d("create", "--name", "dup", "busybox", "true")
        assert r.returncode == 1 and 'The container name "/dup" is already in use' in r.stderr
        r = d("run", "--name", "bad name!", "busybox", "true")
        assert r.returncode == 125 and "Invalid container name" in r.stderr
    finally:
        d("rm", "-f", cid)
    assert d("ps", "-aq").stdout == ""


def test_rename_restart_and_status(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "--name", "old", "busybox", "sleep", "60").stdout.strip()
    try:
        assert d("rename", "old", "new").returncode == 0
        assert json.loads(d("inspect", cid).stdout)[0]["Name"] == "/new"
        pid1 = json.loads(d("inspect", "new").stdout)[0]["State"]["Pid"]
        assert d("restart", "-t", "0", "new").returncode == 0
        pid2 = json.loads(d("inspect", "new").stdout)[0]["State"]["Pid"]
        assert pid2 != pid1 and pid2 > 0
    finally:
        d("rm", "-f", cid)


@pytest.mark.parametrize("policy,expect_restarts", [("on-failure:2", 2), ("no", 0)])
def test_restart_policy(berthd: Berthd, policy: str, expect_restarts: int) -> None:
    d = berthd.docker
    cid = d("run", "-d", "--restart", policy, "busybox", "sh", "-c", "exit 1").stdout.strip()
    try:
        def settled() -> bool:
            st = json.loads(d("inspect", cid).stdout)[0]
            return not st["State"]["Running"] and st["RestartCount"] == expect_restarts

        assert _wait_for(settled, 15), d("inspect", cid).stdout
        time.sleep(0.5)
        assert json.loads(d("inspect", cid).stdout)[0]["RestartCount"] == expect_restarts
    finally:
        d("rm", "-f", cid)


def test_logs_follow_while_writing(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done").stdout.strip()
    try:
        r = d("logs", "-f", cid, timeout=30)
        assert r.stdout.split() == [f"line{i}" for i in range(1, 6)]
        r = d("logs", "--tail", "2", "-t", cid)
        lines = r.stdout.splitlines()
        assert len(lines) == 2 and lines[1].endswith(" line5") and lines[0][:4].isdigit()
    finally:
        d("rm", "-f", cid)


def test_stdin_and_tty(berthd: Berthd) -> None:
    r = subprocess.run([DOCKER, "run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"], input="hello\n",
                       capture_output=True, text=True, env=berthd.env(), timeout=30)
    assert r.stdout == "HELLO\n", r.stderr
    master, slave = os.openpty()
    p = subprocess.Popen([DOCKER, "run", "--rm", "-it", "busybox", "sh", "-c", "tty; stty size"], stdin=slave,
                         stdout=slave, stderr=slave, env=berthd.env())
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert p.wait(timeout=20) == 0
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    assert b"/dev/pts/0" in out, out


def test_top_stats_cp_diff_health(berthd: Berthd, tmp_path: str) -> None:
    d = berthd.docker
    cid = d("run", "-d", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
            "busybox", "sh", "-c", "echo data > /tmp/file; sleep 60").stdout.strip()
    try:
        r = d("top", cid)
        assert r.returncode == 0 and "sleep 60" in r.stdout and r.stdout.startswith("UID"), r.stderr
        r = d("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", cid)
        assert r.returncode == 0 and r.stdout.split()[1] == "1", r.stdout + r.stderr  # sh exec()s the sleep
        out = os.path.join(str(tmp_path), "file")
        assert _wait_for(lambda: d("cp", f"{cid}:/tmp/file", out).returncode == 0)
        with open(out) as f:
            assert f.read() == "data\n"
        with open(os.path.join(str(tmp_path), "in"), "w") as f:
            f.write("uploaded\n")
        assert d("cp", os.path.join(str(tmp_path), "in"), f"{cid}:/tmp/in").returncode == 0
        assert d("exec", cid, "cat", "/tmp/in").stdout == "uploaded\n"
        diff = d("diff", cid).stdout.split("\n")
        assert "C /tmp" in diff and "A /tmp/file" in diff and "A /tmp/in" in diff
        assert _wait_for(lambda: "unhealthy" in d("ps").stdout, 15), d("inspect", cid).stdout
        d("exec", cid, "touch", "/tmp/ok")
        assert _wait_for(lambda: "(healthy)" in d("ps").stdout, 15)
        health = json.loads(d("inspect", cid).stdout)[0]["State"]["Health"]
        assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0
    finally:
        d("rm", "-f", cid)
