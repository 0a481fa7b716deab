"""GET /containers/{id}/attach/ws: attach over a WebSocket (moby's wsContainersAttach).

The container's output goes out as one message per chunk, never multiplexed (the streams are not
told apart, as in moby), in binary frames from API 1.28 on and text frames before. The client's
messages go to the container's stdin. When the output ends (the container exited) berth sends a
close frame (1000) and closes the socket; a close frame or a hang-up from the client ends the
session (moby's rule for stdin: with StdinOnce and no TTY, the container's stdin is closed).

The framing (masking, fragments, control frames) is wsproto's; the handshake answer is the one
line RFC 6455 asks for, computed here because the HTTP request is already parsed by then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from berth.api.backends import StreamSession
from berth.errors import InvalidArgument
from berth.httpd import Request, Response

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def check_handshake(request: Request) -> str:
    """The Sec-WebSocket-Accept answer for a valid WebSocket upgrade request, or a 400."""
    key = (request.headers.get("sec-websocket-key") or "").strip()
    upgrade = (request.headers.get("upgrade") or "").lower()
    if upgrade != "websocket" or not key:
        raise InvalidArgument("not websocket protocol")  # moby's (x/net/websocket) wording
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        raise InvalidArgument("not websocket protocol: invalid Sec-WebSocket-Key") from None
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


async def serve(request: Request, session: StreamSession, accept: str, *, binary: bool) -> Response:
    try:
        reader, writer = await request.hijack(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                    ("Sec-WebSocket-Accept", accept)],
                                              reason="Switching Protocols")
    except BaseException:
        await session.detach()
        raise
    ws = Connection(ConnectionType.SERVER)
    out_task = asyncio.create_task(_pump_out(ws, writer, session, binary))
    in_task = asyncio.create_task(_pump_in(ws, reader, writer, session))
    output_ended = False
    try:
        done, _ = await asyncio.wait((out_task, in_task), return_when=asyncio.FIRST_COMPLETED)
        output_ended = out_task in done and out_task.result()
    finally:
        for t in (out_task, in_task):
            if not t.done():
                t.cancel()
        await asyncio.gather(out_task, in_task, return_exceptions=True)
        if not output_ended:
            await session.detach()
    if output_ended:
        with contextlib.suppress(ConnectionError, LocalProtocolError):
            writer.write(ws.send(CloseConnection(code=1000)))
            await writer.drain()
    return Response()


async def _pump_out(ws: Connection, writer: asyncio.StreamWriter, session: StreamSession, binary: bool) -> bool:
    """True when the output ended, False when the client went away first."""
    output = session.output()
    try:
        async for _stream, data in output:
            if not data:
                continue
            msg = BytesMessage(data=data) if binary else TextMessage(data=data.decode(errors="replace"))
            writer.write(ws.send(msg))
            await writer.drain()
    except (ConnectionError, LocalProtocolError):
        return False
    finally:
        aclose = getattr(output, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return True


async def _pump_in(ws: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   session: StreamSession) -> None:
    """Relay the client's messages to stdin; returns when the client closes or goes away."""
    while True:
        try:
            data = await reader.read(65536)
        except (ConnectionError, OSError):
            return
        if not data:
            return  # a hang-up without a close frame
        try:
            ws.receive_data(data)
            events = list(ws.events())
        except RemoteProtocolError:
            return
        for event in events:
            if isinstance(event, (BytesMessage, TextMessage)):
                payload = event.data.encode() if isinstance(event.data, str) else bytes(event.data)
                if session.stdin and payload:
                    await session.write_stdin(payload)
            elif isinstance(event, Ping):
                writer.write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if session.stdin and session.stdin_once and not session.tty:
                    await session.close_stdin()
                with contextlib.suppress(ConnectionError, LocalProtocolError):
                    writer.write(ws.send(event.response()))
                    await writer.drain()
                return
