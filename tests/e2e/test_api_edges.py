"""Events, attach with detach keys, TLS on TCP, old API versions: the less common paths real clients use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.e2e.daemon import DOCKER, Berthd, preload_busybox


def test_events_since_until_with_filters(berthd: Berthd) -> None:
    d = berthd.docker
    since = str(int(time.time()) - 1)
    cid = d("run", "--rm", "--name", "evt", "busybox", "true")
    assert cid.returncode == 0
    until = str(int(time.time()) + 1)
    r = d("events", "--since", since, "--until", until, "--filter", "container=evt", "--format",
          "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    actions = [line.split()[1] for line in r.stdout.splitlines()]
    for a in ("create", "attach", "start", "die", "destroy"):
        assert a in actions, r.stdout
    assert actions.index("create") < actions.index("start") < actions.index("die") < actions.index("destroy")
    die = [line for line in r.stdout.splitlines() if " die " in line]
    assert die and die[0].endswith("evt")


def test_attach_and_detach_keys(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-dit", "busybox", "sh").stdout.strip()
    master, slave = os.openpty()
    p = subprocess.Popen([DOCKER, "attach", cid], stdin=slave, stdout=slave, stderr=slave, env=berthd.env())
    os.close(slave)
    try:
        time.sleep(1)
        os.write(master, b"echo attached-$((6*7))\r")
        buf = b""
        deadline = time.monotonic() + 10
        while b"attached-42" not in buf and time.monotonic() < deadline:
            buf += os.read(master, 4096)
        assert b"attached-42" in buf
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q
        p.wait(timeout=10)  # CLI 28 reports "read escape sequence" (exit 1) whatever the daemon
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["Running"], "detaching stopped the container"
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
        d("rm", "-f", cid)


def test_old_api_versions(berthd: Berthd) -> None:
    env = {**berthd.env(), "DOCKER_API_VERSION": "1.25"}
    r = subprocess.run([DOCKER, "run", "--rm", "busybox", "sh", "-c", "echo old api; exit 5"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 5 and r.stdout == "old api\n", r.stderr
    s = socket.socket(socket.AF_UNIX)
    s.connect(berthd.socket)
    s.sendall(b"GET /v1.12/version HTTP/1.1\r\nHost: x\r\n\r\n")
    head = s.recv(4096).decode()
    s.close()
    assert head.startswith("HTTP/1.1 400") and "is too old" in head


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_berthd(tmp_path_factory: pytest.TempPathFactory, image_cache: str) -> Iterator[tuple[Berthd, str, int]]:
    base = str(tmp_path_factory.mktemp("berthd-tls"))
    leaks.add_scope(base)
    certs = os.path.join(base, "certs")
    os.mkdir(certs)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=berth-test-ca", cwd=certs)
    with open(os.path.join(certs, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(certs, "client.cnf"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for who, ext in (("server", "ext.cnf"), ("client", "client.cnf")):
        key = "key.pem" if who == "client" else "server-key.pem"
        crt = "cert.pem" if who == "client" else "server-cert.pem"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", f"{who}.csr", "-subj", f"/CN={who}",
                 cwd=certs)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-out", crt, "-days", "1", "-extfile", ext, cwd=certs)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = Berthd(base, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", f"{certs}/ca.pem",
               "--tlscert", f"{certs}/server-cert.pem", "--tlskey", f"{certs}/server-key.pem")
    preload_busybox(d, image_cache)
    d.start()
    try:
        yield d, certs, port
    finally:
        d.cleanup()


def test_tcp_with_tls(tls_berthd: tuple[Berthd, str, int]) -> None:
    _d, certs, port = tls_berthd
    env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certs}
    r = subprocess.run([DOCKER, "run", "--rm", "busybox", "echo", "over tls"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "over tls\n", r.stderr
    # without a client certificate the handshake is refused
    env.pop("DOCKER_TLS_VERIFY")
    env.pop("DOCKER_CERT_PATH")
    r = subprocess.run([DOCKER, "version"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
