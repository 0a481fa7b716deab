"""The 8-byte frame demultiplexer for non-TTY attach, exec and logs streams.

Each frame is `[stream, 0, 0, 0, size (big-endian u32)]` then `size` bytes; frames may be split
anywhere across reads. Stream 0 (stdin echo) goes to stdout as docker's StdCopy does; stream 3 is an
error from the daemon and ends the copy."""

from __future__ import annotations

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER = 8


class StreamError(Exception):
    """An in-band daemon error (stream 3) or a corrupt frame header."""


class Demuxer:
    """Feed it raw bytes; it returns complete (stream, payload) frames and keeps partial ones."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER:
            stream = buf[pos]
            if stream > SYSTEMERR:
                raise StreamError(f"Unrecognized input header: {stream}")
            size = int.from_bytes(buf[pos + 4:pos + 8], "big")
            if n - pos - HEADER < size:
                break
            payload = bytes(buf[pos + HEADER:pos + HEADER + size])
            pos += HEADER + size
            if stream == SYSTEMERR:
                del buf[:pos]
                raise StreamError(f"error from daemon in stream: {payload.decode(errors='replace')}")
            if size:
                out.append((STDOUT if stream == STDIN else stream, payload))
        del buf[:pos]
        return out

    @property
    def partial(self) -> bool:
        """True if a frame was cut off (the stream ended mid-frame)."""
        return bool(self._buf)


def frame(stream: int, payload: bytes) -> bytes:
    """Encode one frame (tests and the daemon side use it)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload
