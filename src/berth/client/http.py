"""A small HTTP/1.1 client on a raw socket: requests with plain or chunked bodies, responses read whole,
streamed (chunked, sized or until close) or hijacked after `101 UPGRADED`.

Written on `socket` alone (no http.client, no httpx) because the CLI pays every import on every command,
and because a hijack must keep the bytes already read past the response head: http.client's buffered
file object would swallow them."""

from __future__ import annotations

import _socket

from berth.client.hosts import Endpoint, TLSConfig

TYPE_CHECKING = False  # typing, socket and collections.abc cost milliseconds on every command
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable, Iterator

RECV_SIZE = 65536
MAX_HEAD = 1 << 20


class ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing (or closed the connection mid-response)."""


class ConnectError(OSError):
    """The daemon's socket could not be reached."""


def connect(endpoint: Endpoint, tls: TLSConfig | None = None, timeout: float | None = None) -> socket.socket:
    """Open a stream socket to the endpoint, wrapped in TLS when asked (ssl is imported only then)."""
    try:
        if endpoint.scheme == "unix":
            if tls is None:
                # the C socket type: the `socket` module would cost milliseconds of imports per command
                sock: socket.socket = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)  # type: ignore[assignment]
            else:  # ssl wraps only socket.socket
                import socket

                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(endpoint.address)
            except BaseException:
                sock.close()
                raise
        else:
            import socket

            sock = socket.create_connection(endpoint.address, timeout=timeout)  # type: ignore[arg-type]
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as e:
        raise ConnectError(e.errno, e.strerror) from e
    if tls is not None:
        from berth.client.tls import wrap

        host = endpoint.address[0] if isinstance(endpoint.address, tuple) else "localhost"
        sock = wrap(sock, tls, host)
    return sock


class Connection:
    """One HTTP/1.1 connection. Not thread-safe; the API client pools idle ones."""

    def __init__(self, sock: socket.socket, host_header: str = "api.moby.localhost") -> None:
        self.sock = sock
        self.host_header = host_header
        self.buf = bytearray()
        self.eof = False
        self.reusable = True

    # -- writing ------------------------------------------------------------------------------

    def send_request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | Iterable[bytes] | None = None,
    ) -> None:
        """Send the request line, headers and body. A bytes body gets a Content-Length; an iterable one
        is sent with `Transfer-Encoding: chunked`, as docker does for load, build and archive PUT."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        names = set()
        for k, v in headers:
            lines.append(f"{k}: {v}")
            names.add(k.lower())
        chunked = False
        if body is None:
            if method in ("POST", "PUT", "PATCH") and "content-length" not in names:
                lines.append("Content-Length: 0")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            lines.append(f"Content-Length: {len(body)}")
        else:
            lines.append("Transfer-Encoding: chunked")
            chunked = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if body is not None and not chunked:
            self.sock.sendall(head + bytes(body))  # type: ignore[arg-type]
            return
        self.sock.sendall(head)
        if chunked:
            for piece in body:  # type: ignore[union-attr]
                if isinstance(piece, (bytes, bytearray)) and piece:
                    self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.sock.sendall(b"0\r\n\r\n")

    # -- reading ------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at EOF."""
        if self.eof:
            return False
        data = self.sock.recv(RECV_SIZE)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("response line too long")
            if not self._fill():
                raise ProtocolError("connection closed before the response was complete")

    def read_some(self, limit: int = RECV_SIZE) -> bytes:
        """Up to `limit` bytes: what is buffered, else one recv; b"" at EOF."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed before the response was complete")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, method: str) -> Response:
        """Read a status line and headers (skipping 1xx other than 101)."""
        while True:
            line = self.read_line()
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ProtocolError(f"malformed HTTP response {line[:80]!r}")
            try:
                status = int(parts[1])
            except ValueError:
                raise ProtocolError(f"malformed HTTP status code {parts[1]!r}") from None
            reason = parts[2] if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            while True:
                h = self.read_line()
                if h in (b"\r\n", b"\n"):
                    break
                name, sep, value = h.decode("latin-1").partition(":")
                if not sep:
                    raise ProtocolError(f"malformed header line {h[:80]!r}")
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            if 100 <= status < 200 and status != 101:
                continue
            return Response(self, method, status, reason, headers, parts[0])


class Response:
    """A response whose body is read lazily: `read()` it all, iterate it raw, or decode JSON values."""

    def __init__(self, conn: Connection, method: str, status: int, reason: str, headers: dict[str, str],
                 version: str = "HTTP/1.1") -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._done = False
        te = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        self.length: int | None = None
        if method == "HEAD" or status in (204, 304) or status == 101:
            self.length = 0
        elif not self.chunked and "content-length" in headers:
            try:
                self.length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
        # A body delimited by close can't be followed by another request on this connection.
        if (self.length is None and not self.chunked) or headers.get("connection", "").lower() == "close" \
                or version == "HTTP/1.0":
            conn.reusable = False
        self._remaining = self.length
        self._chunk_left = 0
        self._chunk_eof = False

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    # -- body -----------------------------------------------------------------------------------

    def _next_piece(self) -> bytes:
        """The next piece of body as soon as any bytes arrive; b"" at the end."""
        conn = self.conn
        if self.chunked:
            if self._chunk_eof:
                return b""
            if self._chunk_left == 0:
                size_line = conn.read_line()
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from None
                if size == 0:
                    # trailers, then the blank line
                    while conn.read_line() not in (b"\r\n", b"\n"):
                        pass
                    self._chunk_eof = True
                    return b""
                self._chunk_left = size
            data = conn.read_some(self._chunk_left)
            if not data:
                raise ProtocolError("connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                conn.read_exact(2)  # CRLF after the chunk data
            return data
        if self._remaining is not None:
            if self._remaining == 0:
                return b""
            data = conn.read_some(self._remaining)
            if not data:
                raise ProtocolError("connection closed before the body was complete")
            self._remaining -= len(data)
            return data
        return conn.read_some()

    def iter_raw(self) -> Iterator[bytes]:
        """The body, piece by piece, as it arrives."""
        try:
            while not self._done:
                piece = self._next_piece()
                if not piece:
                    self._finish()
                    return
                yield piece
        except BaseException:
            self.close()
            raise

    def read(self) -> bytes:
        return b"".join(self.iter_raw())

    def iter_json(self) -> Iterator[object]:
        """Consecutive JSON values (docker streams: one object per line, but any whitespace works)."""
        from berth.fastjson import raw_decode
        pending = ""
        tail = b""
        for piece in self.iter_raw():
            data = tail + piece
            try:
                text = data.decode()
                tail = b""
            except UnicodeDecodeError as e:
                # a multi-byte character split across pieces: keep its head for the next round
                text, tail = data[: e.start].decode(), data[e.start:]
            pending += text
            while True:
                stripped = pending.lstrip()
                if not stripped:
                    pending = ""
                    break
                try:
                    obj, end = raw_decode(stripped)
                except ValueError:
                    pending = stripped
                    break
                yield obj
                pending = stripped[end:]
        if pending.strip():
            raise ProtocolError(f"truncated JSON in stream: {pending[:80]!r}")

    def _finish(self) -> None:
        self._done = True
        self.release()

    def release(self) -> None:
        """Hand the connection back for reuse (the caller's pool decides) or close it."""
        on_release = getattr(self, "on_release", None)
        if on_release is not None and self.conn.reusable and self._done:
            on_release(self.conn)
        elif not self._done:
            self.close()

    def close(self) -> None:
        self._done = True
        try:
            self.conn.sock.close()
        except OSError:
            pass

    # -- hijack ---------------------------------------------------------------------------------

    def hijack(self) -> Hijacked:
        """Take the raw connection after a 101 (or a legacy 200): the stream begins with bytes already read."""
        self._done = True
        conn = self.conn
        return Hijacked(conn.sock, bytes(conn.buf))


class Hijacked:
    """The raw duplex byte stream of an attach or exec after the upgrade."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.leftover = leftover
        self.read_closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, n: int = RECV_SIZE) -> bytes:
        if self.leftover:
            data, self.leftover = self.leftover[:n], self.leftover[n:]
            return data
        try:
            data = self.sock.recv(n)
        except ConnectionResetError:
            data = b""
        if not data:
            self.read_closed = True
        return data

    def pending(self) -> bool:
        """Bytes already buffered (by us or by TLS): select() would not report them."""
        if self.leftover:
            return True
        pending = getattr(self.sock, "pending", None)
        return bool(pending and pending())

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_some(self, data: bytes | bytearray) -> int:
        """Send what fits without blocking (0 if nothing does): a full socket must never stall the
        loop that also drains the daemon's output."""
        if getattr(self.sock, "pending", None) is None:  # plain socket
            try:
                return self.sock.send(data, _socket.MSG_DONTWAIT)
            except BlockingIOError:
                return 0
        self.sock.setblocking(False)
        try:
            return self.sock.send(data)
        except (BlockingIOError, OSError) as e:
            if e.__class__.__name__ in ("SSLWantWriteError", "SSLWantReadError", "BlockingIOError"):
                return 0
            raise
        finally:
            self.sock.setblocking(True)

    def close_write(self) -> None:
        """Half-close: tell the daemon stdin ended while still reading its output."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
