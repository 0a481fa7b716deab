"""Hijack (Docker's attach and exec start) over a real unix socket: the status line, early bytes
replayed, the client's half-close not treated as a disconnect, and the close after the handler."""

from __future__ import annotations

import asyncio
import json
import socket

from berth.httpd import Request, Response, Router, Server

from .util import aio, serving


def echo_router(delay: float = 0.0) -> Router:
    """After the hijack: greet, read the client's input to EOF, then answer with what came."""
    r = Router()

    async def attach(req: Request) -> Response:
        if delay:
            await asyncio.sleep(delay)
        body = await req.body()
        rd, wr = await req.hijack(
            101, [("Content-Type", "application/vnd.docker.raw-stream"), ("Connection", "Upgrade"),
                  ("Upgrade", "tcp")])
        wr.write(b"hello " + body + b"\n")
        await wr.drain()
        data = await rd.read()  # until the client's SHUT_WR
        await asyncio.sleep(0.05)  # the write side must still work after the client's EOF
        wr.write(b"got:" + data)
        await wr.drain()
        return Response()

    async def raw200(req: Request) -> Response:
        _rd, wr = await req.hijack(200, [("Content-Type", "application/vnd.docker.raw-stream")])
        wr.write(b"raw")
        await wr.drain()
        return Response()

    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/exec/{id}/start", attach)
    r.add("POST", "/raw", raw200)
    return r


def blocking_client(sock: str, request: bytes, early: bytes, shut: bool = True) -> bytes:
    """A plain blocking socket client, as the docker CLI behaves: write, SHUT_WR, read to the end."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(request + early)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
    s.close()
    return out


@aio
async def test_attach_101_early_bytes_and_half_close(sock: str) -> None:
    async with serving(echo_router(), sock):
        req = (b"POST /containers/c1/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: tcp\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        out = await asyncio.to_thread(blocking_client, sock, req, b"early-stdin")
        assert out == (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                       b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello \ngot:early-stdin")


@aio
async def test_exec_start_json_body_then_stream(sock: str) -> None:
    async with serving(echo_router(), sock):
        body = json.dumps({"Detach": False, "Tty": False}).encode()
        req = (b"POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
               b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        out = await asyncio.to_thread(blocking_client, sock, req, b"in1")
        head, _, rest = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        assert rest == b"hello " + body + b"\ngot:in1"


@aio
async def test_half_close_before_hijack_is_replayed_as_eof(sock: str) -> None:
    # The CLI half-closes at once when it has no stdin; the handler may hijack later than that.
    async with serving(echo_router(delay=0.2), sock):
        req = (b"POST /containers/c1/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: tcp\r\nContent-Length: 0\r\n\r\n")
        out = await asyncio.to_thread(blocking_client, sock, req, b"")
        assert out.endswith(b"\r\n\r\nhello \ngot:")


@aio
async def test_hijack_200_without_upgrade(sock: str) -> None:
    async with serving(echo_router(), sock):
        out = await asyncio.to_thread(blocking_client, sock, b"POST /raw HTTP/1.1\r\nHost: x\r\n\r\n", b"", False)
        assert out == b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw"


@aio
async def test_full_close_by_client_ends_the_reader(sock: str) -> None:
    ended = asyncio.Event()
    r = Router()

    async def attach(req: Request) -> Response:
        rd, _wr = await req.hijack()
        assert await rd.read() == b"bye"
        ended.set()
        return Response()

    r.add("POST", "/a", attach)
    async with serving(r, sock):
        rd, wr = await asyncio.open_unix_connection(sock)
        wr.write(b"POST /a HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
        head = await rd.readuntil(b"\r\n\r\n")
        assert head == b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        wr.write(b"bye")
        await wr.drain()
        wr.close()
        await asyncio.wait_for(ended.wait(), 5)


@aio
async def test_server_close_ends_hijacked_connections(sock: str) -> None:
    cancelled = asyncio.Event()
    r = Router()

    async def attach(req: Request) -> Response:
        await req.hijack()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response()

    r.add("POST", "/a", attach)
    server = Server(r, unix=sock)
    await server.start()
    rd, wr = await asyncio.open_unix_connection(sock)
    wr.write(b"POST /a HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
    await rd.readuntil(b"\r\n\r\n")
    await asyncio.wait_for(server.close(), 5)
    assert cancelled.is_set()
    assert await asyncio.wait_for(rd.read(), 5) == b""
    wr.close()
