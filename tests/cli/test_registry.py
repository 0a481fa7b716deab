"""pull, push and login through a registry on a free loopback port (Debian's distribution 2.8 as the
oracle's peer, and berth's own `registry serve`), progress rendering on a terminal, and bootstrap."""

from __future__ import annotations

import io
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator

import pytest

from tests.cli.conftest import BERTH, run_berth, run_docker
from tests.dockerd import Dockerd
from tests.helpers import fake_credential_helper

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the registry exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def registry(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    port = _free_port()
    cfg = tmp_path / "registry.yml"
    cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}/data\n"
                   f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _unique_image(d: Dockerd, ref: str) -> None:
    """A one-layer image nobody else has, so a pull really downloads it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = os.urandom(300_000)
        info = tarfile.TarInfo("blob")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    p = d.docker("import", "-", ref, input=buf.getvalue(), text=False)
    assert p.returncode == 0, p.stderr


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_push_and_pull_print_what_docker_prints(oracle: Dockerd, registry: str) -> None:
    ref = f"{registry}/berth-test/tiny:1"
    _unique_image(oracle, ref)
    want = run_docker(["push", ref], oracle.env)
    got = run_berth(["push", ref], oracle.env)  # the second push finds the layer there
    assert got.returncode == want.returncode == 0, got.stderr
    first = f"The push refers to repository [{registry}/berth-test/tiny]"
    assert _lines(got.stdout)[0] == _lines(want.stdout)[0] == first
    assert "Layer already exists" in got.stdout
    assert _lines(got.stdout)[-1] == _lines(want.stdout)[-1]  # "1: digest: sha256:... size: N"
    oracle.docker("rmi", ref)
    got = run_berth(["pull", ref], oracle.env)
    assert got.returncode == 0, got.stderr
    oracle.docker("rmi", ref)
    want = run_docker(["pull", ref], oracle.env)
    # layer lines may come in another order; the first and last lines and the set of lines must match
    assert _lines(got.stdout)[0] == _lines(want.stdout)[0] == "1: Pulling from berth-test/tiny"
    assert _lines(got.stdout)[-3:] == _lines(want.stdout)[-3:]
    # the daemon itself sends "Verifying Checksum"/"Download complete"/"Waiting" or not, run to run
    racy = (": Verifying Checksum", ": Download complete", ": Waiting")
    assert sorted(x for x in _lines(got.stdout) if not x.endswith(racy)) == \
        sorted(x for x in _lines(want.stdout) if not x.endswith(racy))
    assert any(line.endswith(": Pull complete") for line in _lines(got.stdout))
    got = run_berth(["pull", "-q", ref], oracle.env)
    assert got.stdout == f"{ref}\n"
    for args in (["pull", f"{registry}/nosuch:1"], ["push", f"{registry}/nosuch-local:1"]):
        want, got = run_docker(args, oracle.env), run_berth(args, oracle.env)
        assert (got.stdout, got.returncode) == (want.stdout, want.returncode)
        assert got.stderr == want.stderr
    oracle.docker("rmi", ref)


def test_pull_progress_on_a_terminal(oracle: Dockerd, registry: str) -> None:
    ref = f"{registry}/berth-test/tty:1"
    _unique_image(oracle, ref)
    assert oracle.docker("push", ref).returncode == 0
    oracle.docker("rmi", ref)
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([*BERTH, "pull", ref], env=oracle.env, stdin=slave, stdout=slave, stderr=slave)
        out = b""
        while p.poll() is None or select.select([master], [], [], 0.2)[0]:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
        assert p.returncode == 0, out
    finally:
        os.close(master)
        os.close(slave)
    text = out.decode()
    assert "\x1b[2K" in text and re.search(r"\x1b\[\d+A", text) and re.search(r"\x1b\[\d+B", text)
    assert "Pull complete" in text and text.rstrip().endswith(ref)
    oracle.docker("rmi", ref)


def test_login_writes_docker_compatible_credentials(oracle: Dockerd, registry: str) -> None:
    got = run_berth(["login", "-u", "bob", "--password-stdin", registry], oracle.env, input="secret\n")
    assert got.returncode == 0, got.stderr
    assert got.stdout.endswith("Login Succeeded\n")
    import base64
    import json

    with open(os.path.join(oracle.config_dir, "config.json")) as f:
        cfg = json.load(f)
    assert base64.b64decode(cfg["auths"][registry]["auth"]) == b"bob:secret"
    got = run_berth(["logout", registry], oracle.env)
    assert got.stdout == f"Removing login credentials for {registry}\n"
    got = run_berth(["logout", registry], oracle.env)
    assert got.stdout == f"Not logged in to {registry}\n"


def test_login_and_logout_through_a_credential_helper(oracle: Dockerd, registry: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    db = str(tmp_path / "helper.json")
    fake_credential_helper(str(tmp_path / "bin"), db)
    config_dir = str(tmp_path / "cfg")
    os.makedirs(config_dir)
    with open(os.path.join(config_dir, "config.json"), "w") as f:
        json.dump({"credsStore": "berthtest"}, f)
    env = {**oracle.env, "DOCKER_CONFIG": config_dir, "PATH": f"{tmp_path}/bin:{os.environ['PATH']}"}
    got = run_berth(["login", "-u", "bob", "--password-stdin", registry], env, input="secret\n")
    assert got.returncode == 0, got.stderr
    assert "unencrypted" not in got.stderr  # the secret is the helper's, as with docker
    with open(os.path.join(config_dir, "config.json")) as f:
        text = f.read()
    assert json.loads(text)["auths"] == {registry: {}} and "secret" not in text
    with open(db) as f:
        assert json.load(f) == {registry: {"Username": "bob", "Secret": "secret"}}
    from berth.cli.config import ConfigFile

    os.environ["PATH"], old_path = env["PATH"], os.environ["PATH"]
    try:  # what pull and push send as X-Registry-Auth
        assert ConfigFile.load(config_dir).get_auth(registry) == {"username": "bob", "password": "secret",
                                                                  "serveraddress": registry}
    finally:
        os.environ["PATH"] = old_path
    got = run_docker(["logout", registry], env)  # the real docker CLI reads what berth stored
    assert got.returncode == 0 and "Removing login credentials" in got.stdout, got.stderr
    with open(db) as f:
        assert json.load(f) == {}
    got = run_berth(["login", "-u", "bob", "--password-stdin", registry], env, input="secret\n")
    got = run_berth(["logout", registry], env)
    assert got.stdout == f"Removing login credentials for {registry}\n", got.stderr
    with open(db) as f:
        assert json.load(f) == {}


def test_registry_serve_runs_berths_registry(oracle: Dockerd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    try:
        import berth.registry.server  # noqa: F401
    except ImportError:
        pytest.skip("berth.registry.server is not in this build")
    port = _free_port()
    proc = subprocess.Popen([*BERTH, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--root",
                             str(tmp_path / "reg"), "--gc-interval", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=oracle.env)
    try:
        _wait_port(port, proc)
        ref = f"127.0.0.1:{port}/berth-test/served:1"
        _unique_image(oracle, ref)
        got = run_berth(["push", ref], oracle.env)
        assert got.returncode == 0 and "Pushed" in got.stdout, got.stdout + got.stderr
        oracle.docker("rmi", ref)
        got = run_berth(["pull", ref], oracle.env)
        assert got.returncode == 0 and got.stdout.endswith(f"{ref}\n"), got.stdout + got.stderr
        oracle.docker("rmi", ref)
    finally:
        proc.terminate()
        proc.wait(10)
    help_ = subprocess.run([*BERTH, "registry", "serve", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "--root" in help_.stdout


def test_bootstrap_busybox_loads_a_runnable_image(oracle: Dockerd) -> None:
    try:
        from berth.image import bootstrap  # noqa: F401
    except ImportError:
        pytest.skip("berth.image.bootstrap is not in this build")
    got = run_berth(["image", "bootstrap", "busybox"], oracle.env, timeout=120)
    assert got.returncode == 0, got.stderr
    assert "Loaded image: busybox:latest" in got.stdout
    run = run_berth(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo bootstrapped"], oracle.env)
    assert (run.stdout, run.returncode) == ("bootstrapped\n", 0), run.stderr
    bad = run_berth(["image", "bootstrap", "alpine"], oracle.env)
    assert bad.returncode == 1 and 'unknown image "alpine"' in bad.stderr
    assert sys.executable
