"""Compression of layer streams: detection by magic bytes, decompressing readers, compressing writers.

gzip goes through isal (several times the stdlib's speed, see notes/style.md B6) with a stdlib fallback;
zstd through `zstandard`. Detection is by content, not by name or media type, as `docker load` does.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

import zstandard

from berth.errors import InvalidArgument

try:
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal ships wheels for this platform
    import gzip as _gzip  # type: ignore[no-redef]
    _zlib = zlib  # type: ignore[misc]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


def detect(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or '' (plain) from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return ""


class Decompressor:
    """Incremental decompression of one stream (feed compressed chunks, get plain chunks).

    Used by the layer pipeline, which hashes the compressed and the plain bytes itself."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._d: Any = None
        if kind == "gzip":
            self._d = _zlib.decompressobj(16 + _zlib.MAX_WBITS)
        elif kind == "zstd":
            self._d = zstandard.ZstdDecompressor().decompressobj()
        elif kind == "bzip2":
            import bz2

            self._d = bz2.BZ2Decompressor()
        elif kind == "xz":
            import lzma

            self._d = lzma.LZMADecompressor()
        elif kind != "":
            raise InvalidArgument(f"unsupported compression: {kind}")

    def feed(self, data: bytes, max_out: int = 1 << 20) -> Iterator[bytes]:
        """Plain chunks for `data`, each at most about `max_out` bytes (a zip bomb can't fill memory)."""
        if self._d is None:
            if data:
                yield data
            return
        if self.kind == "gzip":
            yield from self._feed_gzip(data, max_out)
        elif self.kind == "zstd":
            yield from self._feed_zstd(data, max_out)
        else:
            while data or not self._d.needs_input:
                out = self._d.decompress(data, max_out)
                data = b""
                if out:
                    yield bytes(out)
                if self._d.eof or (not out and self._d.needs_input):
                    break

    def _feed_gzip(self, data: bytes, max_out: int) -> Iterator[bytes]:
        # A gzip file may hold several members (pigz, concatenation): restart after each one.
        while data:
            out = self._d.decompress(data, max_out)
            if out:
                yield out
            data = self._d.unconsumed_tail
            if self._d.eof:
                rest = self._d.unused_data
                if not rest:
                    break
                self._d = _zlib.decompressobj(16 + _zlib.MAX_WBITS)
                data = rest

    def _feed_zstd(self, data: bytes, max_out: int) -> Iterator[bytes]:
        # zstandard's decompressobj has no output bound: feed it slices so each output stays small.
        step = 1 << 14
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            while piece:
                out = self._d.decompress(piece)
                if out:
                    yield out
                piece = b""
                if self._d.eof and self._d.unused_data:
                    piece = self._d.unused_data
                    self._d = zstandard.ZstdDecompressor().decompressobj()

    def finish(self) -> None:
        """Raise if the compressed stream ended early (a truncated blob)."""
        if self._d is None:
            return
        if self.kind in ("gzip", "bzip2", "xz") and not self._d.eof:
            raise InvalidArgument(f"unexpected EOF in {self.kind} stream")
        if self.kind == "zstd" and not self._d.eof:
            raise InvalidArgument("unexpected EOF in zstd stream")


def open_reader(raw: BinaryIO) -> tuple[str, IO[bytes]]:
    """Wrap `raw` in a decompressing reader chosen by its magic; returns (kind, reader)."""
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    kind = detect(buffered.peek(8)[:8])
    if kind == "gzip":
        return kind, _gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        return kind, zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    if kind == "bzip2":
        import bz2

        return kind, bz2.BZ2File(buffered)
    if kind == "xz":
        import lzma

        return kind, lzma.LZMAFile(buffered)
    return kind, buffered


class Compressor:
    """Incremental compression: feed plain chunks, get compressed chunks; `flush()` ends the stream."""

    def __init__(self, kind: str, level: int | None = None) -> None:
        self.kind = kind
        self._c: Any = None
        if kind == "gzip":
            self._c = _zlib.compressobj(1 if level is None else level, _zlib.DEFLATED, 16 + _zlib.MAX_WBITS)
        elif kind == "zstd":
            self._c = zstandard.ZstdCompressor(level=3 if level is None else level).compressobj()
        elif kind != "":
            raise InvalidArgument(f"unsupported compression: {kind}")

    def feed(self, data: bytes) -> bytes:
        return data if self._c is None else bytes(self._c.compress(data))

    def flush(self) -> bytes:
        return b"" if self._c is None else bytes(self._c.flush())
