"""The real docker CLI 28 against berth's Engine API over the fake daemon."""

from __future__ import annotations

import json

import pytest

from .conftest import Engine

pytestmark = pytest.mark.docker_cli


def test_version(engine: Engine) -> None:
    r = engine.docker("version")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "Server: Berth Engine" in out
    assert "API version:      1.44 (minimum version 1.24)" in out
    assert "Version:          0.1.0" in out
    assert "berth-runtime:" in out
    srv = json.loads(engine.docker("version", "--format", "{{json .Server}}").stdout)
    assert srv["ApiVersion"] == "1.44" and srv["MinAPIVersion"] == "1.24" and srv["Os"] == "linux"
    assert srv["Components"][0]["Name"] == "Engine"


def test_run_rm_echo_exit_code_and_order(engine: Engine) -> None:
    r = engine.docker("run", "--rm", "-e", "EXIT_CODE=3", "busybox", "later", "hello", "world")
    assert r.stdout == b"hello world\n", r.stderr
    assert r.returncode == 3
    calls = engine.daemon.calls
    assert calls[:4] == ["create", "attach", "wait:removed", "start"], calls
    assert engine.daemon.containers == {}  # --rm: auto-removed


def test_run_interactive_stdin_half_close(engine: Engine) -> None:
    # -i: the CLI writes stdin, then half-closes; StdinOnce && !Tty closes the container's stdin and
    # the output keeps flowing until the container exits.
    r = engine.docker("run", "-i", "--rm", "-e", "EXIT_CODE=5", "busybox", "cat", input=b"abc\nxyz")
    assert r.stdout == b"abc\nxyz", r.stderr
    assert r.returncode == 5


def test_run_stderr_is_demultiplexed(engine: Engine) -> None:
    r = engine.docker("run", "--rm", "busybox", "fail", "oops")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"oops\n")


def test_run_tty_raw_stream(engine: Engine) -> None:
    r = engine.docker("run", "-t", "--rm", "busybox", "later", "tty")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"tty\n"  # raw: no 8-byte headers


def test_run_detached_then_logs_exec_stop_rm(engine: Engine) -> None:
    r = engine.docker("run", "-d", "--name", "c1", "busybox", "sleep")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    assert len(cid) == 64
    assert engine.daemon.calls[:3] == ["create", "wait:next-exit", "start"]

    ps = engine.docker("ps", "--format", "{{.Names}} {{.Status}}")
    assert ps.stdout == b"c1 Up 1 second\n", ps.stderr

    ex = engine.docker("exec", "-e", "EXIT_CODE=7", "c1", "echo", "from", "exec")
    assert (ex.stdout, ex.returncode) == (b"from exec\n", 7), ex.stderr
    ex = engine.docker("exec", "-i", "c1", "cat", input=b"piped")
    assert (ex.stdout, ex.returncode) == (b"piped", 0), ex.stderr

    rm = engine.docker("rm", "c1")
    assert rm.returncode == 1
    assert rm.stderr.decode().strip() == ('Error response from daemon: cannot remove container "/c1": container is '
                                          "running: stop the container before removing or force remove")
    st = engine.docker("stop", "c1")
    assert (st.returncode, st.stdout) == (0, b"c1\n"), st.stderr
    st = engine.docker("stop", "c1")  # 304: already stopped still succeeds
    assert st.returncode == 0, st.stderr
    ps = engine.docker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert ps.stdout == b"c1 Exited (143) 1 second ago\n"
    assert engine.docker("rm", "c1").returncode == 0
    assert engine.daemon.containers == {}


def test_logs_framed_and_timestamps(engine: Engine) -> None:
    assert engine.docker("run", "--name", "l1", "busybox", "echo", "line").returncode == 0
    r = engine.docker("logs", "l1")
    assert (r.stdout, r.returncode) == (b"line\n", 0)
    r = engine.docker("logs", "-t", "l1")
    ts, _, rest = r.stdout.decode().partition(" ")
    assert rest == "line\n"
    assert len(ts) == 30 and ts.endswith("Z") and ts[10] == "T"  # RFC3339 with 9 fraction digits


def test_errors_use_mobys_messages(engine: Engine) -> None:
    r = engine.docker("rm", "nosuch")
    assert r.returncode == 1
    assert r.stderr == b"Error response from daemon: No such container: nosuch\n"
    r = engine.docker("kill", "nosuch")
    assert r.stderr == b"Error response from daemon: cannot kill container: nosuch: No such container: nosuch\n"
    r = engine.docker("inspect", "nosuch")
    assert r.returncode == 1
    assert r.stdout == b"[]\n" and r.stderr == b"Error: No such object: nosuch\n"


def test_run_missing_image_pulls_then_reports(engine: Engine) -> None:
    r = engine.docker("run", "--rm", "nosuchimage")
    err = r.stderr.decode()
    assert r.returncode == 125
    assert "Unable to find image 'nosuchimage:latest' locally" in err
    assert ("Error response from daemon: pull access denied for nosuchimage, repository does not exist or may "
            "require 'docker login'") in err


def test_pull_stream_and_in_band_error(engine: Engine) -> None:
    r = engine.docker("pull", "busybox")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "Pull complete" in out and "Status: Downloaded newer image for busybox:latest" in out
    r = engine.docker("pull", "brokenimage")
    assert r.returncode == 1
    assert "failed to register layer: broken layer" in r.stderr.decode()


def test_load_error_in_band(engine: Engine, tmp_path: object) -> None:
    r = engine.docker("load", input=b"not a tarball")
    assert r.returncode == 1
    assert "archive/tar: invalid tar header" in r.stderr.decode()
    r = engine.docker("load", input=b"tar...")
    assert (r.returncode, r.stdout) == (0, b"Loaded image: busybox:latest\n"), r.stderr


def test_api_version_bounds(engine: Engine) -> None:
    r = engine.docker("version", env={"DOCKER_API_VERSION": "1.45"})
    assert "client version 1.45 is too new. Maximum supported API version is 1.44" in r.stderr.decode()
    r = engine.docker("ps", env={"DOCKER_API_VERSION": "1.12"})
    assert ("client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client "
            "to a newer version") in r.stderr.decode()
    r = engine.docker("ps", env={"DOCKER_API_VERSION": "1.24"})
    assert r.returncode == 0, r.stderr


def test_old_api_run_uses_events_wait(engine: Engine) -> None:
    # Below 1.30 the CLI waits for the "die" event instead of the wait condition.
    r = engine.docker("run", "--rm", "-e", "EXIT_CODE=4", "busybox", "later", "old", env={"DOCKER_API_VERSION": "1.25"})
    assert (r.stdout, r.returncode) == (b"old\n", 4), r.stderr


def test_swarm_and_plugins_not_supported(engine: Engine) -> None:
    r = engine.docker("swarm", "leave")
    assert r.stderr == b"Error response from daemon: This node is not part of a swarm\n"
    r = engine.docker("node", "ls")
    assert b"This node is not a swarm manager." in r.stderr
    r = engine.docker("plugin", "ls")
    assert r.returncode == 0, r.stderr
    info = engine.docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.ServerVersion}} {{.OSType}}")
    assert info.stdout == b"inactive 0.1.0 linux\n", info.stderr


def test_info(engine: Engine) -> None:
    engine.docker("create", "--name", "x", "busybox", "true")
    r = engine.docker("info")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "Containers: 1" in out and "Server Version: 0.1.0" in out and "Swarm: inactive" in out


def test_events_since_until(engine: Engine) -> None:
    import time

    t0 = int(time.time()) - 1
    engine.docker("run", "--rm", "--name", "ev1", "busybox", "echo", "x")
    r = engine.docker("events", "--since", str(t0), "--until", str(int(time.time()) + 1),
                      "--filter", "container=ev1", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["container create ev1", "container start ev1", "container die ev1",
                                              "container destroy ev1"]


def test_networks_and_volumes(engine: Engine) -> None:
    assert engine.docker("network", "create", "n1").returncode == 0
    ls = engine.docker("network", "ls", "--format", "{{.Name}}")
    assert sorted(ls.stdout.decode().split()) == ["bridge", "n1"]
    r = engine.docker("network", "rm", "n2")
    assert b"network n2 not found" in r.stderr
    assert engine.docker("network", "rm", "n1").returncode == 0
    assert engine.docker("volume", "create", "v1").stdout == b"v1\n"
    assert engine.docker("volume", "ls", "-q").stdout == b"v1\n"
    assert engine.docker("volume", "rm", "v1").returncode == 0
    r = engine.docker("volume", "inspect", "v1")
    assert b"get v1: no such volume" in r.stderr


def test_cp_archive(engine: Engine, tmp_path: object) -> None:
    import os

    engine.docker("create", "--name", "cp1", "busybox", "true")
    dest = os.path.join(str(tmp_path), "hn")
    r = engine.docker("cp", "cp1:/etc/hostname", dest)
    assert r.returncode == 0, r.stderr
    with open(dest, "rb") as f:
        assert f.read() == b"fakehostname\n"
    src = os.path.join(str(tmp_path), "up.txt")
    with open(src, "wb") as f:
        f.write(b"x" * 5000)
    r = engine.docker("cp", src, "cp1:/etc/hostname")
    assert r.returncode == 0, r.stderr
    assert any(c.startswith("archive_put:cp1:/etc") for c in engine.daemon.calls), engine.daemon.calls


def test_build_legacy_chunked_context(engine: Engine, tmp_path: object) -> None:
    import os

    ctx = os.path.join(str(tmp_path), "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN echo hi\n")
    with open(os.path.join(ctx, "data.bin"), "wb") as f:
        f.write(os.urandom(300_000))  # a context bigger than one chunk
    r = engine.docker("build", "-t", "foo:v1", "--build-arg", "A=1", ctx)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "Step 1/2 : FROM busybox" in out and "Successfully built abababababab" in out
    assert "Successfully tagged foo:v1" in out
    build = engine.api.backends.build
    assert build.last_files == ["Dockerfile", "data.bin"]  # type: ignore[union-attr]
    opts = build.last_options  # type: ignore[union-attr]
    assert opts["t"] == ["foo:v1"] and opts["buildargs"] == {"A": "1"} and opts["rm"] is True
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN fail\n")
    r = engine.docker("build", ctx)
    assert r.returncode == 1
    assert "The command '/bin/sh -c fail' returned a non-zero code: 1" in r.stderr.decode()
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\n")
    r = engine.docker("build", "-q", ctx)
    assert (r.returncode, r.stdout) == (0, b"sha256:" + b"ab" * 32 + b"\n"), r.stderr


def test_login_system_df_stats(engine: Engine) -> None:
    r = engine.docker("login", "-u", "bob", "--password-stdin", "localhost:5000", input=b"secret\n")
    assert r.returncode == 0 and b"Login Succeeded" in r.stdout, r.stderr
    r = engine.docker("login", "-u", "bob", "--password-stdin", "localhost:5000", input=b"wrong\n")
    assert r.returncode == 1 and b"incorrect username or password" in r.stderr
    r = engine.docker("system", "df")
    assert r.returncode == 0 and r.stdout.startswith(b"TYPE"), r.stderr
    assert engine.docker("run", "-d", "--name", "s1", "busybox", "sleep").returncode == 0
    r = engine.docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.PIDs}}", "s1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"s1 20.00% 1\n"
