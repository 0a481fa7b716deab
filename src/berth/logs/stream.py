"""berthd's log reader: `GET /containers/{id}/logs` and attach's `logs=1` replay, as an async iterator.

The file work (open, tail scan, inflate, JSON decoding) runs in worker threads a batch at a time, so the
event loop never blocks on it. Following waits on inotify (watch.py) for the writer's appends and
rotations, and checks `is_running()` on a short tick that backs off while nothing happens: an exit ends
the stream within ~50 ms when the log saw activity just before (the monitor closes the log as the
container exits), within 0.5 s at worst."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from berth.logs.reader import Entry, LogReader
from berth.logs.watch import DirWatch

T = TypeVar("T")

TICK_MIN = 0.02
TICK_MAX = 0.5


def read_logs(path: str, *, stdout: bool = True, stderr: bool = True, since: float | None = None,
              until: float | None = None, tail: int | None = None, follow: bool = False,
              is_running: Callable[[], bool] | None = None) -> AsyncIterator[Entry]:
    """(stream 1|2, data, time_ns) for each log entry in order, across rotated and compressed files.

    `since`/`until` are seconds since the epoch; `tail` counts entries from the end (None or < 0: all).
    With `follow`, goes on yielding what the writer appends until `is_running()` is false and the file is
    drained, or until `until` has passed; with `is_running` None it follows until cancelled.
    Bad arguments raise here, before any iteration (so before a response's headers go out)."""
    reader = LogReader(path, stdout=stdout, stderr=stderr, since=since, until=until, tail=tail)
    return _entries(reader, path, until, follow, is_running)


async def _entries(reader: LogReader, path: str, until: float | None, follow: bool,
                   is_running: Callable[[], bool] | None) -> AsyncIterator[Entry]:
    loop = asyncio.get_running_loop()
    watch: DirWatch | None = None
    try:
        while batch := await _in_thread(loop, reader.snapshot):
            for e in batch:
                yield e
        if not follow or reader.done:
            return
        watch = DirWatch(os.path.dirname(path) or ".")
        until_t = None if until is None else float(until)
        tick = TICK_MIN
        while True:
            # Ask before reading: if the writer was done then, the read below drains all it wrote.
            running = is_running is None or is_running()
            expired = until_t is not None and time.time() > until_t
            batch = await _in_thread(loop, reader.poll)
            for e in batch:
                yield e
            if reader.done:
                return
            if batch:
                tick = TICK_MIN
                continue
            if not running or expired:
                return
            timeout = tick if until_t is None else max(0.0, min(tick, until_t - time.time()))
            tick = TICK_MIN if await watch.wait(timeout) else min(tick * 2, TICK_MAX)
    finally:
        if watch is not None:
            watch.close()
        # Close in a worker: a read of this reader may still be running there (if we were cancelled),
        # and close() waits for it instead of closing its fds under it.
        try:
            loop.run_in_executor(None, reader.close)
        except RuntimeError:  # the loop is going away
            reader.close()


async def _in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> T:
    return await loop.run_in_executor(None, fn)
