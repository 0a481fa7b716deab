"""One HTTP request as a handler sees it: parsed head, lazily parsed query, body on demand, hijack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

import h11

from berth.errors import InvalidArgument
from berth.httpd.errors import PayloadTooLarge
from berth.httpd.headers import Headers

if TYPE_CHECKING:
    from berth.httpd.connection import Connection

_FALSE = frozenset(("", "0", "no", "false", "none"))
DEFAULT_BODY_LIMIT = 32 << 20


class Request:
    """A request being served.

    The body is not read until a handler asks for it (`body`, `json`, `stream`), so a handler can
    refuse a request before a large upload is transferred, and `Expect: 100-continue` is answered
    only when the body is really wanted.
    """

    __slots__ = (
        "_body",
        "_conn",
        "_hijacked",
        "_query",
        "_reading",
        "api_version",
        "headers",
        "method",
        "params",
        "path",
        "peer",
        "target",
    )

    def __init__(self, conn: Connection, event: h11.Request, peer: object) -> None:
        self._conn = conn
        self.method: str = event.method.decode("ascii")
        self.target: str = event.target.decode("latin-1")
        raw_path, _, _ = self.target.partition("?")
        self.path: str = unquote(raw_path) if "%" in raw_path else raw_path
        self.headers = Headers._from_h11(event.headers)
        self.params: dict[str, str] = {}
        self.peer = peer  # (host, port) for TCP, ("unix", pid, uid, gid) for a unix socket
        # Set by an application that strips a version prefix (the Engine API's "/v1.44").
        self.api_version: str = ""
        self._query: dict[str, list[str]] | None = None
        self._body: bytes | None = None
        self._reading = False
        self._hijacked = False

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"

    # -- query ---------------------------------------------------------------------------------

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            _, _, qs = self.target.partition("?")
            self._query = parse_qs(qs, keep_blank_values=True) if qs else {}
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter (as Go's `FormValue`), or `default` if absent."""
        values = self.query.get(name)
        return values[0] if values else default

    def bool_arg(self, name: str, default: bool = False) -> bool:
        """Docker's boolean rule (moby httputils.BoolValue): "", 0, no, false, none are false,
        anything else true; an absent parameter is `default`."""
        values = self.query.get(name)
        if not values:
            return default
        return values[0].strip().lower() not in _FALSE

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter; an empty value counts as absent (as moby's strconv uses)."""
        v = self.arg(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidArgument(f'invalid value for {name}: strconv.Atoi: parsing "{v}": invalid syntax')

    # -- body ----------------------------------------------------------------------------------

    async def body(self, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
        """The whole request body (Content-Length or chunked); PayloadTooLarge beyond `limit`."""
        if self._body is not None:
            return self._body
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            parts.append(chunk)
        self._body = b"".join(parts)
        return self._body

    async def json(self, limit: int = DEFAULT_BODY_LIMIT) -> object:
        """The body parsed as JSON; None for an empty body; InvalidArgument if it is not JSON."""
        data = await self.body(limit)
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"invalid JSON: {e}")

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk (chunked request bodies included)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._reading:
            raise RuntimeError("request body is already being read")
        self._reading = True
        conn = self._conn
        conn.send_100_continue()
        while True:
            try:
                ev = await conn.next_event()
            except h11.RemoteProtocolError as e:
                raise InvalidArgument(f"bad request body: {e}")
            if type(ev) is h11.Data:
                yield bytes(ev.data)
            elif type(ev) is h11.EndOfMessage:
                self._body = b""  # consumed: later calls see an empty body, not a hang
                return
            else:
                raise InvalidArgument("unexpected end of request body")

    # -- hijack --------------------------------------------------------------------------------

    async def hijack(
        self,
        status: int = 101,
        headers: list[tuple[str, str]] | None = None,
        reason: str | None = None,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Take over the raw connection (Docker's attach and exec start).

        Reads the rest of the request body (still available from `body()`), writes the status line
        and `headers` itself (101 is sent as "101 UPGRADED", moby's wording, unless `reason` says
        otherwise; the default headers are `Connection: Upgrade` and `Upgrade: tcp`), and returns
        a reader and writer on the socket.
        Bytes the client sent past the request are replayed first. The reader sees EOF when the
        client half-closes (SHUT_WR) while the writer keeps working: only both directions closing
        is a disconnect. The server closes the connection when the handler returns, so the
        handler owns it for the duration of its call; its returned Response is ignored.
        """
        if self._hijacked:
            raise RuntimeError("request already hijacked")
        if self._body is None:
            await self.body()
        if headers is None:
            headers = [("Connection", "Upgrade"), ("Upgrade", "tcp")] if status == 101 else []
        if reason is None:
            reason = "UPGRADED" if status == 101 else _reason(status)
        head = [f"HTTP/1.1 {status} {reason}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers)
        head.append("\r\n")
        self._hijacked = True
        return self._conn.hijack("".join(head).encode("latin-1"))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
