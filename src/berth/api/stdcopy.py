"""Docker's multiplexed stream framing ("stdcopy"), used by attach, exec and logs without a TTY.

Each frame is an 8-byte header `[stream, 0, 0, 0, size (big-endian uint32)]` and `size` bytes of
payload. Streams: 0 stdin (written as stdout), 1 stdout, 2 stderr, 3 "systemerr" (the docker CLI
turns its payload into an error). Readers must accept frames split anywhere across reads.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator

STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEMERR = 3

_HEADER = struct.Struct(">BxxxL")
HEADER_SIZE = _HEADER.size
_MAX = 0xFFFFFFFF


def frame(stream: int, data: bytes) -> bytes:
    """One frame (or several, for payloads past 4 GiB) carrying `data` on `stream`."""
    if len(data) <= _MAX:
        return _HEADER.pack(stream, len(data)) + data
    return b"".join(_HEADER.pack(stream, len(c)) + c for c in _chunks(data))


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), _MAX):
        yield data[i : i + _MAX]


class FrameReader:
    """Incremental parser: `feed` bytes as they arrive, get back the complete frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        while len(buf) - pos >= HEADER_SIZE:
            stream, size = _HEADER.unpack_from(buf, pos)
            end = pos + HEADER_SIZE + size
            if end > len(buf):
                break
            out.append((stream, bytes(buf[pos + HEADER_SIZE : end])))
            pos = end
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at EOF means a truncated stream)."""
        return len(self._buf)


def demux(data: bytes) -> tuple[bytes, bytes]:
    """(stdout, stderr) of a complete multiplexed byte string; stdin frames count as stdout."""
    r = FrameReader()
    frames = r.feed(data)
    if r.pending:
        raise ValueError(f"truncated frame: {r.pending} bytes left")
    out = b"".join(p for s, p in frames if s in (STDIN, STDOUT))
    err = b"".join(p for s, p in frames if s == STDERR)
    return out, err


async def read_frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Frames from an async byte stream; ValueError if it ends mid-frame."""
    r = FrameReader()
    async for chunk in chunks:
        for f in r.feed(chunk):
            yield f
    if r.pending:
        raise ValueError(f"truncated frame: {r.pending} bytes left")
