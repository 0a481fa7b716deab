"""Response shapes the Engine API repeats: errors, 204s, primed streams, deferred JSON (wait)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from berth.errors import BerthError
from berth.httpd import Request, Response, dumps, json_response, stream_response
from berth.httpd.errors import MethodNotAllowed

log = logging.getLogger("berth.api")

T = TypeVar("T")
_END: Any = object()


def error_response(request: Request, err: BerthError) -> Response:
    """moby's error: `{"message": ...}` as `application/json` exactly (the CLI prints other
    types raw), 304 without a body. A wrong method is "page not found", as moby's mux answers."""
    if isinstance(err, MethodNotAllowed):
        return json_response({"message": "page not found"}, status=404)
    if err.status == 304:
        return Response(304, [], None)
    if err.status >= 500:
        log.error("%s %s: %s", request.method, request.target, err)
    return json_response({"message": str(err)}, status=err.status)


def no_content() -> Response:
    return Response(204, [], b"")


def ok_empty() -> Response:
    """moby handlers that write nothing answer 200 with an empty body (resize, exec -d)."""
    return Response(200, [], b"")


async def prime(it: AsyncIterator[T]) -> AsyncIterator[T]:
    """Await the first item now, so an error before it raises here (a real HTTP status), and
    return an iterator over all items. A stream that ends at once gives an empty iterator."""
    it = aiter(it)
    try:
        first = await anext(it, _END)
    except BaseException:
        await _aclose(it)
        raise
    return _chain(first, it)


async def _chain(first: T, it: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        if first is _END:
            return
        yield first
        async for item in it:
            yield item
    finally:
        await _aclose(it)


async def primed_stream(it: AsyncIterator[bytes], content_type: str, headers: list[tuple[str, str]] | None = None
                        ) -> Response:
    resp = stream_response(await prime(it), content_type)
    if headers:
        resp.headers.extend(headers)
    return resp


def deferred_json(result: Awaitable[T], encode: Callable[[T], Any]) -> Response:
    """200 + headers now, the JSON body when `result` resolves (moby's wait since API 1.30).

    The headers are flushed before `result` is awaited: `docker run` blocks until it sees them
    before it starts the container. A client that hangs up cancels `result` (it must be this
    waiter's own awaitable), which is how the backend learns to drop the waiter.
    """
    return stream_response(_Deferred(result, encode), "application/json")


class _Deferred:
    __slots__ = ("_done", "_encode", "_fut")

    def __init__(self, result: Awaitable[Any], encode: Callable[[Any], Any]) -> None:
        self._fut = asyncio.ensure_future(result)
        self._encode = encode
        self._done = False

    def __aiter__(self) -> _Deferred:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        self._done = True
        return dumps(self._encode(await self._fut))

    async def aclose(self) -> None:
        self._done = True
        if not self._fut.done():
            self._fut.cancel()


def json_lines(it: AsyncIterator[Any]) -> Response:
    """Newline-delimited JSON objects, flushed one by one (events, stats)."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for obj in it:
                yield dumps(obj)
        finally:
            await _aclose(it)

    return stream_response(body(), "application/json")


async def _aclose(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()
