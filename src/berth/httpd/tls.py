"""TLS for the server, done on memory BIOs so that a client's close_notify is a half-close.

asyncio's own SSL transport closes the whole connection when the peer sends close_notify
("returning true from eof_received() has no effect when using ssl"). The docker CLI sends exactly
that (Go's tls.Conn.CloseWrite) right after an attach or exec is hijacked, when it has no stdin,
and then reads the container's output: the connection must stay open for writing, as Go's server
keeps it. So the TLS record layer is driven here: `TLSProtocol` sits on the raw TCP transport and
presents a `TLSTransport` to the HTTP connection above it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

_READ = 65536


class TLSTransport(asyncio.Transport):
    """The transport the application protocol sees: plaintext in, plaintext out."""

    def __init__(self, owner: TLSProtocol) -> None:
        super().__init__()
        self._owner = owner

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._owner.write_plain(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for d in list_of_data:
            self.write(d)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections cannot half-close from this side")

    def close(self) -> None:
        self._owner.close()

    def abort(self) -> None:
        self._owner.abort()

    def is_closing(self) -> bool:
        return self._owner.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._owner.sslobj
        if name == "peercert":
            return self._owner.sslobj.getpeercert()
        return self._owner.raw.get_extra_info(name, default) if self._owner.raw else default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._owner.app = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.app

    def pause_reading(self) -> None:
        if self._owner.raw:
            self._owner.raw.pause_reading()

    def resume_reading(self) -> None:
        if self._owner.raw:
            self._owner.raw.resume_reading()

    def is_reading(self) -> bool:
        return bool(self._owner.raw and self._owner.raw.is_reading())

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._owner.raw:
            self._owner.raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._owner.raw.get_write_buffer_size() if self._owner.raw else 0


class TLSProtocol(asyncio.Protocol):
    """The raw TCP side: decrypts into the app protocol, encrypts what it writes."""

    def __init__(self, context: ssl.SSLContext, app_factory: Callable[[], asyncio.Protocol]) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.app = app_factory()
        self.raw: asyncio.Transport | None = None
        self.transport = TLSTransport(self)
        self.handshaken = False
        self.closing = False
        self.peer_closed = False
        self.pending: list[bytes] = []

    # -- raw side ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.incoming.write(data)
        if not self.handshaken:
            try:
                self.sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except (ssl.SSLError, OSError):
                self._flush()
                self.abort()
                return
            self.handshaken = True
            self._flush()
            self.app.connection_made(self.transport)
            for chunk in self.pending:
                self.write_plain(chunk)
            self.pending.clear()
        self._read_plain()

    def _read_plain(self) -> None:
        while not self.peer_closed:
            try:
                chunk = self.sslobj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                # close_notify: the client finished writing; we may still write (Go's CloseWrite)
                self.peer_closed = True
                self.app.eof_received()
                break
            except (ssl.SSLError, OSError):
                self.abort()
                return
            if not chunk:
                break
            self.app.data_received(chunk)
        self._flush()

    def eof_received(self) -> bool | None:
        if self.handshaken and not self.peer_closed:
            self.peer_closed = True
            self.app.eof_received()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.handshaken:
            self.app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.handshaken:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.handshaken:
            self.app.resume_writing()

    # -- application side ----------------------------------------------------------------------
    def write_plain(self, data: bytes) -> None:
        if self.closing or not data:
            return
        if not self.handshaken:
            self.pending.append(data)
            return
        view = memoryview(data)
        while view:
            n = self.sslobj.write(view)
            view = view[n:]
        self._flush()

    def _flush(self) -> None:
        out = self.outgoing.read()
        if out and self.raw is not None and not self.raw.is_closing():
            self.raw.write(out)

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self.handshaken:
            try:
                self.sslobj.unwrap()
            except (ssl.SSLError, OSError):
                pass
            self._flush()
        if self.raw is not None:
            self.raw.close()

    def abort(self) -> None:
        self.closing = True
        if self.raw is not None:
            self.raw.abort()
