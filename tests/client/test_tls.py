"""TLS to a tcp:// daemon (a loopback server with a throwaway CA made by openssl)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator

import pytest

from berth.client.api import APIClient
from berth.client.errors import ConnectionFailed
from berth.client.hosts import TLSConfig

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(d / "srv-key.pem"),
             "-out", str(d / "srv.csr"))
    _openssl("x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca-key.pem"),
             "-CAcreateserial", "-days", "1", "-extfile", str(d / "ext"), "-out", str(d / "srv.pem"))
    return {k: str(d / f"{k}.pem") for k in ("ca", "srv", "srv-key")}


@pytest.fixture
def tls_server(pki: dict[str, str]) -> Iterator[int]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["srv"], pki["srv-key"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)

    def serve() -> None:
        while True:
            try:
                raw, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        d = conn.recv(4096)
                        if not d:
                            break
                        buf += d
                    conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 15\r\nConnection: close\r\n\r\n{\"Os\":\"linux\"}\n")
            except (ssl.SSLError, OSError):
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield lsock.getsockname()[1]
    lsock.close()
    t.join(2)


def test_plain_tcp() -> None:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = lsock.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            seen.append(buf)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = lsock.getsockname()[1]
    assert APIClient(f"tcp://127.0.0.1:{port}", version="1.44").get_json("/containers/json") == []
    t.join(5)
    lsock.close()
    assert seen[0].startswith(b"GET /v1.44/containers/json HTTP/1.1\r\nHost: 127.0.0.1:")


def test_verified_tls(tls_server: int, pki: dict[str, str]) -> None:
    c = APIClient(f"tcp://127.0.0.1:{tls_server}", TLSConfig(True, pki["ca"], None, None), version="1.44")
    assert c.get_json("/version") == {"Os": "linux"}


def test_unverified_tls_accepts_any_certificate(tls_server: int) -> None:
    c = APIClient(f"tcp://127.0.0.1:{tls_server}", TLSConfig(False, None, None, None), version="1.44")
    assert c.get_json("/version") == {"Os": "linux"}


def test_verification_against_the_wrong_ca_fails(tls_server: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
             "-keyout", str(tmp_path / "o-key.pem"), "-out", str(tmp_path / "other.pem"))
    c = APIClient(f"tcp://127.0.0.1:{tls_server}", TLSConfig(True, str(tmp_path / "other.pem"), None, None),
                  version="1.44")
    with pytest.raises((ssl.SSLError, ConnectionFailed)):
        c.get_json("/version")
