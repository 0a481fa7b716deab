"""Helpers for httpd tests: a server on a unix socket under tmp_path, and a raw HTTP client
(h11 in client mode over a real socket) so tests see exactly what went over the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h11

from berth.httpd import Handler, Server


@contextlib.asynccontextmanager
async def serving(handler: Handler, sock: str, **kw: object) -> AsyncIterator[Server]:
    server = Server(handler, unix=sock, **kw)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@dataclass
class Reply:
    status: int
    reason: bytes
    headers: dict[str, str]
    body: bytes
    chunked: bool = False
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Client:
    """One keep-alive connection; `request` sends a request and reads the whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, sock: str) -> Client:
        r, w = await asyncio.open_unix_connection(sock)
        return cls(r, w)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def send(self, method: str, target: str, headers: list[tuple[str, str]] | None = None,
                   body: bytes | None = None) -> None:
        hs = [("Host", "x"), *(headers or [])]
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
            hs.append(("Content-Length", str(len(body))))
        out = self.h11.send(h11.Request(method=method, target=target, headers=hs)) or b""
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        out += self.h11.send(h11.EndOfMessage()) or b""
        self.writer.write(out)
        await self.writer.drain()

    async def event(self) -> object:
        while True:
            ev = self.h11.next_event()
            if ev is h11.NEED_DATA:
                data = await self.reader.read(65536)
                self.h11.receive_data(data)
                continue
            return ev

    async def head(self) -> Reply:
        ev = await self.event()
        if type(ev) is h11.InformationalResponse:
            ev = await self.event()
        assert type(ev) is h11.Response, ev
        hs = {k.decode().lower(): v.decode() for k, v in ev.headers}
        return Reply(ev.status_code, ev.reason, hs, b"", hs.get("transfer-encoding") == "chunked",
                     list(ev.headers))

    async def read_body(self, reply: Reply) -> Reply:
        parts = []
        while True:
            ev = await self.event()
            if type(ev) is h11.Data:
                parts.append(bytes(ev.data))
            elif type(ev) is h11.EndOfMessage:
                break
            else:
                raise AssertionError(f"unexpected {ev!r}")
        reply.body = b"".join(parts)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return reply

    async def request(self, method: str, target: str, headers: list[tuple[str, str]] | None = None,
                      body: bytes | None = None) -> Reply:
        await self.send(method, target, headers, body)
        return await self.read_body(await self.head())


async def raw_exchange(sock: str, data: bytes, *, shut: bool = False, timeout: float = 5.0) -> bytes:
    """Write raw bytes, optionally half-close, and read until the server closes."""
    r, w = await asyncio.open_unix_connection(sock)
    try:
        w.write(data)
        await w.drain()
        if shut:
            w.write_eof()
        return await asyncio.wait_for(r.read(), timeout)
    finally:
        w.close()


def aio(fn):  # type: ignore[no-untyped-def]
    """Run an async test function in a fresh event loop, with an overall deadline."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))

    return wrapper
