"""Byte-level checks with raw sockets: exact headers, error bodies, version prefixes, wait's early
headers, hijack media types and half-close rules (docker-api notes §1, §3)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from berth.api import stdcopy

from .conftest import Engine


class Raw:
    """A blocking unix-socket HTTP client that shows the exact bytes."""

    def __init__(self, engine: Engine) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(5)
        self.s.connect(engine.sock)
        self.buf = b""

    def send(self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        hs = {"Host": "docker", **(headers or {})}
        if body or method in ("POST", "PUT"):
            hs.setdefault("Content-Length", str(len(body)))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items()) + "\r\n"
        self.s.sendall(head.encode() + body)

    def head(self) -> tuple[str, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            data = self.s.recv(65536)
            assert data, f"closed before headers: {self.buf!r}"
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        return lines[0], {k: v for k, _, v in (ln.partition(": ") for ln in lines[1:])}

    def read_all(self) -> bytes:
        out = self.buf
        self.buf = b""
        while True:
            data = self.s.recv(65536)
            if not data:
                return out
            out += data

    def read_some(self, timeout: float) -> bytes:
        self.s.settimeout(timeout)
        try:
            data = self.buf or self.s.recv(65536)
        except TimeoutError:
            data = b""
        finally:
            self.s.settimeout(5)
        self.buf = b""
        return data

    def body(self, headers: dict[str, str]) -> bytes:
        if "Content-Length" in headers:
            n = int(headers["Content-Length"])
            while len(self.buf) < n:
                self.buf += self.s.recv(65536)
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        assert headers.get("Transfer-Encoding") == "chunked"
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self.buf += self.s.recv(65536)
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line, 16)
            while len(self.buf) < size + 2:
                self.buf += self.s.recv(65536)
            out += self.buf[:size]
            self.buf = self.buf[size + 2 :]
            if size == 0:
                return out

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[str, dict[str, str], bytes]:
        self.send(method, target, headers, body)
        status, hs = self.head()
        return status, hs, b"" if method == "HEAD" or status.split()[1] in ("204", "304") else self.body(hs)

    def close(self) -> None:
        self.s.close()


COMMON = {"Api-Version": "1.44", "Docker-Experimental": "false", "Ostype": "linux", "Server": "Berth/0.1.0 (linux)"}


def create(engine: Engine, cmd: list[str], **config: object) -> str:
    r = Raw(engine)
    status, _, body = r.request("POST", "/v1.44/containers/create", {"Content-Type": "application/json"},
                                json.dumps({"Image": "busybox", "Cmd": cmd, **config}).encode())
    r.close()
    assert status == "HTTP/1.1 201 Created", body
    return str(json.loads(body)["Id"])


def test_ping_exact(engine: Engine) -> None:
    r = Raw(engine)
    status, hs, body = r.request("HEAD", "/_ping")
    assert status == "HTTP/1.1 200 OK" and body == b""
    assert hs == {**COMMON, "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                  "Builder-Version": "1", "Swarm": "inactive", "Content-Type": "text/plain; charset=utf-8",
                  "Content-Length": "0"}
    status, hs, body = r.request("GET", "/v1.44/_ping")
    assert (status, body, hs["Content-Length"], hs["Api-Version"]) == ("HTTP/1.1 200 OK", b"OK", "2", "1.44")
    r.close()


def test_not_found_and_versions(engine: Engine) -> None:
    r = Raw(engine)
    for target in ("/nope", "/v1.44/nope", "/v1.44/containers/x/nope/more"):
        status, hs, body = r.request("GET", target)
        assert status == "HTTP/1.1 404 Not Found"
        assert hs["Content-Type"] == "application/json" and body == b'{"message":"page not found"}\n'
        assert all(hs[k] == v for k, v in COMMON.items())
    status, hs, body = r.request("POST", "/_ping")  # wrong method: moby says page not found too
    assert status == "HTTP/1.1 404 Not Found" and body == b'{"message":"page not found"}\n'
    status, hs, body = r.request("GET", "/v1.12/containers/json")
    assert status == "HTTP/1.1 400 Bad Request" and hs["Content-Type"] == "text/plain; charset=utf-8"
    assert body == (b"client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your "
                    b"client to a newer version\n")
    status, hs, body = r.request("GET", "/v1.50/containers/json")
    assert status == "HTTP/1.1 400 Bad Request" and hs["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "client version 1.50 is too new. Maximum supported API version is 1.44"}
    assert r.request("GET", "/v1.24/containers/json")[0] == "HTTP/1.1 200 OK"
    r.close()


def test_create_body_rules(engine: Engine) -> None:
    r = Raw(engine)
    status, _, body = r.request("POST", "/containers/create", {"Content-Type": "text/plain"}, b'{"Image":"x"}')
    assert status.startswith("HTTP/1.1 400") and b"unsupported Content-Type header (text/plain)" in body
    status, _, body = r.request("POST", "/containers/create")
    assert status.startswith("HTTP/1.1 400") and b"config cannot be empty" in body
    status, _, body = r.request("POST", "/containers/create?name=x", {"Content-Type": "application/json"},
                                b'{"Image":"nosuch:1","Unknown":{"Field":1}}')
    assert status == "HTTP/1.1 404 Not Found" and json.loads(body) == {"message": "No such image: nosuch:1"}
    r.close()


def test_start_twice_is_304_without_body(engine: Engine) -> None:
    cid = create(engine, ["sleep"])
    r = Raw(engine)
    assert r.request("POST", f"/containers/{cid}/start")[0] == "HTTP/1.1 204 No Content"
    status, hs, _ = r.request("POST", f"/containers/{cid[:12]}/start")
    assert status == "HTTP/1.1 304 Not Modified" and "Content-Length" not in hs
    # the connection is still usable: nothing was left unread
    assert r.request("POST", f"/containers/{cid}/kill?signal=SIGKILL")[0] == "HTTP/1.1 204 No Content"
    status, _, body = r.request("POST", f"/containers/{cid}/kill?signal=BOGUS")
    assert status.startswith("HTTP/1.1 400") and json.loads(body)["message"] == (
        f"cannot kill container: {cid}: invalid signal: BOGUS")
    r.close()


def test_wait_headers_before_exit_and_cancel_on_hangup(engine: Engine) -> None:
    cid = create(engine, ["sleep"])
    w = Raw(engine)
    w.send("POST", f"/v1.44/containers/{cid}/wait?condition=next-exit")
    status, hs = w.head()  # must arrive while the container has not even started
    assert status == "HTTP/1.1 200 OK" and hs["Content-Type"] == "application/json"
    assert hs["Transfer-Encoding"] == "chunked"
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    assert w.read_some(0.2) == b""  # no body while it runs
    r.request("POST", f"/containers/{cid}/kill?signal=15")
    assert w.body(hs) == b'{"StatusCode":143}\n'

    # a waiter whose client hangs up is cancelled (the backend can drop it)
    cid2 = create(engine, ["sleep"])
    w2 = Raw(engine)
    w2.send("POST", f"/containers/{cid2}/wait?condition=next-exit")
    w2.head()
    fut = engine.daemon.containers[cid2].exit_waiters[0]
    w2.close()
    for _ in range(100):
        if fut.cancelled():
            break
        time.sleep(0.02)
    assert fut.cancelled()
    r.close()


def test_wait_before_130_answers_at_exit(engine: Engine) -> None:
    cid = create(engine, ["later", "x"])
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    status, hs, body = r.request("POST", f"/v1.29/containers/{cid}/wait?condition=removed")
    assert status == "HTTP/1.1 200 OK" and "Content-Length" in hs and body == b'{"StatusCode":0}\n'
    r.close()


@pytest.mark.parametrize(("prefix", "tty", "upgrade", "status", "ctype"), [
    ("/v1.44", False, True, "HTTP/1.1 101 UPGRADED", "application/vnd.docker.multiplexed-stream"),
    ("/v1.41", False, True, "HTTP/1.1 101 UPGRADED", "application/vnd.docker.raw-stream"),
    ("/v1.44", True, True, "HTTP/1.1 101 UPGRADED", "application/vnd.docker.raw-stream"),
    ("", False, False, "HTTP/1.1 200 OK", "application/vnd.docker.raw-stream"),
])
def test_attach_media_types_and_framing(engine: Engine, prefix: str, tty: bool, upgrade: bool, status: str,
                                        ctype: str) -> None:
    cid = create(engine, ["later", "out"], Tty=tty)
    a = Raw(engine)
    hs_in = {"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else {}
    a.send("POST", f"{prefix}/containers/{cid}/attach?stream=1&stdout=1&stderr=1", hs_in)
    got_status, hs = a.head()
    assert (got_status, hs["Content-Type"]) == (status, ctype)
    if upgrade:
        assert hs == {"Content-Type": ctype, "Connection": "Upgrade", "Upgrade": "tcp"}  # moby's 4 lines
    a.s.shutdown(socket.SHUT_WR)  # as the CLI does without stdin: must not end the output
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    out = a.read_all()
    # framing follows the TTY, whatever the media type
    assert out == (b"out\n" if tty else stdcopy.frame(1, b"out\n"))
    a.close()
    r.close()


def test_attach_stdin_once_closes_container_stdin(engine: Engine) -> None:
    cid = create(engine, ["cat"], OpenStdin=True, StdinOnce=True, Env=["EXIT_CODE=1"])
    a = Raw(engine)
    a.send("POST", f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1", {"Connection": "Upgrade", "Upgrade": "tcp"})
    a.head()
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    a.s.sendall(b"hello")
    a.s.shutdown(socket.SHUT_WR)
    assert a.read_all() == stdcopy.frame(1, b"hello")  # output kept flowing until the container exited
    session = engine.daemon.containers[cid].sessions[0]
    assert session.log == ["stdin:hello", "close_stdin", "output-end"]
    a.close()
    r.close()


def test_attach_without_stdin_once_ends_session_on_eof(engine: Engine) -> None:
    cid = create(engine, ["cat"], OpenStdin=True)  # `docker attach` to a running container
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    a = Raw(engine)
    a.send("POST", f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1", {"Connection": "Upgrade", "Upgrade": "tcp"})
    a.head()
    a.s.sendall(b"x")
    assert a.read_some(2) == stdcopy.frame(1, b"x")
    a.s.shutdown(socket.SHUT_WR)
    assert a.read_all() == b""  # the session ended: the server closed the connection
    c = engine.daemon.containers[cid]
    assert c.status == "running" and c.sessions[0].log == ["stdin:x", "detach"]
    a.close()
    r.close()


def test_attach_full_hangup_detaches(engine: Engine) -> None:
    cid = create(engine, ["sleep"])
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    a = Raw(engine)
    a.send("POST", f"/containers/{cid}/attach?stream=1&stdout=1", {"Connection": "Upgrade", "Upgrade": "tcp"})
    a.head()
    a.s.shutdown(socket.SHUT_WR)
    time.sleep(0.6)
    session = engine.daemon.containers[cid].sessions[0]
    assert session.log == []  # a half-close alone changes nothing
    a.close()  # now the client is gone: POLLHUP
    for _ in range(100):
        if "detach" in session.log:
            break
        time.sleep(0.02)
    assert session.log == ["detach"]
    r.close()


def test_exec_start_detached_and_errors(engine: Engine) -> None:
    cid = create(engine, ["sleep"])
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    status, _, body = r.request("POST", f"/containers/{cid}/exec", {"Content-Type": "application/json"},
                                b'{"Cmd":[]}')
    assert status.startswith("HTTP/1.1 400") and json.loads(body) == {"message": "No exec command specified"}
    status, _, body = r.request("POST", f"/containers/{cid}/exec", {"Content-Type": "application/json"},
                                b'{"Cmd":["echo","bg"],"AttachStdout":true}')
    eid = json.loads(body)["Id"]
    status, _hs, body = r.request("POST", f"/exec/{eid}/start", {"Content-Type": "application/json"},
                                 b'{"Detach":true,"Tty":false}')
    assert (status, body) == ("HTTP/1.1 200 OK", b"")
    status, _, body = r.request("POST", "/exec/nosuch/start", {"Content-Type": "application/json",
                                                               "Connection": "Upgrade", "Upgrade": "tcp"}, b"{}")
    assert status == "HTTP/1.1 404 Not Found" and json.loads(body) == {"message": "No such exec instance: nosuch"}
    r.close()


def test_exec_hijack_carries_common_headers(engine: Engine) -> None:
    cid = create(engine, ["sleep"])
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    _, _, body = r.request("POST", f"/containers/{cid}/exec", {"Content-Type": "application/json"},
                           b'{"Cmd":["echo","hi"],"AttachStdout":true,"AttachStderr":true}')
    eid = json.loads(body)["Id"]
    r.send("POST", f"/exec/{eid}/start", {"Content-Type": "application/json", "Connection": "Upgrade",
                                          "Upgrade": "tcp", "User-Agent": "Docker-Client/28.2.2 (linux)"},
           b'{"Detach":false,"Tty":false}')
    status, hs = r.head()
    assert status == "HTTP/1.1 101 UPGRADED"
    assert hs["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert all(hs[k] == v for k, v in COMMON.items())
    r.s.shutdown(socket.SHUT_WR)
    assert r.read_all() == stdcopy.frame(1, b"hi\n")
    r.close()
    r = Raw(engine)
    _, _, body = r.request("GET", f"/exec/{eid}/json")
    assert json.loads(body)["ExitCode"] == 0
    r.close()


def test_events_stream_headers_flush_at_once(engine: Engine) -> None:
    r = Raw(engine)
    r.send("GET", "/events")
    status, hs = r.head()  # nothing has happened yet, the headers are there anyway
    assert status == "HTTP/1.1 200 OK" and hs["Content-Type"] == "application/json"
    create(engine, ["true"])
    chunk = r.read_some(5)
    assert b'"Action":"create"' in chunk
    r.close()


def test_logs_raw_for_tty_and_bad_args(engine: Engine) -> None:
    cid = create(engine, ["echo", "ttyout"], Tty=True)
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    time.sleep(0.1)
    status, hs, body = r.request("GET", f"/containers/{cid}/logs?stdout=1")
    assert hs["Content-Type"] == "application/vnd.docker.raw-stream" and body == b"ttyout\n"
    status, _, body = r.request("GET", f"/containers/{cid}/logs")
    assert status.startswith("HTTP/1.1 400") and b"must specify at least one of 'stdout' or 'stderr'" in body
    r.close()


def test_output_error_after_hijack_goes_in_band(engine: Engine) -> None:
    cid = create(engine, ["explode"])
    a = Raw(engine)
    a.send("POST", f"/containers/{cid}/attach?stream=1&stdout=1", {"Connection": "Upgrade", "Upgrade": "tcp"})
    a.head()
    r = Raw(engine)
    r.request("POST", f"/containers/{cid}/start")
    assert a.read_all() == stdcopy.frame(1, b"before\n") + stdcopy.frame(3, b"output failed: exploded\r\n")
    assert engine.daemon.containers[cid].sessions[0].log == ["detach"]
    r.request("POST", f"/containers/{cid}/kill")
    a.close()
    r.close()
