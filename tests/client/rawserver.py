"""A scripted server on a real socket: each accepted connection runs a handler that reads and writes
raw bytes, so tests can produce exactly the framing (and the misbehaviour) they need."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable


def read_request(conn: socket.socket, buf: bytearray) -> tuple[str, dict[str, str], bytes]:
    """Read one request (head and body, de-chunking a chunked body) from conn."""

    def fill() -> None:
        data = conn.recv(65536)
        if not data:
            raise EOFError
        buf.extend(data)

    while b"\r\n\r\n" not in buf:
        fill()
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            while b"\r\n" not in buf:
                fill()
            size_line, _, rest = bytes(buf).partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                fill()
                size_line, _, rest = bytes(buf).partition(b"\r\n")
            body += rest[:size]
            buf[:] = rest[size + 2:]
            if size == 0:
                break
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            fill()
        body = bytes(buf[:n])
        buf[:] = buf[n:]
    return lines[0], headers, body


class RawServer:
    def __init__(self, path: str, handler: Callable[[socket.socket, bytearray], None]) -> None:
        self.path = path
        self.handler = handler
        self.connections = 0
        self.errors: list[BaseException] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, bytearray())
        except (EOFError, ConnectionError):
            pass
        except BaseException as e:  # surfaced by the test
            self.errors.append(e)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.path)
            s.close()
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()
        os.unlink(self.path)
