"""A recording Engine API stub on a unix socket: answers canned responses and logs every request,
so tests can compare what `berth` sends with what `docker` sends for the same command line."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path without the /v1.xx prefix and query."""
        p = self.path.split("?", 1)[0]
        if p.startswith("/v1."):
            p = "/" + p.split("/", 2)[2]
        return p

    @property
    def query(self) -> str:
        return self.path.split("?", 1)[1] if "?" in self.path else ""

    def json(self) -> object:
        return json.loads(self.body) if self.body else None


Handler = Callable[[Request, socket.socket], bool]
Response = tuple[int, dict[str, str], bytes]


@dataclass
class Stub:
    """Routes are matched on (method, route); a value is a canned response or a handler that writes
    to the socket itself (for hijacks) and returns whether to keep the connection open."""

    path: str
    api_version: str = "1.41"
    routes: dict[tuple[str, str], Response | Handler] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(64)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.path)
            s.close()
        except OSError:
            pass
        self._thread.join(2)
        self._sock.close()
        os.unlink(self.path)

    def requests(self, skip_ping: bool = True) -> list[Request]:
        return [r for r in self.log if not (skip_ping and r.route == "/_ping")]

    def _serve(self) -> None:
        while not self._stop:
            conn, _ = self._sock.accept()
            if self._stop:
                conn.close()
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int(f.readline().split(b";")[0], 16)
                        if size == 0:
                            f.readline()
                            break
                        body += f.read(size)
                        f.readline()
                elif "content-length" in headers:
                    body = f.read(int(headers["content-length"]))
                req = Request(method, path, headers, body)
                self.log.append(req)
                route = self.routes.get((method, req.route))
                if callable(route):
                    if not route(req, conn):
                        return
                    continue
                status, hdrs, payload = route if route else self.default(req)
                self._send(conn, method, status, hdrs, payload)
        except (OSError, ValueError):
            pass
        finally:
            f.close()
            conn.close()

    def default(self, req: Request) -> Response:
        if req.route == "/_ping":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"OK"
        return 404, {"Content-Type": "application/json"}, b'{"message":"page not found"}'

    def _send(self, conn: socket.socket, method: str, status: int, hdrs: dict[str, str], payload: bytes) -> None:
        head = [f"HTTP/1.1 {status} X", f"Api-Version: {self.api_version}", "Ostype: linux",
                "Server: Docker/20.10.24 (linux)"]
        head += [f"{k}: {v}" for k, v in hdrs.items()]
        if status not in (101, 204, 304):
            head.append(f"Content-Length: {len(payload)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode()
        if method != "HEAD":
            data += payload
        conn.sendall(data)


def json_response(obj: object, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()
