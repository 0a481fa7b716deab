"""Attach and exec I/O sessions (berth.api.backends.StreamSession) over a container's monitor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from berth.errors import InvalidArgument

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys syntax: comma-separated `ctrl-<c>` or single characters."""
    if spec is None or spec == "":
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if len(part) == 1:
            out.append(ord(part))
        elif part.lower().startswith("ctrl-") and len(part) == 6:
            c = part[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
            else:
                raise InvalidArgument(f"Invalid escape keys ({spec}) provided")
        else:
            raise InvalidArgument(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in input; holds back a partial match until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detach?)"""
        out = bytearray()
        buf = self.held + data
        self.held = b""
        i = 0
        while i < len(buf):
            b = buf[i]
            matched = len(self.held)
            if b == self.keys[matched]:
                self.held += bytes([b])
                if len(self.held) == len(self.keys):
                    return bytes(out), True
            else:
                if self.held:
                    out += self.held
                    self.held = b""
                    continue  # re-examine this byte as a possible start
                out.append(b)
            i += 1
        return bytes(out), False


class AttachSession:
    """A client attached to a container's stdio: its output comes from the monitor fan-out."""

    def __init__(self, *, tty: bool, stdin: bool, stdin_once: bool, streams: set[int],
                 replay: AsyncIterator[Any] | None, follow: bool,
                 subscribe: Callable[[asyncio.Queue[tuple[int, bytes] | None]], Callable[[], None]],
                 write: Callable[[bytes], Awaitable[None]], close_stdin: Callable[[], Awaitable[None]],
                 detach_keys: bytes) -> None:
        self.tty = tty
        self.stdin = stdin
        self.stdin_once = stdin_once
        self._streams = streams
        self._replay = replay
        self._follow = follow
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        # subscribe now, before the client starts the container: nothing may be missed
        self._unsubscribe = subscribe(self._queue) if follow else (lambda: None)
        self._write = write
        self._close_stdin = close_stdin
        self._scanner = DetachScanner(detach_keys) if stdin else None
        self.detached = False

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            if self._replay is not None:
                async for stream, data, _t in self._replay:
                    if stream in self._streams:
                        yield stream, data
            if not self._follow:
                return
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                stream, data = item
                if stream in self._streams or self.tty:
                    yield (1 if self.tty else stream), data
        finally:
            self._unsubscribe()

    async def write_stdin(self, data: bytes) -> None:
        if not self.stdin or self.detached:
            return
        assert self._scanner is not None
        data, detach = self._scanner.feed(data)
        if data:
            await self._write(data)
        if detach:
            await self.detach()

    async def close_stdin(self) -> None:
        if self.stdin:
            await self._close_stdin()

    async def detach(self) -> None:
        self.detached = True
        self._queue.put_nowait(None)


class ExecSession:
    """The I/O of one exec'd process, over its own monitor connection."""

    def __init__(self, *, tty: bool, stdin: bool, conn: Any, on_exit: Callable[[int], None],
                 detach_keys: bytes) -> None:
        self.tty = tty
        self.stdin = stdin
        self.stdin_once = True  # moby: an exec's stdin always closes with the client's
        self._conn = conn
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._on_exit = on_exit
        self._scanner = DetachScanner(detach_keys) if stdin else None
        conn.on_output = lambda kind, data: self._queue.put_nowait((kind, data))
        conn.on_control = self._control
        conn.closed.add_done_callback(lambda _f: self._queue.put_nowait(None))

    def _control(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "exit":
            # recorded before the stream ends: the CLI reads ExitCode right after
            self._on_exit(int(msg["code"]))
            self._queue.put_nowait(None)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                stream, data = item
                yield (1 if self.tty else stream), data
        finally:
            self._conn.close()

    async def write_stdin(self, data: bytes) -> None:
        if not self.stdin:
            return
        assert self._scanner is not None
        data, detach = self._scanner.feed(data)
        if data:
            await self._conn.write_stdin(data)
        if detach:
            await self.detach()

    async def close_stdin(self) -> None:
        self._conn.send({"op": "close-stdin"})

    async def detach(self) -> None:
        self._queue.put_nowait(None)
