"""create → start → running ⇄ paused → stopped → deleted, through `berth-runtime` as runc's users drive it."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests import leaks
from tests.runtime.rt import Bundle, make_bundle

pytestmark = pytest.mark.root


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def _state(b: Bundle, cid: str) -> dict:
    r = b.cli("state", cid)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _wait_status(b: Bundle, cid: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = _state(b, cid)
        if st["status"] == status or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_created_state_does_not_run_the_program(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sh", "-c", "touch /ran; sleep 60"]))
    r = b.cli("create", "--bundle", b.path, cid)
    assert r.returncode == 0, r.stderr
    try:
        st = _state(b, cid)
        assert st["status"] == "created" and st["id"] == cid and st["pid"] > 0
        assert st["bundle"] == b.path and st["ociVersion"]
        time.sleep(0.2)
        assert not os.path.exists(os.path.join(b.rootfs, "ran"))
        assert b.cli("create", "--bundle", b.path, cid).stderr.count("container with given ID already exists")
        r = b.cli("start", cid)
        assert r.returncode == 0, r.stderr
        assert _state(b, cid)["status"] == "running"
        deadline = time.monotonic() + 5
        while not os.path.exists(os.path.join(b.rootfs, "ran")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.path.exists(os.path.join(b.rootfs, "ran"))
        assert "cannot start an already running container" in b.cli("start", cid).stderr
        # delete of a running container needs --force
        r = b.cli("delete", cid)
        assert r.returncode == 1 and "that is not stopped: running" in r.stderr
        r = b.cli("kill", cid, "KILL")
        assert r.returncode == 0, r.stderr
        assert _wait_status(b, cid, "stopped")["status"] == "stopped"
        assert "container not running" in b.cli("kill", cid).stderr
    finally:
        b.cli("delete", "--force", cid)
    assert b.cli("state", cid).returncode == 1
    assert "container does not exist" in b.cli("state", cid).stderr
    assert not os.path.exists(os.path.join(b.state_root, cid))


def test_killing_init_before_start_makes_start_fail(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["true"]))
    assert b.cli("create", cid).returncode == 0
    try:
        assert b.cli("kill", cid, "9").returncode == 0
        assert _wait_status(b, cid, "stopped")["status"] == "stopped"
        r = b.cli("start", cid)
        assert r.returncode == 1 and "stopped" in r.stderr
    finally:
        b.cli("delete", "-f", cid)


def test_default_kill_is_sigterm_and_exit_status(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sh", "-c", "trap 'echo got-term > /termed; exit 7' TERM; while :; do sleep 0.05; done"]))
    assert b.cli("run", "-d", cid).returncode == 0
    try:
        time.sleep(0.3)
        assert b.cli("kill", cid).returncode == 0
        assert _wait_status(b, cid, "stopped")["status"] == "stopped"
        with open(os.path.join(b.rootfs, "termed")) as f:
            assert f.read() == "got-term\n"
    finally:
        b.cli("delete", "-f", cid)


def test_run_exit_code_when_killed_is_128_plus_signal(b: Bundle) -> None:
    # sh as pid 1 ignores its own SIGKILL from inside the namespace; a child killed by a signal
    # makes sh exit with 128+sig; and the runtime itself reports 128+sig for a killed init.
    r = b.sh("sleep 30 & kill -9 $!; wait $!")
    assert r.returncode == 137
    cid = leaks.name("c")
    b.write(b.config(["sleep", "30"]))
    assert b.cli("run", "-d", cid).returncode == 0
    try:
        assert b.cli("kill", cid, "KILL").returncode == 0
        assert _wait_status(b, cid, "stopped")["status"] == "stopped"
    finally:
        b.cli("delete", cid)


def test_pause_freezes_and_resume_thaws(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /c.tmp; mv /c.tmp /counter; done"]))
    assert b.cli("run", "-d", cid).returncode == 0
    counter = os.path.join(b.rootfs, "counter")
    try:
        time.sleep(0.3)
        r = b.cli("pause", cid)
        assert r.returncode == 0, r.stderr
        assert _state(b, cid)["status"] == "paused"
        time.sleep(0.1)
        with open(counter) as f:
            frozen = f.read()
        time.sleep(0.5)
        with open(counter) as f:
            assert f.read() == frozen, "the counter advanced while paused"
        r = b.cli("exec", cid, "true")
        assert r.returncode == 255 and "paused" in r.stderr
        assert "container not paused" not in b.cli("resume", cid).stderr
        assert _state(b, cid)["status"] == "running"
        time.sleep(0.3)
        with open(counter) as f:
            assert f.read() != frozen
        assert "container not paused" in b.cli("resume", cid).stderr
        # a paused container can be force-deleted (SIGKILL needs a thaw on cgroup v1)
        assert b.cli("pause", cid).returncode == 0
    finally:
        r = b.cli("delete", "--force", cid)
        assert r.returncode == 0, r.stderr


def test_exec_joins_the_same_namespaces(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sh", "-c", "echo init > /marker; sleep 60"], hostname="ctr"))
    assert b.cli("run", "-d", cid).returncode == 0
    try:
        time.sleep(0.2)
        init_pid = _state(b, cid)["pid"]
        r = b.cli("exec", cid, "sh", "-c", "cat /marker; hostname; echo $$; ls -l /proc/self/ns | sed 's/.*-> //'")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split("\n")
        assert lines[0] == "init" and lines[1] == "ctr"
        assert int(lines[2]) > 1  # inside the pid namespace, not pid 1
        ns_inside = {ln.split(":")[0]: ln for ln in lines[3:] if ln}
        for name in ("ipc", "mnt", "net", "pid", "uts"):
            host_view = os.readlink(f"/proc/{init_pid}/ns/{name}")
            assert ns_inside[name] == host_view
        # exit status, env, cwd, user
        assert b.cli("exec", cid, "sh", "-c", "exit 4").returncode == 4
        r = b.cli("exec", "-e", "X=1", "--cwd", "/tmp", "-u", "1000:1000", cid, "sh", "-c", "echo $X $(pwd) $(id -u)")
        assert r.stdout.strip() == "1 /tmp 1000", r.stderr
        r = b.cli("exec", cid, "nosuchcmd")
        assert r.returncode == 255 and "executable file not found" in r.stderr
        # ps lists the init
        r = b.cli("ps", "--format", "json", cid)
        assert init_pid in json.loads(r.stdout)
        r = b.cli("ps", cid)
        assert "sleep 60" in r.stdout and r.stdout.startswith("UID")
    finally:
        b.cli("delete", "-f", cid)


def test_exec_detached_and_pid_file(b: Bundle, tmp_path: str) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sleep", "60"]))
    pidfile = os.path.join(str(tmp_path), "init.pid")
    assert b.cli("run", "-d", "--pid-file", pidfile, cid).returncode == 0
    try:
        with open(pidfile) as f:
            assert int(f.read()) == _state(b, cid)["pid"]
        epid = os.path.join(str(tmp_path), "exec.pid")
        r = b.cli("exec", "-d", "--pid-file", epid, cid, "sh", "-c", "echo hi > /tmp/x; sleep 60")
        assert r.returncode == 0, r.stderr
        with open(epid) as f:
            pid = int(f.read())
        assert os.path.exists(f"/proc/{pid}")
    finally:
        b.cli("delete", "-f", cid)


def test_list(b: Bundle) -> None:
    cid = leaks.name("c")
    b.write(b.config(["sleep", "60"]))
    assert b.cli("create", cid).returncode == 0
    try:
        r = b.cli("list")
        assert r.stdout.split("\n")[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        assert cid in r.stdout and "created" in r.stdout
        assert b.cli("list", "-q").stdout.split() == [cid]
        assert json.loads(b.cli("list", "--format", "json").stdout)[0]["status"] == "created"
    finally:
        b.cli("delete", cid)  # a created container can be deleted without --force


def test_hooks_get_state_on_stdin(b: Bundle, tmp_path: str) -> None:
    out = os.path.join(str(tmp_path), "hooks")
    os.mkdir(out)
    hook = os.path.join(str(tmp_path), "hook.sh")
    with open(hook, "w") as f:
        f.write(f"#!/bin/sh\ncat > {out}/$1\n")
    os.chmod(hook, 0o755)
    hooks = {n: [{"path": hook, "args": ["hook.sh", n]}]
             for n in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    r = b.run(["true"], hooks=hooks)
    assert r.returncode == 0, r.stderr
    for n in hooks:
        with open(os.path.join(out, n)) as f:
            st = json.loads(f.read())
        assert st["ociVersion"] and st["id"].startswith("c-") and st["bundle"] == b.path, n
        assert st["pid"] > 0 or n == "poststop"


def test_failing_prestart_hook_fails_create_and_leaves_nothing(b: Bundle, tmp_path: str) -> None:
    r = b.run(["true"], hooks={"prestart": [{"path": "/bin/false"}]})
    assert r.returncode == 1 and "prestart hook" in r.stderr
    assert os.listdir(b.state_root) == []
