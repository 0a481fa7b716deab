"""Responses as plain data, and the helpers handlers build them with."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterable


class FileBody:
    """`length` bytes of an open file from `offset`, sent with Content-Length.

    They are read and written in pieces, without holding the file in memory (see connection's
    _FILE_CHUNK on why not sendfile). The response owns `fd`: it is closed once sent or dropped.
    """

    __slots__ = ("fd", "length", "offset")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd, self.offset, self.length = fd, offset, length

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


Body = bytes | AsyncIterator[bytes] | FileBody | None


class Response:
    """What a handler returns.

    A `bytes` body, or a `FileBody`, is sent with Content-Length. An async-iterator body is sent
    with Transfer-Encoding: chunked (as is, if the handler set Content-Length), one chunk per item,
    each written to the socket as soon as it is yielded (Docker clients rely on that for progress
    streams and for `wait`, whose headers must arrive before its body). If the client goes away
    mid-stream the iterator is closed (`aclose`), so a generator's `finally` runs.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int = 200, headers: Iterable[tuple[str, str]] = (), body: Body = None) -> None:
        self.status = status
        self.headers: list[tuple[str, str]] = list(headers)
        self.body = body

    def __repr__(self) -> str:
        kind = type(self.body).__name__
        return f"Response({self.status}, {self.headers!r}, <{kind}>)"


def dumps(obj: object) -> bytes:
    """JSON as Go's encoder writes it: compact, UTF-8, one trailing newline."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def json_response(obj: object, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("Content-Type", "application/json"), *headers], dumps(obj))


def stream_response(it: AsyncIterator[bytes], content_type: str, status: int = 200) -> Response:
    return Response(status, [("Content-Type", content_type)], it)


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, [("Content-Type", content_type)], text.encode())


def empty_response(status: int = 204, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, headers, b"")
