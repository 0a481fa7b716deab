"""The stdlib HTTP client on real sockets: body framings, streaming, chunked uploads, keep-alive,
the hijack (bytes already read after the 101 must not be lost; half-close keeps the output flowing)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import pytest

from berth.client.api import APIClient, encode_query
from berth.client.errors import ConnectionFailed, DaemonConflict, DaemonError, DaemonNotFound
from berth.client.http import ProtocolError
from tests.client.rawserver import RawServer, read_request

PING = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK"


@pytest.fixture
def serve(tmp_path: os.PathLike[str]) -> Iterator[object]:
    servers: list[RawServer] = []

    def start(handler):  # type: ignore[no-untyped-def]
        s = RawServer(os.path.join(tmp_path, f"s{len(servers)}.sock"), handler)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
        assert not s.errors, s.errors


def client_for(s: RawServer, version: str | None = None) -> APIClient:
    return APIClient(f"unix://{s.path}", version=version)


def test_chunked_body_streams_piece_by_piece(serve) -> None:  # type: ignore[no-untyped-def]
    arrived: list[float] = []

    def handler(conn: socket.socket, buf: bytearray) -> None:
        read_request(conn, buf)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        time.sleep(0.2)
        conn.sendall(b"lo\r\n6\r\n world\r\n")
        time.sleep(0.2)
        conn.sendall(b"0\r\n\r\n")

    s = serve(handler)
    resp = client_for(s, "1.41").request("GET", "/x")
    pieces = []
    start = time.monotonic()
    for p in resp.iter_raw():
        pieces.append(p)
        arrived.append(time.monotonic() - start)
    assert b"".join(pieces) == b"hello world"
    assert arrived[0] < 0.15, "the first piece must be delivered before the rest arrives"


def test_json_stream_split_inside_objects_and_characters(serve) -> None:  # type: ignore[no-untyped-def]
    msgs = [{"status": "Pulling fs layer", "id": "é1"}, {"stream": "日本\n"}, {"aux": {"ID": "sha256:x"}}]
    data = b"".join(json.dumps(m, ensure_ascii=False).encode() + b"\r\n" for m in msgs)

    def handler(conn: socket.socket, buf: bytearray) -> None:
        read_request(conn, buf)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(data), 7):  # 7-byte chunks cut UTF-8 sequences and objects
            piece = data[i:i + 7]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.001)
        conn.sendall(b"0\r\n\r\n")

    s = serve(handler)
    assert list(client_for(s, "1.41").stream_json("POST", "/images/create")) == msgs


def test_keep_alive_reuses_one_connection_and_survives_a_closed_idle_one(serve) -> None:  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket, buf: bytearray) -> None:
        for i in range(2):
            read_request(conn, buf)
            body = json.dumps({"n": i}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
        # then close the idle connection: the client must retry on a fresh one

    s = serve(handler)
    c = client_for(s, "1.41")
    assert c.get_json("/a") == {"n": 0}
    assert c.get_json("/b") == {"n": 1}
    assert s.connections == 1
    time.sleep(0.1)
    assert c.get_json("/c") == {"n": 0}
    assert s.connections == 2


def test_close_delimited_and_truncated_bodies(serve) -> None:  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket, buf: bytearray) -> None:
        line, _, _ = read_request(conn, buf)
        if "/whole" in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
        elif "/short" in line:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")

    s = serve(handler)
    c = client_for(s, "1.41")
    assert c.request("GET", "/whole").read() == b"until close"
    with pytest.raises(ProtocolError):
        c.request("GET", "/short").read()
    with pytest.raises(ProtocolError):
        c.request("GET", "/chunk").read()


def test_chunked_request_body(serve) -> None:  # type: ignore[no-untyped-def]
    got: list[tuple[dict[str, str], bytes]] = []

    def handler(conn: socket.socket, buf: bytearray) -> None:
        _, headers, body = read_request(conn, buf)
        got.append((headers, body))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    s = serve(handler)
    pieces = [b"a" * 70000, b"", b"tail"]
    client_for(s, "1.41").request("POST", "/images/load", body=iter(pieces)).read()
    headers, body = got[0]
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert body == b"a" * 70000 + b"tail"


def test_hijack_keeps_bytes_read_with_the_head_and_half_closes(serve) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, object] = {}

    def handler(conn: socket.socket, buf: bytearray) -> None:
        _, headers, _ = read_request(conn, buf)
        seen["headers"] = headers
        # the 101 and the first output in one write: they arrive in the same recv
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly")
        data = b""
        while True:
            d = conn.recv(100)
            if not d:
                break
            data += d
        seen["stdin"] = data
        conn.sendall(b"|after-eof")  # output keeps flowing after the client's half-close

    s = serve(handler)
    conn, _ = client_for(s, "1.41").hijack("/containers/c/attach", {"stream": True, "stdin": True})
    conn.sendall(b"input")
    conn.close_write()
    out = b""
    while True:
        d = conn.recv()
        if not d:
            break
        out += d
    conn.close()
    assert out == b"early|after-eof"
    assert seen["stdin"] == b"input"
    h = seen["headers"]
    assert h["connection"] == "Upgrade" and h["upgrade"] == "tcp"  # type: ignore[index]


def test_hijack_requires_101(serve) -> None:  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket, buf: bytearray) -> None:
        read_request(conn, buf)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw")

    s = serve(handler)
    with pytest.raises(DaemonError, match="unable to upgrade to tcp, received 200"):
        client_for(s, "1.41").hijack("/containers/c/attach")


@pytest.mark.parametrize(("status", "ctype", "body", "cls", "text"), [
    (404, "application/json", b'{"message":"No such container: x"}', DaemonNotFound,
     "Error response from daemon: No such container: x"),
    (409, "application/json", b'{"message":"  conflict  "}', DaemonConflict, "Error response from daemon: conflict"),
    (500, "text/plain; charset=utf-8", b"plain failure\n", DaemonError, "Error response from daemon: plain failure"),
    (404, "application/json", b"", DaemonNotFound,
     "request returned 404 Not Found for API route and version /v1.41/x, check if the server supports the requested "
     "API version"),
    (400, "application/json", b"{}", DaemonError, "Error response from daemon: API returned a 400 (Bad Request) but "
                                                  "provided no error-message"),
])
def test_errors_are_typed_and_worded_as_docker(serve, status, ctype, body, cls, text) -> None:  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket, buf: bytearray) -> None:
        read_request(conn, buf)
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, ctype.encode(), len(body), body))

    s = serve(handler)
    with pytest.raises(cls) as e:
        client_for(s, "1.41").get_json("/x")
    assert str(e.value) == text


@pytest.mark.parametrize(("advertised", "expected"), [("1.41", "/v1.41/"), (None, "/v1.24/"), ("1.99", "/v1.50/")])
def test_version_negotiation(serve, advertised, expected) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []

    def handler(conn: socket.socket, buf: bytearray) -> None:
        while True:
            line, _, _ = read_request(conn, buf)
            lines.append(line)
            hdr = f"Api-Version: {advertised}\r\n" if advertised else ""
            conn.sendall(f"HTTP/1.1 200 OK\r\n{hdr}Content-Length: 2\r\n\r\n[]".encode())

    s = serve(handler)
    c = client_for(s)
    c.get_json("/containers/json", {"all": True})
    assert lines[0] == "HEAD /_ping HTTP/1.1"
    assert lines[1] == f"GET {expected}containers/json?all=1 HTTP/1.1"


def test_pinned_version_skips_the_ping(serve, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []

    def handler(conn: socket.socket, buf: bytearray) -> None:
        line, _, _ = read_request(conn, buf)
        lines.append(line)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    monkeypatch.setenv("DOCKER_API_VERSION", "1.30")
    s = serve(handler)
    client_for(s).get_json("/info")
    assert lines == ["GET /v1.30/info HTTP/1.1"]


def test_connection_failure_reads_as_docker(tmp_path: os.PathLike[str]) -> None:
    host = f"unix://{tmp_path}/absent.sock"
    with pytest.raises(ConnectionFailed) as e:
        APIClient(host).ping()
    assert str(e.value) == f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"


def test_query_encoding_matches_go() -> None:
    assert encode_query({"b": "x y", "a": True, "c": None, "names": ["a/b", "c:d"], "f": '{"k":{"v":true}}'}) == \
        "a=1&b=x+y&f=%7B%22k%22%3A%7B%22v%22%3Atrue%7D%7D&names=a%2Fb&names=c%3Ad"
