"""The content store: blobs addressed by digest, under `<root>/blobs/<alg>/<hex>`.

A blob becomes visible only complete and verified: it is written to `<root>/ingest/<key>/data`, hashed
while written, checked against the expected digest and size, fsynced, then renamed into place (and the
directory fsynced). A crash or a bad digest leaves at most an ingest file, never a half blob.
Ingests named by a `ref` survive for resumption (the registry client's downloads); anonymous ones are
removed on failure and at start-up. sha256 is what berth writes; sha512 blobs are accepted and read.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument, NotFound
from berth.oci.digest import Digest

_CHUNK = 1 << 20


class DigestMismatchError(InvalidArgument):
    pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Writes one blob; `commit()` verifies and publishes it, `abort()` throws it away.

    With a `ref` the partial data is kept across failures: `offset` says how much is already there
    (its hash state is rebuilt by re-reading it), so a download can resume with a Range request."""

    def __init__(self, store: ContentStore, expected: str | None, size: int | None, ref: str | None) -> None:
        self._store = store
        self.expected = Digest.parse(expected) if expected else None
        self.size = size
        self.ref = ref
        algo = self.expected.algorithm if self.expected else "sha256"
        self._h = hashlib.new(algo)
        key = hashlib.sha256(ref.encode()).hexdigest() if ref else "anon-" + secrets.token_hex(12)
        self._dir = os.path.join(store.root, "ingest", key)
        os.makedirs(self._dir, exist_ok=True)
        self._path = os.path.join(self._dir, "data")
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.offset = 0
        if ref:
            with open(os.path.join(self._dir, "ref"), "w") as f:
                f.write(ref)
            while chunk := os.read(self._fd, _CHUNK):
                self._h.update(chunk)
                self.offset += len(chunk)
        else:
            os.ftruncate(self._fd, 0)
        self._closed = False

    def write(self, data: bytes | memoryview) -> None:
        if self.size is not None and self.offset + len(data) > self.size:
            self.abort(keep=False)
            raise DigestMismatchError(f"blob is larger than the expected {self.size} bytes")
        self._h.update(data)
        mv = memoryview(data)
        while mv:
            n = os.write(self._fd, mv)
            mv = mv[n:]
        self.offset += len(data)

    def copy_from(self, f: BinaryIO) -> None:
        while chunk := f.read(_CHUNK):
            self.write(chunk)

    @property
    def digest(self) -> str:
        return f"{self._h.name}:{self._h.hexdigest()}"

    def commit(self) -> str:
        """Verify size and digest, fsync and publish; returns the digest. Raises DigestMismatchError."""
        got = self.digest
        if self.size is not None and self.offset != self.size:
            self.abort(keep=False)
            raise DigestMismatchError(f"blob size mismatch: expected {self.size} bytes, got {self.offset}")
        if self.expected is not None and got != str(self.expected):
            self.abort(keep=False)
            raise DigestMismatchError(f"blob digest mismatch: expected {self.expected}, got {got}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._closed = True
        d = Digest.parse(got)
        final = self._store.path(str(d))
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if os.path.exists(final):
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            os.rename(self._path, final)
            _fsync_dir(os.path.dirname(final))
            shutil.rmtree(self._dir, ignore_errors=True)
        return got

    def abort(self, keep: bool | None = None) -> None:
        """Close; drop the partial data unless this is a resumable (ref'd) ingest and keep isn't False."""
        if not self._closed:
            os.close(self._fd)
            self._closed = True
        if keep is False or (keep is None and not self.ref):
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self._closed:
            self.abort()


class ContentStore:
    """Blobs by digest. Thread-safe: every write goes through its own ingest file and an atomic rename."""

    def __init__(self, root: str) -> None:
        self.root = root
        for d in ("blobs/sha256", "blobs/sha512", "ingest"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        self._lock = threading.Lock()
        self._clean_anonymous_ingests()

    def _clean_anonymous_ingests(self) -> None:
        ingest = os.path.join(self.root, "ingest")
        for name in os.listdir(ingest):
            if name.startswith("anon-"):
                shutil.rmtree(os.path.join(ingest, name), ignore_errors=True)

    def path(self, digest: str) -> str:
        d = Digest.parse(digest)
        return os.path.join(self.root, "blobs", d.algorithm, d.hex)

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: str, limit: int = 64 << 20) -> bytes:
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"blob {digest} is larger than {limit} bytes")
        return data

    def writer(self, expected: str | None = None, size: int | None = None, ref: str | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size, ref)

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store bytes; returns their digest (verifying `expected` when given)."""
        if expected is None:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if self.has(digest):
                return digest
        elif self.has(expected):
            got = f"{expected.split(':')[0]}:{hashlib.new(expected.split(':')[0], data).hexdigest()}"
            if got != expected:
                raise DigestMismatchError(f"blob digest mismatch: expected {expected}, got {got}")
            return expected
        with self.writer(expected, len(data)) as w:
            w.write(data)
            return w.commit()

    def ingest(self, f: BinaryIO, expected: str | None = None, size: int | None = None) -> str:
        """Copy a stream into the store, verifying as it goes; returns the digest."""
        with self.writer(expected, size) as w:
            w.copy_from(f)
            return w.commit()

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def walk(self) -> Iterator[tuple[str, int]]:
        """(digest, size) of every blob."""
        for algo in ("sha256", "sha512"):
            base = os.path.join(self.root, "blobs", algo)
            with os.scandir(base) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        yield f"{algo}:{e.name}", e.stat(follow_symlinks=False).st_size

    def ingests(self) -> list[tuple[str, int, float]]:
        """(ref, bytes so far, mtime) of resumable ingests."""
        out = []
        base = os.path.join(self.root, "ingest")
        for name in os.listdir(base):
            try:
                with open(os.path.join(base, name, "ref")) as f:
                    ref = f.read()
                st = os.stat(os.path.join(base, name, "data"))
                out.append((ref, st.st_size, st.st_mtime))
            except OSError:
                continue
        return out

    def abort_ingest(self, ref: str) -> None:
        shutil.rmtree(os.path.join(self.root, "ingest", hashlib.sha256(ref.encode()).hexdigest()),
                      ignore_errors=True)

    def prune_ingests(self, older_than: float) -> int:
        n = 0
        for ref, _, mtime in self.ingests():
            if mtime < time.time() - older_than:
                self.abort_ingest(ref)
                n += 1
        return n
