"""The hijacked I/O of attach and exec start: status line, media type, relaying, half-close.

Wire rules (moby's container_routes.go / exec.go, docker-api notes §3.1):
- With `Upgrade: tcp` in the request: `101 UPGRADED`, `Connection: Upgrade`, `Upgrade: tcp`, and
  `Content-Type: application/vnd.docker.multiplexed-stream` when the output is framed (no TTY)
  and the API is >= 1.42, else `application/vnd.docker.raw-stream`. Without Upgrade (docker-py
  can do this, CLI 28 cannot): `200 OK` with the raw-stream type. Either way the framing follows
  the TTY setting, not the media type.
- The client's half-close (SHUT_WR, which the CLI sends as soon as its stdin ends, or at once
  without stdin) is not a disconnect. Only a full hang-up (POLLHUP, which a unix socket reports
  when the peer closes) or a failed write ends the session early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import AsyncIterator

from berth.api import version
from berth.api.backends import StreamSession
from berth.api.stdcopy import SYSTEMERR, frame
from berth.errors import BerthError
from berth.httpd import Request, Response

log = logging.getLogger("berth.api")

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
HANGUP_POLL = 0.25  # seconds between checks for a full hang-up after the client's half-close
# docker-py (and everything built on it: Compose v1, testcontainers) reads the 101 through
# http.client's buffered reader, then reads the raw socket: output that arrived together with the
# headers is lost. moby never hits this because a process takes milliseconds to start; berth may
# be faster, so output to such clients starts at least this long after the headers. The docker
# CLI (Go's client keeps what it buffered) gets no delay.
FIRST_OUTPUT_GRACE = 0.025

_DONE = "done"  # the session's output ended
_END = "end"  # the client's stdin ended and that ends this session
_GONE = "gone"  # the client went away
_FAILED = "failed"  # the session's output raised


def media_type(api_version: str, tty: bool) -> str:
    if not tty and version.at_least(api_version, "1.42"):
        return MULTIPLEXED_STREAM
    return RAW_STREAM


async def serve_session(
    request: Request, session: StreamSession, extra_headers: list[tuple[str, str]] | None = None
) -> Response:
    """Hijack the connection and relay `session` until it ends; the server then closes it."""
    if request.headers.get("upgrade") is not None:
        status = 101
        headers = [("Content-Type", media_type(request.api_version, session.tty)),
                   ("Connection", "Upgrade"), ("Upgrade", "tcp")]
    else:
        status = 200
        headers = [("Content-Type", RAW_STREAM)]
    if extra_headers:
        headers.extend(extra_headers)
    grace = 0.0 if (request.headers.get("user-agent") or "").startswith("Docker-Client/") else FIRST_OUTPUT_GRACE
    try:
        reader, writer = await request.hijack(status, headers)
    except BaseException:
        await session.detach()
        raise
    await relay(reader, writer, session, grace=grace)
    return Response()


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: StreamSession, *,
                grace: float = 0.0) -> str:
    """Relay both directions until the output ends or the client leaves; returns why it ended.
    The first output is written no sooner than `grace` seconds from now."""
    output = session.output()
    loop = asyncio.get_running_loop()
    out_task = asyncio.create_task(_pump_out(output, writer, session.tty, loop.time() + grace if grace else 0.0))
    in_task = asyncio.create_task(_pump_in(reader, writer, session))
    outcome = _GONE
    try:
        done, _ = await asyncio.wait((out_task, in_task), return_when=asyncio.FIRST_COMPLETED)
        outcome = out_task.result() if out_task in done else in_task.result()
    finally:
        for t in (out_task, in_task):
            if not t.done():
                t.cancel()
        await asyncio.gather(out_task, in_task, return_exceptions=True)
        aclose = getattr(output, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        if outcome != _DONE:
            await session.detach()
    if outcome == _DONE:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    return outcome


async def _pump_out(output: AsyncIterator[tuple[int, bytes]], writer: asyncio.StreamWriter, tty: bool,
                    not_before: float) -> str:
    loop = asyncio.get_running_loop()
    try:
        async for stream, data in output:
            if not data:
                continue  # a zero-length frame would read as nothing anyway
            if not_before:
                delay = not_before - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                not_before = 0.0
            writer.write(data if tty else frame(stream, data))
            await writer.drain()
    except ConnectionError:
        return _GONE
    except Exception as e:
        # Too late for an HTTP status: report it in the stream (stream 3 makes the CLI fail with
        # it; on a TTY it can only be text), then end the session.
        if not isinstance(e, BerthError):
            log.exception("attach/exec output failed")
        msg = (str(e) or type(e).__name__).encode() + b"\r\n"
        with contextlib.suppress(ConnectionError):
            writer.write(msg if tty else frame(SYSTEMERR, msg))
            await writer.drain()
        return _FAILED
    return _DONE


async def _pump_in(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: StreamSession) -> str:
    while True:
        try:
            data = await reader.read(65536)
        except (ConnectionError, OSError):
            return _GONE
        if not data:
            break
        if session.stdin:
            await session.write_stdin(data)
    # The client half-closed: its stdin is over, the connection is not.
    if session.stdin:
        if session.stdin_once and not session.tty:
            await session.close_stdin()
        else:
            return _END
    await _wait_hangup(writer)
    return _GONE


async def _wait_hangup(writer: asyncio.StreamWriter) -> None:
    """Return once the peer has closed its end entirely (or never, on sockets that cannot tell)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        await asyncio.Event().wait()
        return
    p = select.poll()
    p.register(sock.fileno(), select.POLLHUP)
    while not writer.is_closing():
        for _fd, ev in p.poll(0):
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return
        await asyncio.sleep(HANGUP_POLL)
