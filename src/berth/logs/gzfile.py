"""Rotated log files compressed as moby does: gzip whose header's FEXTRA field holds the JSON
`{"lastTime":"<RFC3339Nano>"}` of the file's last entry, so a reader asked for `since` can skip the
whole file without inflating it (loggerutils/logfile.go, compressFile and compressedFileOpener)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from typing import Any

from berth.logs.jsonline import format_time, parse_time

CHUNK = 1 << 20


def _zlib() -> Any:
    # isal inflates/deflates several times faster than zlib; import it only when a file is compressed,
    # so the monitor (which may never rotate) does not carry it.
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency, zlib is the safety net
        import zlib

        return zlib


def compress_file(src: str, dst: str, last_time_ns: int, mode: int = 0o640) -> None:
    """Write `src` to `dst` as gzip with moby's header, then remove `src`. On failure `src` stays."""
    z = _zlib()
    extra = b'{"lastTime":"%s"}' % format_time(last_time_ns)
    # ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=255 (unknown), as Go's gzip.Writer writes it
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", len(extra)) + extra
    fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            comp = z.compressobj(1, z.DEFLATED, -15)  # raw deflate: the gzip framing is ours
            crc, size = 0, 0
            out = [header]
            while chunk := os.read(fd_in, CHUNK):
                crc = z.crc32(chunk, crc)
                size += len(chunk)
                out.append(comp.compress(chunk))
                _write_all(fd_out, b"".join(out))
                out = []
            out.append(comp.flush())
            out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
            _write_all(fd_out, b"".join(out))
        except BaseException:
            os.close(fd_out)
            _unlink(dst)
            raise
        os.close(fd_out)
    finally:
        os.close(fd_in)
    _unlink(src)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def last_time(fd: int) -> int | None:
    """The lastTime (ns) recorded in a compressed log's header, or None if it has none."""
    head = os.pread(fd, 12 + 256, 0)
    if len(head) < 12 or head[:2] != b"\x1f\x8b" or not head[3] & 0x04:
        return None
    (xlen,) = struct.unpack_from("<H", head, 10)
    extra = head[12:12 + xlen] if 12 + xlen <= len(head) else os.pread(fd, xlen, 12)
    try:
        return parse_time(json.loads(extra)["lastTime"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def isize(fd: int) -> int:
    """The uncompressed size (mod 2**32) a gzip file records in its last four bytes."""
    size = os.fstat(fd).st_size
    return struct.unpack("<I", os.pread(fd, 4, size - 4))[0] if size >= 18 else -1


def inflate(fd: int) -> Iterator[bytes]:
    """The uncompressed content of a gzip file (read with pread, so the fd's offset is untouched); a
    truncated or corrupt file gives what could be inflated."""
    z = _zlib()
    d = z.decompressobj(31)
    pos = 0
    while not d.eof:
        chunk = os.pread(fd, CHUNK, pos)
        if not chunk:
            break  # truncated: yield what there is
        pos += len(chunk)
        try:
            out = d.decompress(chunk)
        except z.error:
            return  # corrupt: as moby, keep what came before and go on with the next file
        if out:
            yield out
    tail = d.flush()
    if tail:
        yield tail
