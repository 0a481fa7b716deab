"""A layer blob read as a stream of plain tar bytes, verified while it flows.

A producer thread reads the blob, hashes the compressed bytes (the blob digest), decompresses and hashes
the plain bytes (the diff_id); the consumer (the tar reader and the extractor, which mostly wait on
system calls) gets chunks from a small queue. hashlib, isal and zstandard release the GIL on large
buffers, so on two cores the work really overlaps. `verify()` raises if either digest differs.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument
from berth.oci.compression import Decompressor, detect

_READ = 256 << 10
_DONE = b""


class DigestMismatch(InvalidArgument):
    pass


class VerifiedStream:
    """`read(n)` gives plain tar bytes (any length ≥ 1, b"" at the end); `verify()` after the end."""

    def __init__(self, raw: BinaryIO, *, compression: str | None = None, blob_digest: str | None = None,
                 diff_id: str | None = None, name: str = "layer", threaded: bool = True) -> None:
        self._raw = raw
        self._name = name
        self._want_blob = blob_digest
        self._want_diff = diff_id
        self._blob_h = hashlib.new(blob_digest.split(":", 1)[0]) if blob_digest else None
        self._diff_h = hashlib.new(diff_id.split(":", 1)[0]) if diff_id else hashlib.sha256()
        first = raw.read(_READ)
        self._first = first
        self.compression = detect(first) if compression is None else compression
        self._dec = Decompressor(self.compression)
        self.compressed_size = 0
        self.size = 0
        self._error: BaseException | None = None
        self._q: queue.Queue[bytes] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._produce, name=f"layer-{name[:20]}", daemon=True)
            self._thread.start()
        else:
            self._gen = self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        data = self._first
        self._first = b""
        while data:
            self.compressed_size += len(data)
            if self._blob_h is not None:
                self._blob_h.update(data)
            for plain in self._dec.feed(data):
                self.size += len(plain)
                self._diff_h.update(plain)
                yield plain
            data = self._raw.read(_READ)
        self._dec.finish()

    def _produce(self) -> None:
        try:
            for chunk in self._chunks():
                while not self._stop.is_set():
                    try:
                        self._q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._error = e
        self._q.put(_DONE)

    def read(self, n: int = -1) -> bytes:
        if self._finished:
            return b""
        if self._thread is None:
            try:
                return next(self._gen)
            except StopIteration:
                self._finished = True
                return b""
        chunk = self._q.get()
        if not chunk:
            self._finished = True
            if self._error is not None:
                raise self._error
        return chunk

    def close(self) -> None:
        """Stop the producer (after an error in the consumer) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._q.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()

    @property
    def diff_id(self) -> str:
        return f"{self._diff_h.name}:{self._diff_h.hexdigest()}"

    @property
    def blob_digest(self) -> str | None:
        return f"{self._blob_h.name}:{self._blob_h.hexdigest()}" if self._blob_h else None

    def verify(self) -> None:
        """Drain what is left, then check the digests (raises DigestMismatch)."""
        while self.read(_READ):
            pass
        if self._want_blob and self.blob_digest != self._want_blob:
            raise DigestMismatch(
                f"{self._name}: blob digest mismatch: expected {self._want_blob}, got {self.blob_digest}")
        if self._want_diff and self.diff_id != self._want_diff:
            raise DigestMismatch(
                f"{self._name}: layer diff_id mismatch: expected {self._want_diff}, got {self.diff_id}")
