"""FileBody: a file range sent with Content-Length, over plain sockets and TLS alike; its fd is
closed whatever happens, and a file cut short closes the connection."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from berth.httpd import FileBody, Request, Response, Router, Server, stream_response

from .util import Client, aio, serving

PAYLOAD = os.urandom(3 << 20)


def _router(path: Path, opened: list[FileBody], declared: int | None = None) -> Router:
    r = Router()

    async def blob(req: Request) -> Response:
        body = FileBody(os.open(path, os.O_RDONLY), 0, declared if declared is not None else len(PAYLOAD))
        opened.append(body)
        return Response(200, [("Content-Type", "application/octet-stream")], body)

    r.add(["GET", "HEAD"], "/blob", blob)
    return r


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    p = tmp_path / "blob"
    p.write_bytes(PAYLOAD)
    return p


@aio
async def test_file_body_is_sent_whole_and_the_connection_stays(sock: str, payload_file: Path) -> None:
    opened: list[FileBody] = []
    async with serving(_router(payload_file, opened), sock):
        c = await Client.connect(sock)
        for _ in range(2):  # the same keep-alive connection serves it twice
            await c.send("GET", "/blob")
            head = await c.head()
            assert head.headers["content-length"] == str(len(PAYLOAD))
            assert "transfer-encoding" not in head.headers
            rep = await c.read_body(head)
            assert rep.body == PAYLOAD
        await c.send("HEAD", "/blob")
        head = await c.head()
        assert head.headers["content-length"] == str(len(PAYLOAD))
        assert (await c.read_body(head)).body == b""
        await c.close()
    assert len(opened) == 3 and all(b.fd == -1 for b in opened)  # every fd closed


@aio
async def test_file_shorter_than_declared_closes_the_connection(sock: str, payload_file: Path) -> None:
    opened: list[FileBody] = []
    async with serving(_router(payload_file, opened, declared=len(PAYLOAD) + 100), sock):
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"GET /blob HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 10)  # read() returns only at EOF: the server closed
        w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert f"content-length: {len(PAYLOAD) + 100}".encode() in head.lower()
        assert body == PAYLOAD
    assert opened[0].fd == -1


@aio
async def test_stream_with_content_length_is_not_chunked(sock: str) -> None:
    r = Router()

    async def gen() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    async def handler(req: Request) -> Response:
        resp = stream_response(gen(), "text/plain")
        resp.headers.append(("Content-Length", "6"))
        return resp

    r.add("GET", "/s", handler)
    async with serving(r, sock):
        c = await Client.connect(sock)
        await c.send("GET", "/s")
        head = await c.head()
        assert "transfer-encoding" not in head.headers
        assert (await c.read_body(head)).body == b"abcdef"
        await c.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@aio
async def test_file_body_over_tls(tmp_path: Path, payload_file: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.create_default_context(cafile=str(cert))
    opened: list[FileBody] = []
    server = Server(_router(payload_file, opened), host="127.0.0.1", port=0, ssl=sctx)
    await server.start()
    try:
        port = int(server.addresses[0][1])
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost")
        w.write(b"GET /blob HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 20)
        w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert f"content-length: {len(PAYLOAD)}".encode() in head.lower()
        assert body == PAYLOAD
    finally:
        await server.close()
    assert opened[0].fd == -1
