"""Listening sockets (unix and TCP, optionally TLS) and their lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl as _ssl
import stat
from collections.abc import Callable

from berth.errors import BerthError, Conflict
from berth.httpd.connection import Connection, ErrorHandler, Handler
from berth.httpd.request import Request
from berth.httpd.response import Response, json_response
from berth.httpd.tls import TLSProtocol

Address = tuple[str, ...] | tuple[str, int] | tuple[str, int, int, int]


def default_error_handler(request: Request, err: BerthError) -> Response:
    """`{"message": ...}` with the error's status (the Engine API's shape); 304 has no body."""
    if err.status == 304:
        return Response(304, [], None)
    return json_response({"message": str(err)}, status=err.status)


class Server:
    """An HTTP/1.1 server for `handler` on a unix socket and/or a TCP address.

    `addresses` lists where it listens once started: `("unix", path)` for a unix socket, the
    socket name (`(host, port)`, or 4 items for IPv6) for TCP. A unix socket is created under
    umask 0177 (mode 0600, root only, until the caller chmods/chowns it: the socket is as
    powerful as root, so it is never briefly world-writable); a stale socket file nobody listens
    on is replaced, a live one is a Conflict.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        unix: str | None = None,
        host: str | None = None,
        port: int = 0,
        ssl: _ssl.SSLContext | None = None,
        error_handler: ErrorHandler | None = None,
        backlog: int = 1024,
    ) -> None:
        if unix is None and host is None:
            raise ValueError("serve: give a unix socket path, a host, or both")
        self.handler = handler
        self.error_handler: ErrorHandler = error_handler or default_error_handler
        self._unix = unix
        self._host = host
        self._port = port
        self._ssl = ssl
        self._backlog = backlog
        self._servers: list[asyncio.Server] = []
        self._connections: set[Connection] = set()
        self._hijacked: set[Connection] = set()
        self.addresses: list[Address] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._unix is not None:
                sock = _bind_unix(self._unix)
                srv = await loop.create_unix_server(
                    lambda: Connection(self), sock=sock, ssl=self._ssl, backlog=self._backlog
                )
                self._servers.append(srv)
                self.addresses.append(("unix", self._unix))
            if self._host is not None:
                ctx = self._ssl

                def protocol() -> asyncio.Protocol:
                    # TLS on memory BIOs (berth.httpd.tls): a client's close_notify must be a half-close
                    return TLSProtocol(ctx, lambda: Connection(self)) if ctx is not None else Connection(self)

                srv = await loop.create_server(protocol, self._host, self._port, backlog=self._backlog,
                                               reuse_address=True)
                self._servers.append(srv)
                self.addresses.extend(tuple(s.getsockname()) for s in srv.sockets)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop listening, end every connection (hijacked ones too) and remove the unix socket."""
        for srv in self._servers:
            srv.close()
        conns = [*self._connections, *self._hijacked]
        for c in conns:
            c.abort()
        tasks = [c.task for c in conns if c.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._servers.clear()
        if self._unix is not None and ("unix", self._unix) in self.addresses:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix)
        self.addresses = []

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(
    handler: Handler,
    *,
    unix: str | None = None,
    host: str | None = None,
    port: int = 0,
    ssl: _ssl.SSLContext | None = None,
    ready: Callable[[list[Address]], None] | None = None,
    error_handler: ErrorHandler | None = None,
) -> None:
    """Serve `handler` until cancelled; `ready(addresses)` is called once listening."""
    server = Server(handler, unix=unix, host=host, port=port, ssl=ssl, error_handler=error_handler)
    await server.start()
    try:
        if ready is not None:
            ready(list(server.addresses))
        await asyncio.Event().wait()
    finally:
        await server.close()


def _bind_unix(path: str) -> socket.socket:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise Conflict(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: left by a process that died
        else:
            raise Conflict(f"{path} is in use by another server")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.setblocking(False)
    return sock
