"""One client connection: an asyncio Protocol driving h11, serving one request at a time.

Why a Protocol and not asyncio streams: bytes go straight from `data_received` into h11 (no
second buffer), and a hijack can hand the socket to a fresh StreamReader with the bytes h11 had
already buffered replayed first, which streams cannot do without reaching into their internals.

Disconnects: `eof_received` returns True so a client's half-close (SHUT_WR) leaves our write side
open. While a streamed response is being sent, EOF or a lost connection means the client is gone
(Go's server cancels the request context the same way): the stream's iterator is cancelled and
closed. A handler computing a plain response is left to finish.

h11 parses requests; responses are written here directly (status line, headers, Content-Length or
chunked framing), which is a few lines and skips h11's per-response header validation and state
bookkeeping, about a quarter of a keep-alive round trip. Each request therefore gets a fresh h11
parser, fed with whatever the client sent past the previous request (pipelining).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

from berth.errors import BerthError
from berth.httpd.request import Request
from berth.httpd.response import FileBody, Response, dumps

if TYPE_CHECKING:
    from berth.httpd.server import Server

log = logging.getLogger("berth.httpd")

Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, BerthError], Response]

MAX_HEAD = 1 << 20  # Go's http.DefaultMaxHeaderBytes: build's X-Registry-Config can be large
READ_HIGH = 1 << 18  # stop reading from a client that sends this much ahead of what we parse
# A FileBody goes out in pieces this large, read and written. Not sendfile(2): on loopback, the
# common case for berth's registry, a reader took ~1.4x as long to receive a 64 MiB blob sent by
# sendfile (or by 1 MiB writes) as one sent in 64-128 KiB writes (bench/registry_server.py).
_FILE_CHUNK = 128 << 10
DRAIN_LIMIT = 1 << 16  # unread body we swallow to keep a connection alive; more and we close
_NO_BODY_STATUS = frozenset((204, 304))
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _ClientGone(Exception):
    pass


class Connection(asyncio.Protocol):
    """Serves requests on one transport until the client closes, the server closes, or a hijack."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self._unparsed = 0
        self._eof = False
        self._lost = False
        self._streaming = False
        self._gone_cancel = False
        self._hijacked = False
        self._keep_alive = True
        self._http11 = True
        self._sent_100 = False
        self._peer: object = None
        self.task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._peer = _peer(transport)
        self._server._connections.add(self)
        self.task = self._loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        try:
            self._h11.receive_data(data)
        except RuntimeError:  # data after EOF cannot happen on a socket; be safe
            return
        self._unparsed += len(data)
        if self._data_waiter is not None:
            self._wake_data()
        elif self._unparsed > READ_HIGH and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._h11.receive_data(b"")
        self._wake_data()
        self._client_gone()
        return True  # keep our write side open: a half-close is not a disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._wake_data()
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionResetError("connection lost"))
        self._drain_waiter = None
        self._client_gone()
        # Stays in the server's set until _run ends, so that Server.close() still ends its task.

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._drain_waiter = None

    # -- plumbing used by Request ----------------------------------------------------------

    async def next_event(self) -> object:
        """The next h11 event, reading from the socket as needed."""
        while True:
            ev = self._h11.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            self._unparsed = 0
            if self._read_paused and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()
            fut = self._data_waiter = self._loop.create_future()
            try:
                await fut
            finally:
                self._data_waiter = None

    def send_100_continue(self) -> None:
        if self._h11.they_are_waiting_for_100_continue and not self._sent_100:
            self._sent_100 = True
            self._write(_CONTINUE)

    def hijack(self, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Write `head` raw and move the transport to a StreamReaderProtocol (see Request.hijack)."""
        transport = self.transport
        assert transport is not None
        transport.write(head)
        data, closed = self._h11.trailing_data
        reader = asyncio.StreamReader(loop=self._loop)
        proto = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        self._hijacked = True
        if not self._lost:
            transport.set_protocol(proto)
            proto.connection_made(transport)
            if self._write_paused:
                proto.pause_writing()
        if data:
            reader.feed_data(data)
        if closed or self._lost:
            reader.feed_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._server._connections.discard(self)
        self._server._hijacked.add(self)
        return reader, asyncio.StreamWriter(transport, proto, reader, self._loop)

    # -- the request loop ------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                try:
                    ev = await self.next_event()
                except h11.RemoteProtocolError as e:
                    self._send_protocol_error(e)
                    return
                if type(ev) is not h11.Request:
                    return  # ConnectionClosed, or garbage h11 paused on
                self._http11 = ev.http_version == b"1.1"
                self._keep_alive = self._http11 and not _asks_close(ev.headers)
                self._sent_100 = False
                request = Request(self, ev, self._peer)
                if not await self._serve(request) or self._hijacked or not self._keep_alive:
                    return
                self._next_cycle()
        except asyncio.CancelledError:
            if not self._gone_cancel:
                raise
        except (ConnectionError, _ClientGone):
            pass
        finally:
            self._server._hijacked.discard(self)
            self._server._connections.discard(self)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    async def _serve(self, request: Request) -> bool:
        """Handle one request; False if the connection must close afterwards."""
        try:
            response = await self._server.handler(request)
        except BerthError as e:
            response = self._error(request, e)
        except (asyncio.CancelledError, _ClientGone):
            raise
        except Exception as e:
            if request._hijacked:
                log.exception("hijacked handler failed: %s %s", request.method, request.target)
                return False
            log.exception("handler failed: %s %s", request.method, request.target)
            err = BerthError(str(e) or type(e).__name__)
            response = self._error(request, err)
        if request._hijacked:
            return False
        try:
            sent = await self._send(request, response)
        except ValueError:  # the handler built an invalid header: a bug, answered as such
            log.exception("invalid response: %s %s", request.method, request.target)
            sent = await self._send(request, self._error(request, BerthError("invalid response header")))
        if not sent:
            return False
        return await self._finish_request_body()

    def _error(self, request: Request, err: BerthError) -> Response:
        try:
            return self._server.error_handler(request, err)
        except Exception:
            log.exception("error handler failed")
            return Response(500, [("Content-Type", "application/json")], dumps({"message": str(err)}))

    async def _send(self, request: Request, response: Response) -> bool:
        """Write a response; False if the connection must close (client gone, stream failed)."""
        body = response.body
        status = response.status
        head_only = request.method == "HEAD" or status in _NO_BODY_STATUS
        if body is None or isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body) if body else b""
            extra = ""
            if status not in _NO_BODY_STATUS and not _has(response.headers, "content-length"):
                extra = f"Content-Length: {len(data)}\r\n"
            out = self._head(status, response.headers, extra)
            self._write(out + data if data and not head_only else out)
            await self._drain()
            return True
        if isinstance(body, FileBody):
            return await self._send_file(response, body, head_only)
        return await self._send_stream(response, body, head_only)

    async def _send_file(self, response: Response, body: FileBody, head_only: bool) -> bool:
        try:
            extra = "" if _has(response.headers, "content-length") else f"Content-Length: {body.length}\r\n"
            self._write(self._head(response.status, response.headers, extra))
            if head_only:
                return True
            if self.transport is None or self._lost:
                return False
            self._streaming = True
            sent = await self._copy_file(body)
            return sent == body.length  # a file cut short: the client must see the body incomplete
        except asyncio.CancelledError as e:
            self._absorb_gone_cancel(e)
            return False
        except (ConnectionError, _ClientGone):
            return False
        finally:
            self._streaming = False
            body.close()

    async def _copy_file(self, body: FileBody) -> int:
        pos, left = body.offset, body.length
        while left > 0:
            chunk = os.pread(body.fd, min(_FILE_CHUNK, left), pos)
            if not chunk:
                break
            self._write(chunk)
            await self._drain()
            pos += len(chunk)
            left -= len(chunk)
        return body.length - left

    def _head(self, status: int, headers: list[tuple[str, str]], extra: str) -> bytes:
        lines = "".join([f"{k}: {v}\r\n" for k, v in headers])
        if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
            raise ValueError(f"response header with a line break: {headers!r}")
        if not self._keep_alive:
            extra += "Connection: close\r\n"
        first = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n"
        return (first + lines + extra + "\r\n").encode("latin-1")

    async def _send_stream(self, response: Response, body: AsyncIterator[bytes], head_only: bool) -> bool:
        # Only a streamed body is cancelled by a vanishing client; a plain one just fails to write.
        if _has(response.headers, "content-length"):
            extra = ""  # the handler knows the length: the body goes as is (HTTP forbids both)
        elif self._http11:
            extra = "Transfer-Encoding: chunked\r\n"
        else:
            extra = ""  # HTTP/1.0 knows no chunking: the body ends when the connection does
            self._keep_alive = False
        try:
            head = self._head(response.status, response.headers, extra)
        except ValueError:
            await _aclose(body)
            raise
        if head_only or self._eof:
            await _aclose(body)
            if self._eof and not head_only:
                return False
            self._write(head)
            return True
        self._write(head)
        chunked = extra.startswith("Transfer-Encoding")
        sent = 0
        self._streaming = True
        finished = False
        try:
            async for chunk in body:
                if chunk:
                    self._write(b"".join((b"%x\r\n" % len(chunk), chunk, b"\r\n")) if chunked else chunk)
                    sent += len(chunk)
                    await self._drain()
            finished = True
        except asyncio.CancelledError as e:
            self._absorb_gone_cancel(e)
            return False
        except (ConnectionError, _ClientGone):
            return False
        except Exception:
            # Too late for an error status: cut the stream short so the client sees it incomplete.
            log.exception("streamed response failed")
            return False
        finally:
            self._streaming = False
            if not finished:
                await _aclose(body)
        if chunked:
            self._write(b"0\r\n\r\n")
            return True
        length = _header(response.headers, "content-length")
        return length is None or length == str(sent)  # short of its Content-Length: close

    async def _finish_request_body(self) -> bool:
        """Read what the handler left of the request body, if it is small, to keep the connection."""
        h = self._h11
        if h.their_state is not h11.SEND_BODY:
            return True
        if h.they_are_waiting_for_100_continue and not self._sent_100:
            return False  # the client may never send the body we did not ask for: close
        budget = DRAIN_LIMIT
        while True:
            try:
                ev = await self.next_event()
            except h11.RemoteProtocolError:
                return False
            if type(ev) is h11.Data:
                budget -= len(ev.data)
                if budget < 0:
                    return False
            else:
                return type(ev) is h11.EndOfMessage

    def _send_protocol_error(self, e: h11.RemoteProtocolError) -> None:
        body = f"Bad Request: {e}\n".encode()
        self._keep_alive = False
        head = self._head(e.error_status_hint, [("Content-Type", "text/plain; charset=utf-8")],
                          f"Content-Length: {len(body)}\r\n")
        self._write(head + body)

    def _next_cycle(self) -> None:
        """A fresh parser for the next request, fed what the client already sent past this one."""
        data, closed = self._h11.trailing_data
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if data:
            self._h11.receive_data(data)
        if closed:
            self._h11.receive_data(b"")

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, data: bytes | None) -> None:
        if data and self.transport is not None and not self._lost:
            self.transport.write(data)

    async def _drain(self) -> None:
        if self._lost:
            raise _ClientGone()
        if not self._write_paused:
            return
        fut = self._drain_waiter = self._loop.create_future()
        await fut

    def _wake_data(self) -> None:
        w = self._data_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _absorb_gone_cancel(self, e: asyncio.CancelledError) -> None:
        """In `except CancelledError` around a response: re-raise unless it is the cancel
        `_client_gone` sent, which is taken back so the task can end the connection itself."""
        if not self._gone_cancel:
            raise e
        t = asyncio.current_task()
        if t is not None:
            t.uncancel()

    def _client_gone(self) -> None:
        if self._streaming and not self._gone_cancel and self.task is not None:
            self._gone_cancel = True
            self.task.cancel()

    def abort(self) -> None:
        """Server shutdown: stop this connection now."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        elif self.transport is not None:
            self.transport.close()


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v.strip() for k, v in headers if k.lower() == name), None)


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return any(k.lower() == name for k, _ in headers)


def _peer(transport: asyncio.BaseTransport) -> object:
    """(host, port) for TCP; ("unix", pid, uid, gid) from SO_PEERCRED for a unix socket."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        try:
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        except OSError:
            return ("unix", 0, -1, -1)
        return ("unix", pid, uid, gid)
    return transport.get_extra_info("peername")


def _asks_close(headers: object) -> bool:
    for name, value in headers:  # type: ignore[attr-defined]
        if name == b"connection" and b"close" in [t.strip().lower() for t in value.split(b",")]:
            return True
    return False


async def _aclose(it: AsyncIterator[bytes]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("closing a response stream failed")
