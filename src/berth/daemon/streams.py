"""Bridges between the store's synchronous file-object APIs and the API's async byte streams."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import IO, Any


class _QueueWriter:
    """A file-like writer that hands chunks to an asyncio queue from a worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, q: asyncio.Queue[bytes | BaseException | None]) -> None:
        self.loop = loop
        self.q = q
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise BrokenPipeError("the client went away")
        fut = asyncio.run_coroutine_threadsafe(self.q.put(bytes(data)), self.loop)
        fut.result()
        return len(data)

    def flush(self) -> None:
        pass


async def stream_from_writer(fn: Callable[[IO[bytes]], Any], maxsize: int = 16) -> AsyncIterator[bytes]:
    """Run `fn(fileobj)` in a thread and yield what it writes, with back-pressure."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize)
    w = _QueueWriter(loop, q)

    def work() -> None:
        try:
            fn(w)  # type: ignore[arg-type]
            asyncio.run_coroutine_threadsafe(q.put(None), loop).result()
        except BaseException as e:
            if not w.closed:
                asyncio.run_coroutine_threadsafe(q.put(e), loop).result()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = await q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        w.closed = True
        while not q.empty():
            q.get_nowait()


async def iterate_in_thread(it: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A blocking iterator of chunks, consumed from a thread one chunk at a time."""
    sentinel = object()
    while True:
        chunk = await asyncio.to_thread(next, it, sentinel)
        if chunk is sentinel:
            return
        yield chunk  # type: ignore[misc]


def reader_from_async(data: AsyncIterator[bytes]) -> tuple[IO[bytes], Callable[[], Any]]:
    """A blocking file object fed from an async byte stream: (reader, coroutine function to run the feed).
    The reader sees EOF when the stream ends."""
    r, w = os.pipe()
    reader = os.fdopen(r, "rb")

    async def feed() -> None:
        try:
            async for chunk in data:
                view = memoryview(chunk)
                while view:
                    n = await asyncio.to_thread(os.write, w, view)
                    view = view[n:]
        finally:
            os.close(w)

    return reader, feed
