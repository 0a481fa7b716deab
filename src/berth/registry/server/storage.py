"""The registry's storage: content-addressed blobs shared by all repositories, and per-repository links.

Layout under the root (why: distribution's proven shape, without its directory-per-blob overhead):

    blobs/<alg>/<hex[:2]>/<hex>                 blob and manifest bytes, exactly as received
    repos/<name>/_layers/<alg>/<hex>            empty file: the repository may serve this blob
    repos/<name>/_manifests/<alg>/<hex>         the manifest's media type: this revision is in the repository
    repos/<name>/_tags/<tag>                    the digest the tag points to
    repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>   descriptor (JSON) of a manifest whose subject is <alg>:<hex>
    _uploads/<uuid>/{data,repo}                 uploads in progress (same file system: completion is a rename)

- A repository sees a blob only through a link, so a digest known in one repository proves nothing
  about another (mounts check the source link), and deleting a blob from a repository is an unlink.
- Every write that publishes something is a rename of a fully written (and, for blobs, fsynced) file,
  so a crash or a dropped connection never leaves a half blob, half manifest or torn tag behind.
- Blob files are plain files named by digest: they can be hard-linked with berth's content store.
- A blob's mtime is refreshed whenever something starts to depend on it (upload, HEAD, mount, manifest
  put), which is what lets garbage collection run while serving (see gc.py).
Path components are safe by construction: names and tags are validated by the caller, digests are
parsed (`Digest.parse`) before they reach here."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

from berth.oci.digest import Digest


def atomic_write(path: str, data: bytes, *, sync: bool = False) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    tmp = f"{path}.tmp-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _touch(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)


class Storage:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.blobs_dir = os.path.join(self.root, "blobs")
        self.repos_dir = os.path.join(self.root, "repos")
        self.uploads_dir = os.path.join(self.root, "_uploads")
        for d in (self.blobs_dir, self.repos_dir, self.uploads_dir):
            os.makedirs(d, exist_ok=True)

    # -- blobs -------------------------------------------------------------------------------------

    def blob_path(self, d: Digest) -> str:
        return os.path.join(self.blobs_dir, d.algorithm, d.hex[:2], d.hex)

    def blob_size(self, d: Digest) -> int | None:
        try:
            return os.stat(self.blob_path(d)).st_size
        except FileNotFoundError:
            return None

    def touch_blob(self, d: Digest) -> None:
        """Mark the blob as just used, so a concurrent garbage collection keeps it."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.blob_path(d))

    def commit_blob(self, src: str, d: Digest) -> None:
        """Publish a fully written, verified file as blob `d` (rename; the source is consumed)."""
        dst = self.blob_path(d)
        if os.path.exists(dst):
            # Same digest, same bytes: keep the file readers may hold open; refresh it for gc.
            os.unlink(src)
            self.touch_blob(d)
            return
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.rename(src, dst)

    def adopt_file(self, src: str, d: Digest) -> bool:
        """Share an already verified file (e.g. berth's content store blob `d`) as blob `d`.

        A hard link when both sit on one file system (no copy, one inode: content-addressed files are
        never modified in place), else a copy published by rename. Returns True if linked."""
        dst = self.blob_path(d)
        if os.path.exists(dst):
            return False
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.tmp-{secrets.token_hex(4)}"
        try:
            os.link(src, tmp)
            linked = True
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)
            linked = False
        os.replace(tmp, dst)
        return linked

    def write_blob(self, data: bytes, d: Digest) -> None:
        """Store small content already verified in memory (manifests)."""
        dst = self.blob_path(d)
        if os.path.exists(dst):
            self.touch_blob(d)
            return
        atomic_write(dst, data, sync=True)

    def read_blob(self, d: Digest) -> bytes:
        with open(self.blob_path(d), "rb") as f:
            return f.read()

    def iter_blobs(self) -> Iterator[tuple[Digest, str]]:
        for alg in _listdir(self.blobs_dir):
            for pre in _listdir(os.path.join(self.blobs_dir, alg)):
                for hexd in _listdir(os.path.join(self.blobs_dir, alg, pre)):
                    if ".tmp-" in hexd:
                        continue
                    yield Digest(alg, hexd), os.path.join(self.blobs_dir, alg, pre, hexd)

    # -- repositories ------------------------------------------------------------------------------

    def repo_dir(self, name: str) -> str:
        return os.path.join(self.repos_dir, name)

    def repo_exists(self, name: str) -> bool:
        d = self.repo_dir(name)
        return any(os.path.isdir(os.path.join(d, sub)) for sub in ("_layers", "_manifests", "_tags"))

    def _layer_link(self, name: str, d: Digest) -> str:
        return os.path.join(self.repos_dir, name, "_layers", d.algorithm, d.hex)

    def blob_in_repo(self, name: str, d: Digest) -> int | None:
        """The blob's size if repository `name` may serve it, else None."""
        if not os.path.exists(self._layer_link(name, d)):
            return None
        return self.blob_size(d)

    def link_blob(self, name: str, d: Digest) -> None:
        _touch(self._layer_link(name, d))
        self.touch_blob(d)

    def unlink_blob(self, name: str, d: Digest) -> bool:
        try:
            os.unlink(self._layer_link(name, d))
        except FileNotFoundError:
            return False
        return True

    def repositories(self) -> list[str]:
        """Every repository name, in lexical order (the catalog)."""
        found: list[str] = []

        def walk(path: str, prefix: str) -> None:
            entries = _listdir(path)
            if any(e in ("_layers", "_manifests", "_tags") for e in entries):
                found.append(prefix)
            for e in entries:
                if not e.startswith("_") and os.path.isdir(os.path.join(path, e)):
                    walk(os.path.join(path, e), f"{prefix}/{e}" if prefix else e)

        walk(self.repos_dir, "")
        return sorted(found)

    def iter_layer_links(self) -> Iterator[tuple[str, Digest, str]]:
        for name in self.repositories():
            base = os.path.join(self.repos_dir, name, "_layers")
            for alg in _listdir(base):
                for hexd in _listdir(os.path.join(base, alg)):
                    yield name, Digest(alg, hexd), os.path.join(base, alg, hexd)

    # -- manifests and tags -----------------------------------------------------------------------

    def _revision(self, name: str, d: Digest) -> str:
        return os.path.join(self.repos_dir, name, "_manifests", d.algorithm, d.hex)

    def _tag_path(self, name: str, tag: str) -> str:
        return os.path.join(self.repos_dir, name, "_tags", tag)

    def put_manifest(self, name: str, data: bytes, d: Digest, media_type: str, tags: list[str],
                     subject: Digest | None, referrer_desc: dict[str, Any] | None) -> None:
        self.write_blob(data, d)
        atomic_write(self._revision(name, d), media_type.encode())
        if subject is not None and referrer_desc is not None:
            atomic_write(self._referrer_path(name, subject, d), json.dumps(referrer_desc).encode())
        for tag in tags:
            atomic_write(self._tag_path(name, tag), str(d).encode())

    def manifest_info(self, name: str, d: Digest) -> tuple[str, int] | None:
        """(media type, size) of a manifest revision in the repository, or None."""
        try:
            with open(self._revision(name, d), "rb") as f:
                media_type = f.read().decode()
        except FileNotFoundError:
            return None
        size = self.blob_size(d)
        if size is None:
            return None
        return media_type, size

    def resolve_tag(self, name: str, tag: str) -> Digest | None:
        try:
            with open(self._tag_path(name, tag), "rb") as f:
                return Digest.parse(f.read().decode())
        except FileNotFoundError:
            return None

    def tags(self, name: str) -> list[str]:
        return sorted(t for t in _listdir(os.path.join(self.repos_dir, name, "_tags")) if ".tmp-" not in t)

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            os.unlink(self._tag_path(name, tag))
        except FileNotFoundError:
            return False
        return True

    def delete_manifest(self, name: str, d: Digest) -> bool:
        """Remove a revision from the repository, with every tag pointing at it and its referrer entry."""
        rev = self._revision(name, d)
        if not os.path.exists(rev):
            return False
        subject = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            doc = json.loads(self.read_blob(d))
            if isinstance(doc.get("subject"), dict):
                subject = Digest.parse(doc["subject"]["digest"])
        for tag in self.tags(name):
            if self.resolve_tag(name, tag) == d:
                self.delete_tag(name, tag)
        if subject is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._referrer_path(name, subject, d))
        os.unlink(rev)
        return True

    def iter_manifests(self, name: str) -> Iterator[Digest]:
        base = os.path.join(self.repos_dir, name, "_manifests")
        for alg in _listdir(base):
            for hexd in _listdir(os.path.join(base, alg)):
                if ".tmp-" not in hexd:
                    yield Digest(alg, hexd)

    # -- referrers --------------------------------------------------------------------------------

    def _referrer_path(self, name: str, subject: Digest, d: Digest) -> str:
        return os.path.join(self.repos_dir, name, "_referrers", subject.algorithm, subject.hex,
                            f"{d.algorithm}-{d.hex}")

    def referrers(self, name: str, subject: Digest) -> list[dict[str, Any]]:
        base = os.path.join(self.repos_dir, name, "_referrers", subject.algorithm, subject.hex)
        out = []
        for entry in sorted(_listdir(base)):
            if ".tmp-" in entry:
                continue
            with contextlib.suppress(OSError, ValueError), open(os.path.join(base, entry), "rb") as f:
                out.append(json.loads(f.read()))
        return out

    # -- uploads ----------------------------------------------------------------------------------

    def new_upload_dir(self, name: str) -> tuple[str, str]:
        uuid = secrets.token_hex(16)
        path = os.path.join(self.uploads_dir, uuid)
        os.makedirs(path)
        atomic_write(os.path.join(path, "repo"), name.encode())
        return uuid, path

    def upload_dir(self, uuid: str) -> str:
        return os.path.join(self.uploads_dir, uuid)

    def upload_repo(self, uuid: str) -> str | None:
        try:
            with open(os.path.join(self.uploads_dir, uuid, "repo"), "rb") as f:
                return f.read().decode()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def remove_upload(self, uuid: str) -> None:
        path = os.path.join(self.uploads_dir, uuid)
        for entry in _listdir(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, entry))
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(path)

    def stale_uploads(self, older_than: float) -> list[str]:
        """Uploads untouched for `older_than` seconds (abandoned pushes)."""
        cutoff = time.time() - older_than
        out = []
        for uuid in _listdir(self.uploads_dir):
            path = os.path.join(self.uploads_dir, uuid)
            newest = 0.0
            for entry in _listdir(path):
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, os.stat(os.path.join(path, entry)).st_mtime)
            if newest < cutoff:
                out.append(uuid)
        return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
