"""The server over real unix and TCP sockets: keep-alive, pipelining, HEAD, 100-continue, chunked
bodies both ways, errors, flow control, disconnects."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator

import pytest

from berth.errors import BerthError, Conflict, NotFound, NotModified
from berth.httpd import Request, Response, Router, Server, json_response, serve, stream_response

from .util import Client, aio, raw_exchange, serving


def app() -> Router:
    r = Router()

    async def ping(req: Request) -> Response:
        return Response(200, [("Content-Type", "text/plain; charset=utf-8")], b"OK")

    async def echo(req: Request) -> Response:
        body = await req.body()
        return json_response({"method": req.method, "path": req.path, "params": req.params,
                              "len": len(body), "body": body.decode(errors="replace")})

    async def chunks(req: Request) -> Response:
        sizes = []
        async for c in req.stream():
            sizes.append(len(c))
        return json_response({"total": sum(sizes)})

    async def ignore_body(req: Request) -> Response:
        return json_response({"ignored": True})

    async def missing(req: Request) -> Response:
        raise NotFound("No such container: x")

    async def boom(req: Request) -> Response:
        raise RuntimeError("kaboom")

    async def not_modified(req: Request) -> Response:
        raise NotModified("already started")

    r.add(["GET", "HEAD"], "/_ping", ping)
    r.add(["GET", "POST", "PUT"], "/echo/{what:.*}", echo)
    r.add("POST", "/chunks", chunks)
    r.add("POST", "/ignore", ignore_body)
    r.add("GET", "/missing", missing)
    r.add("GET", "/boom", boom)
    r.add("POST", "/start", not_modified)
    return r


@aio
async def test_keepalive_and_json(sock: str) -> None:
    async with serving(app(), sock):
        c = await Client.connect(sock)
        for i in range(3):
            rep = await c.request("POST", f"/echo/a/b%3Ac?i={i}", body=b"hello")
            assert rep.status == 200
            assert rep.headers["content-type"] == "application/json"
            assert rep.headers["content-length"] == str(len(rep.body))
            assert rep.body == (b'{"method":"POST","path":"/echo/a/b:c","params":{"what":"a/b:c"},'
                                b'"len":5,"body":"hello"}\n')
        await c.close()


@aio
async def test_pipelined_requests_answered_in_order(sock: str) -> None:
    async with serving(app(), sock):
        data = b"".join(
            f"POST /echo/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{i}".encode() for i in range(5)
        ) + b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = await raw_exchange(sock, data)
        bodies = [seg for seg in out.split(b"\r\n\r\n")[1:]]
        assert [b.split(b"\n")[0] for b in bodies[:5]] == [
            f'{{"method":"POST","path":"/echo/{i}","params":{{"what":"{i}"}},"len":1,"body":"{i}"}}'.encode()
            for i in range(5)
        ]
        assert out.endswith(b"\r\n\r\nOK")
        assert out.count(b"HTTP/1.1 200 OK\r\n") == 6


@aio
async def test_head_keeps_content_length_without_body(sock: str) -> None:
    async with serving(app(), sock):
        out = await raw_exchange(sock, b"HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: 2" in head
        assert body == b""


@aio
async def test_expect_100_continue(sock: str) -> None:
    async with serving(app(), sock):
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        line = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        assert line == b"HTTP/1.1 100 Continue\r\n\r\n"
        w.write(b"abc")
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        w.close()


@aio
async def test_expect_100_continue_refused_without_reading_closes(sock: str) -> None:
    async with serving(app(), sock):
        out = await raw_exchange(
            sock, b"GET /missing HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
        )
        assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
        assert b"100 Continue" not in out  # the body was never asked for
        assert out.endswith(b'{"message":"No such container: x"}\n')


@aio
async def test_chunked_request_body_streamed(sock: str) -> None:
    async with serving(app(), sock):
        c = await Client.connect(sock)
        await c.send("POST", "/chunks", [("Transfer-Encoding", "chunked")], b"x" * 300000)
        rep = await c.read_body(await c.head())
        assert rep.body == b'{"total":300000}\n'
        # the connection stays usable
        assert (await c.request("GET", "/_ping")).body == b"OK"
        await c.close()


@aio
async def test_unread_small_body_is_drained_and_large_closes(sock: str) -> None:
    async with serving(app(), sock):
        c = await Client.connect(sock)
        rep = await c.request("POST", "/ignore", body=b"y" * 1000)
        assert rep.body == b'{"ignored":true}\n'
        assert (await c.request("GET", "/_ping")).body == b"OK"
        await c.close()
        out = await raw_exchange(sock, b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
                                 + b"z" * 200000)
        assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b'{"ignored":true}\n')


@aio
async def test_errors_via_error_handler(sock: str, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(app(), sock):
        c = await Client.connect(sock)
        rep = await c.request("GET", "/missing")
        assert (rep.status, rep.headers["content-type"], rep.body) == (
            404, "application/json", b'{"message":"No such container: x"}\n')
        with caplog.at_level(logging.ERROR, logger="berth.httpd"):
            rep = await c.request("GET", "/boom")
        assert rep.status == 500 and rep.body == b'{"message":"kaboom"}\n'
        assert "kaboom" in caplog.text and "Traceback" in caplog.text
        rep = await c.request("POST", "/start")
        assert rep.status == 304 and rep.body == b"" and "content-length" not in rep.headers
        rep = await c.request("GET", "/nope")
        assert (rep.status, rep.body) == (404, b'{"message":"page not found"}\n')
        rep = await c.request("DELETE", "/_ping")
        assert rep.status == 405
        await c.close()


@aio
async def test_custom_error_handler(sock: str) -> None:
    def registry_errors(req: Request, err: BerthError) -> Response:
        return json_response({"errors": [{"code": "NAME_UNKNOWN", "message": str(err), "detail": None}]},
                             status=err.status)

    async with serving(app(), sock, error_handler=registry_errors):
        c = await Client.connect(sock)
        rep = await c.request("GET", "/missing")
        assert rep.status == 404
        assert rep.body == b'{"errors":[{"code":"NAME_UNKNOWN","message":"No such container: x","detail":null}]}\n'
        await c.close()


@aio
async def test_body_limit_is_413(sock: str) -> None:
    r = Router()

    async def small(req: Request) -> Response:
        await req.body(limit=10)
        return Response(200)

    r.add("POST", "/small", small)
    async with serving(r, sock):
        out = await raw_exchange(
            sock, b"POST /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 11\r\n\r\n01234567890")
        assert out.startswith(b"HTTP/1.1 413 ")


@aio
async def test_bad_json_is_400(sock: str) -> None:
    r = Router()

    async def js(req: Request) -> Response:
        return json_response(await req.json())

    r.add("POST", "/js", js)
    async with serving(r, sock):
        c = await Client.connect(sock)
        rep = await c.request("POST", "/js", body=b"{nope")
        assert rep.status == 400 and rep.body.startswith(b'{"message":"invalid JSON')
        assert (await c.request("POST", "/js", body=b"")).body == b"null\n"
        assert (await c.request("POST", "/js", body=b'{"A":[1]}')).body == b'{"A":[1]}\n'
        await c.close()


@aio
async def test_malformed_request_is_400(sock: str) -> None:
    async with serving(app(), sock):
        out = await raw_exchange(sock, b"NOT HTTP AT ALL\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 ")


@aio
async def test_stream_chunks_are_flushed_one_by_one(sock: str) -> None:
    step = asyncio.Event()
    r = Router()

    async def gen() -> AsyncIterator[bytes]:
        yield b'{"status":"one"}\r\n'
        await step.wait()
        yield b'{"status":"two"}\r\n'

    async def handler(req: Request) -> Response:
        return stream_response(gen(), "application/json")

    r.add("GET", "/s", handler)
    async with serving(r, sock):
        c = await Client.connect(sock)
        await c.send("GET", "/s")
        rep = await asyncio.wait_for(c.head(), 5)  # headers arrive before the stream ends
        assert rep.chunked and rep.headers["content-type"] == "application/json"
        import h11

        ev = await asyncio.wait_for(c.event(), 5)
        assert type(ev) is h11.Data and bytes(ev.data) == b'{"status":"one"}\r\n'
        step.set()
        ev = await asyncio.wait_for(c.event(), 5)
        assert type(ev) is h11.Data and bytes(ev.data) == b'{"status":"two"}\r\n'
        assert type(await c.event()) is h11.EndOfMessage
        await c.close()


@aio
async def test_client_disconnect_mid_stream_closes_iterator(sock: str) -> None:
    started = asyncio.Event()
    closed = asyncio.Event()
    r = Router()

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b"first\n"
            started.set()
            await asyncio.sleep(3600)
            yield b"never\n"
        finally:
            closed.set()

    async def handler(req: Request) -> Response:
        return stream_response(gen(), "application/json")

    r.add("GET", "/events", handler)
    async with serving(r, sock) as server:
        _rd, wr = await asyncio.open_unix_connection(sock)
        wr.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(started.wait(), 5)
        assert not closed.is_set()
        wr.close()
        await asyncio.wait_for(closed.wait(), 5)
        for _ in range(50):
            if not server._connections:
                break
            await asyncio.sleep(0.01)
        assert not server._connections


@aio
async def test_large_response_with_slow_reader(sock: str) -> None:
    payload = os.urandom(8 << 20)
    r = Router()

    async def big(req: Request) -> Response:
        return Response(200, [], payload)

    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    async def big_stream(req: Request) -> Response:
        return stream_response(gen(), "application/octet-stream")

    r.add("GET", "/big", big)
    r.add("GET", "/bigstream", big_stream)
    async with serving(r, sock):
        for path in ("/big", "/bigstream"):
            c = await Client.connect(sock)
            await c.send("GET", path)
            await asyncio.sleep(0.2)  # let the server hit the socket's high-water mark
            rep = await c.read_body(await c.head())
            assert rep.body == payload
            await c.close()


@aio
async def test_unix_socket_mode_stale_and_live(sock: str) -> None:
    # a stale socket file (nobody listening) is replaced
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)
    s.close()
    async with serving(app(), sock) as server:
        assert server.addresses == [("unix", sock)]
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        with pytest.raises(Conflict):
            await Server(app(), unix=sock).start()
        assert os.path.exists(sock)  # the failed second server did not remove the live one's socket
    assert not os.path.exists(sock)


@aio
async def test_not_a_socket_is_refused(sock: str) -> None:
    with open(sock, "w") as f:
        f.write("x")
    with pytest.raises(Conflict):
        await Server(app(), unix=sock).start()
    with open(sock) as f:
        assert f.read() == "x"


@aio
async def test_tcp_loopback_port_zero_and_serve_cancel(sock: str) -> None:
    got: list[list[tuple]] = []
    ready = asyncio.Event()

    def on_ready(addrs: list) -> None:  # type: ignore[type-arg]
        got.append(addrs)
        ready.set()

    task = asyncio.create_task(serve(app(), host="127.0.0.1", port=0, unix=sock, ready=on_ready))
    await asyncio.wait_for(ready.wait(), 5)
    (unix_addr, tcp_addr) = got[0]
    assert unix_addr == ("unix", sock)
    host, port = tcp_addr[:2]
    assert host == "127.0.0.1" and port > 0
    rd, wr = await asyncio.open_connection(host, port)
    wr.write(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await rd.read()).endswith(b"\r\n\r\nOK")
    wr.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not os.path.exists(sock)
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)


@aio
async def test_close_ends_idle_keepalive_connections(sock: str) -> None:
    server = Server(app(), unix=sock)
    await server.start()
    c = await Client.connect(sock)
    assert (await c.request("GET", "/_ping")).body == b"OK"
    await asyncio.wait_for(server.close(), 5)
    assert await asyncio.wait_for(c.reader.read(), 5) == b""
    await c.close()


@aio
async def test_stdlib_http_client_over_tcp() -> None:
    """A second, independent client implementation (http.client) against the TCP listener."""
    import http.client

    server = Server(app(), host="127.0.0.1", port=0)
    await server.start()
    try:
        host, port = server.addresses[0][:2]

        def talk() -> list[tuple[int, bytes]]:
            conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
            out = []
            for method, path, body in (("GET", "/_ping", None), ("PUT", "/echo/z", b"data"), ("HEAD", "/_ping", None)):
                conn.request(method, path, body=body)
                resp = conn.getresponse()
                out.append((resp.status, resp.read()))
            conn.close()
            return out

        res = await asyncio.to_thread(talk)
        assert res[0] == (200, b"OK")
        assert res[1][0] == 200 and b'"body":"data"' in res[1][1]
        assert res[2] == (200, b"")
    finally:
        await server.close()


@aio
async def test_http10_and_connection_close(sock: str) -> None:
    r = Router()

    async def gen() -> AsyncIterator[bytes]:
        yield b"part1,"
        yield b"part2"

    async def streamed(req: Request) -> Response:
        return stream_response(gen(), "text/plain")

    async def plain(req: Request) -> Response:
        return Response(200, [("Content-Type", "text/plain")], b"plain")

    r.add("GET", "/s", streamed)
    r.add("GET", "/p", plain)
    async with serving(r, sock):
        # HTTP/1.0: no chunking, the body ends with the connection
        out = await raw_exchange(sock, b"GET /s HTTP/1.0\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head and b"Connection: close" in head
        assert body == b"part1,part2"
        out = await raw_exchange(sock, b"GET /p HTTP/1.0\r\n\r\nGET /p HTTP/1.0\r\n\r\n")
        assert out.count(b"HTTP/1.1 200 OK") == 1 and out.endswith(b"\r\n\r\nplain")  # closed after one
        # HTTP/1.1 chunked framing on the wire, then Connection: close honoured
        out = await raw_exchange(sock, b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"\r\n\r\n6\r\npart1,\r\n5\r\npart2\r\n0\r\n\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in out and b"Connection: close\r\n" in out


@aio
async def test_header_injection_is_refused(sock: str, caplog: pytest.LogCaptureFixture) -> None:
    r = Router()

    async def bad(req: Request) -> Response:
        return Response(200, [("X-Name", req.arg("v") or "")], b"x")

    r.add("GET", "/bad", bad)
    async with serving(r, sock):
        c = await Client.connect(sock)
        with caplog.at_level(logging.ERROR, logger="berth.httpd"):
            rep = await c.request("GET", "/bad?v=a%0d%0aSet-Cookie:%20x")
        assert rep.status == 500 and "set-cookie" not in rep.headers
        assert (await c.request("GET", "/bad?v=fine")).headers["x-name"] == "fine"
        await c.close()


@aio
async def test_peer_credentials_on_unix_socket(sock: str) -> None:
    seen: list[object] = []
    r = Router()

    async def who(req: Request) -> Response:
        seen.append(req.peer)
        return Response(200, [], b"")

    r.add("GET", "/who", who)
    async with serving(r, sock):
        c = await Client.connect(sock)
        await c.request("GET", "/who")
        await c.close()
    assert seen == [("unix", os.getpid(), os.getuid(), os.getgid())]
