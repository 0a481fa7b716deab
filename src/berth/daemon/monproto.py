"""The byte protocol between berthd and a container's monitor, over the monitor's unix socket.

Frames are `[kind:u8][length:u32be][payload]`. Kinds: 0 stdin (daemon → monitor), 1 stdout, 2 stderr
(monitor → daemon), 9 control (a JSON object either way). One connection per client: the daemon's
main connection to a container (start, attach I/O, resize, exit notice), and one per exec session.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator

STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 9
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
MAX_FRAME = 1 << 20


def frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


class FrameReader:
    """Incremental decoder: feed bytes as they arrive, get complete frames back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER_SIZE:
            kind, size = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise ValueError(f"monitor protocol: frame of {size} bytes")
            end = HEADER_SIZE + size
            if len(self._buf) < end:
                break
            out.append((kind, bytes(self._buf[HEADER_SIZE:end])))
            del self._buf[:end]
        return out


@contextlib.contextmanager
def short_path(path: str) -> Iterator[str]:
    """A unix socket path the kernel accepts (108 bytes at most): long paths are reached through an
    O_PATH fd of their directory, as /proc/self/fd/N/name."""
    if len(path.encode()) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)
