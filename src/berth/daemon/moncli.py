"""berthd's side of a monitor connection (asyncio): send control messages and stdin, receive
output frames and control replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from berth import fastjson
from berth.daemon.monproto import CONTROL, STDIN, FrameReader, frame, short_path

OutputHandler = Callable[[int, bytes], None]
ControlHandler = Callable[[dict[str, Any]], None]


class MonitorConnection:
    """One connection to a monitor. Output frames go to `on_output`, control messages that are not
    replies to `request` go to `on_control`; `closed` resolves when the connection ends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.on_output: OutputHandler = lambda kind, data: None
        self.on_control: ControlHandler = lambda msg: None
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, path: str, timeout: float = 5.0) -> MonitorConnection:
        with short_path(path) as p:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(p, limit=1 << 20), timeout)
        return cls(reader, writer)

    async def _read(self) -> None:
        fr = FrameReader()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for kind, payload in fr.feed(data):
                    if kind == CONTROL:
                        msg: dict[str, Any] = fastjson.loads(payload)  # type: ignore[assignment]
                        if self._waiting and msg.get("type") in ("started", "error", "state"):
                            self._waiting -= 1
                            self._replies.put_nowait(msg)
                        else:
                            self.on_control(msg)
                    else:
                        self.on_output(kind, payload)
        except (ConnectionError, ValueError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            while self._waiting:
                self._waiting -= 1
                self._replies.put_nowait({"type": "error", "message": "the container's monitor went away"})

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(CONTROL, fastjson.dumps(msg, compact=True).encode()))

    async def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send a control message and wait for its reply (started, error or state)."""
        if self.closed.done():
            return {"type": "error", "message": "the container's monitor went away"}
        self._waiting += 1
        self.send(msg)
        return await asyncio.wait_for(self._replies.get(), timeout)

    async def write_stdin(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(STDIN, data))
            await self.writer.drain()

    def close(self) -> None:
        self.writer.close()
        self._task.cancel()
