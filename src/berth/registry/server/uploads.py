"""Blob uploads: the state machine behind POST / PATCH / PUT / GET / DELETE on an upload location.

An upload is a file growing under `_uploads/<uuid>/data` plus a running hash. Chunks must arrive in
order (a chunk starting anywhere but the current offset is refused with 416, the upload untouched);
the final PUT names the digest, which is checked against the bytes received before the file is
renamed into the blob store. So a dropped connection, a wrong digest or a cancel never produce a
blob, and two clients pushing the same blob each finish their own upload and publish identical bytes
under one name (a rename, atomic). Uploads survive a server restart: the hash is recomputed from the
file when an unknown-to-memory upload is resumed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from berth.oci.digest import Digest
from berth.registry import errors as rerr
from berth.registry.server.storage import Storage

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_UUID = re.compile(r"^[a-f0-9]{32}$")
_CHUNK = 1 << 20


@dataclass
class Upload:
    uuid: str
    repo: str
    path: str
    offset: int
    algorithm: str
    hasher: hashlib._Hash
    started: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def range_header(self) -> str:
        # "0-0" for an empty upload, as distribution answers (docker's client expects it).
        return f"0-{max(self.offset - 1, 0)}"


def parse_content_range(value: str) -> tuple[int, int]:
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        raise rerr.RangeInvalid(f"invalid Content-Range: {value!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise rerr.RangeInvalid(f"invalid Content-Range: {value!r}")
    return start, end


class Uploads:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._live: dict[str, Upload] = {}

    def start(self, repo: str, algorithm: str = "sha256") -> Upload:
        if algorithm not in hashlib.algorithms_available or algorithm not in ("sha256", "sha512"):
            raise rerr.DigestInvalid(f"unsupported digest algorithm {algorithm!r}")
        uuid, d = self.storage.new_upload_dir(repo)
        path = os.path.join(d, "data")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        up = Upload(uuid, repo, path, 0, algorithm, hashlib.new(algorithm))
        self._live[uuid] = up
        return up

    def get(self, repo: str, uuid: str) -> Upload:
        up = self._live.get(uuid)
        if up is None:
            up = self._load(uuid)
        if up is None or up.repo != repo:
            raise rerr.BlobUploadUnknown(detail={"uuid": uuid} if _UUID.match(uuid) else None)
        return up

    def _load(self, uuid: str) -> Upload | None:
        """Resume an upload this process did not start (server restarted): rehash what is on disk."""
        if not _UUID.match(uuid):
            return None
        repo = self.storage.upload_repo(uuid)
        if repo is None:
            return None
        path = os.path.join(self.storage.upload_dir(uuid), "data")
        h = hashlib.sha256()
        size = 0
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return None
        up = Upload(uuid, repo, path, size, "sha256", h)
        self._live[uuid] = up
        return up

    async def write(self, up: Upload, body: AsyncIterator[bytes], content_range: str | None,
                    content_length: str | None = None) -> int:
        """Append a request body. With Content-Range, the chunk must start at the current offset
        (and agree with Content-Length); a refused chunk leaves the upload as it was."""
        start = None
        if content_range:
            start, end = parse_content_range(content_range)
            if content_length is not None and content_length.isdigit() and int(content_length) != end - start + 1:
                raise rerr.RangeInvalid(f"Content-Range {content_range!r} does not match Content-Length "
                                        f"{content_length}")
        async with up.lock:
            # checked under the lock: two PATCHes racing on one upload must not both start at one offset
            if start is not None and start != up.offset:
                raise rerr.RangeInvalid(
                    f"chunk starts at {start}, upload is at {up.offset}",
                    headers=[("Range", up.range_header), ("Docker-Upload-UUID", up.uuid)],
                )
            fd = os.open(up.path, os.O_WRONLY | os.O_APPEND)
            try:
                async for chunk in body:
                    if not chunk:
                        continue
                    view = memoryview(chunk)
                    while view:
                        n = os.write(fd, view)
                        up.hasher.update(view[:n])
                        up.offset += n
                        view = view[n:]
            finally:
                os.close(fd)
        return up.offset

    async def finish(self, up: Upload, digest: Digest) -> int:
        """Verify the received bytes against `digest` and publish them as a blob in the repository."""
        async with up.lock:
            if digest.algorithm == up.algorithm:
                got = up.hasher.hexdigest()
            else:
                got = await asyncio.to_thread(_hash_file, up.path, digest.algorithm)
            if got != digest.hex:
                self.cancel(up)
                raise rerr.DigestInvalid(detail={"digest": str(digest)})
            size = up.offset
            await asyncio.to_thread(_fsync, up.path)
            self.storage.commit_blob(up.path, digest)
            self.storage.link_blob(up.repo, digest)
            self._drop(up)
        return size

    def cancel(self, up: Upload) -> None:
        self._drop(up)

    def _drop(self, up: Upload) -> None:
        self._live.pop(up.uuid, None)
        self.storage.remove_upload(up.uuid)

    def purge(self, older_than: float) -> int:
        """Forget abandoned uploads (no write for `older_than` seconds); returns how many."""
        n = 0
        for uuid in self.storage.stale_uploads(older_than):
            up = self._live.get(uuid)
            if up is not None and up.lock.locked():
                continue
            self._live.pop(uuid, None)
            self.storage.remove_upload(uuid)
            n += 1
        return n


def _hash_file(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: str) -> None:
    # data only: the rename that publishes the blob is what makes it visible, and a crash before
    # the data is on disk must never leave a digest-named file with other bytes
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
