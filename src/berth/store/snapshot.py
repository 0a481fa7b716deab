"""Snapshotters: the file trees of layers (committed, keyed by chain ID) and of containers (active,
writable, keyed by container ID), each on top of a parent committed snapshot.

- `OverlaySnapshotter`: each snapshot is one directory (`<root>/<n>/fs`); a layer is applied into an
  empty dir with overlay whiteouts, and a container's rootfs is an overlay mount of its chain's dirs
  plus its own upper and work dirs. Lower dirs are named through short links `<root>/l/<10 chars>`
  (Docker's `l/` trick) so that mount options of many layers fit in a page.
- `CopySnapshotter`: the fallback for file systems that can't host overlay: each snapshot is a full
  copy of its parent (`cp -a --reflink=auto`) with the layer applied in "flat" mode; a container's
  rootfs is a bind mount.

`new(root)` probes overlay once (a real mount in a scratch dir) and picks one.

Crash safety: a snapshot is built in `<root>/tmp-*`, synced (syncfs) and renamed into place before its
row is committed to `<root>/snapshots.db` (sqlite, WAL). At start-up, `tmp-*` dirs, dirs without a row,
rows without a dir and dangling links are removed, so a crash at any point leaves no half snapshot.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.store.mount import Mount
from berth.store.mount import mount as do_mount
from berth.store.mount import unmount as do_unmount

Kind = Literal["committed", "active"]
ApplyFn = Callable[[str, str], int]  # (target dir, "overlay"|"flat") -> content bytes written
_LINK_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_libc = ctypes.CDLL(None, use_errno=True)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots(
  key TEXT PRIMARY KEY, dir TEXT NOT NULL UNIQUE, parent TEXT, kind TEXT NOT NULL,
  link TEXT UNIQUE, size INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, labels TEXT);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""


@dataclass(frozen=True)
class Info:
    key: str
    parent: str | None
    kind: Kind
    size: int
    created: float
    path: str  # the snapshot's own dir (diff/upper dir for overlay, the full tree for copy)


class Snapshotter(Protocol):
    """What image and container code needs from a snapshotter (both implementations conform)."""

    name: str
    root: str

    def exists(self, key: str) -> bool: ...
    def stat(self, key: str) -> Info: ...
    def all(self) -> list[Info]: ...
    def apply(self, key: str, parent: str | None, fn: ApplyFn) -> Info: ...
    def prepare(self, key: str, parent: str | None) -> list[Mount]: ...
    def mounts(self, key: str) -> list[Mount]: ...
    def view(self, key: str) -> list[Mount]: ...
    def chain(self, key: str) -> list[str]: ...
    def remove(self, key: str) -> None: ...
    def usage(self, key: str) -> int: ...
    def upper(self, key: str) -> str: ...
    def lower_dirs(self, key: str) -> list[str]: ...


def syncfs(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _libc.syncfs(fd)
    finally:
        os.close(fd)


def dir_usage(path: str) -> int:
    """Bytes used by regular files under `path` (hard links counted once), as `du` would count content."""
    total, seen = 0, set()
    for top, _dirs, files in os.walk(path):
        for n in files:
            try:
                st = os.lstat(os.path.join(top, n))
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


class _Base:
    name = "base"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(os.path.join(root, "l"), exist_ok=True)
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._db = sqlite3.connect(os.path.join(root, "snapshots.db"), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._recover()

    # -- metadata -------------------------------------------------------------------------------------
    def _row(self, key: str) -> tuple[str, str | None, str, str | None, int, float] | None:
        with self._lock:
            r: tuple[str, str | None, str, str | None, int, float] | None = self._db.execute(
                "SELECT dir, parent, kind, link, size, created FROM snapshots WHERE key=?", (key,)).fetchone()
        return r

    def _info(self, key: str) -> Info:
        r = self._row(key)
        if r is None:
            raise NotFound(f"snapshot {key} does not exist")
        return Info(key, r[1], r[2], r[4], r[5], os.path.join(self.root, r[0], "fs"))  # type: ignore[arg-type]

    def exists(self, key: str) -> bool:
        return self._row(key) is not None

    def stat(self, key: str) -> Info:
        return self._info(key)

    def all(self) -> list[Info]:
        with self._lock:
            rows = self._db.execute("SELECT key, dir, parent, kind, size, created FROM snapshots").fetchall()
        return [Info(k, p, kd, s, c, os.path.join(self.root, d, "fs")) for k, d, p, kd, s, c in rows]

    def chain(self, key: str) -> list[str]:
        """Keys from `key` down to its base layer (top first)."""
        out = []
        cur: str | None = key
        while cur is not None:
            r = self._row(cur)
            if r is None:
                raise NotFound(f"snapshot {cur} does not exist")
            out.append(cur)
            cur = r[1]
        return out

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _new_link(self) -> str:
        while True:
            link = "".join(secrets.choice(_LINK_ALPHABET) for _ in range(10))
            if not os.path.lexists(os.path.join(self.root, "l", link)):
                return link

    def _recover(self) -> None:
        """Undo whatever a crash left half done (see the module docstring)."""
        with self._lock:
            rows = self._db.execute("SELECT key, dir, link FROM snapshots").fetchall()
            dirs = {d for _, d, _ in rows}
            for k, d, _ in rows:
                if not os.path.isdir(os.path.join(self.root, d)):
                    self._db.execute("DELETE FROM snapshots WHERE key=?", (k,))
            links = {lk for _, _, lk in rows if lk}
        for name in os.listdir(self.root):
            p = os.path.join(self.root, name)
            if name.startswith("tmp-") or (name.startswith("s") and name[1:].isalnum() and name not in dirs
                                           and os.path.isdir(p)):
                self._force_rmtree(p)
        ldir = os.path.join(self.root, "l")
        for name in os.listdir(ldir):
            p = os.path.join(ldir, name)
            if name not in links or not os.path.exists(p):
                os.unlink(p)

    def _force_rmtree(self, path: str) -> None:
        do_unmount(os.path.join(path, "merged")) if os.path.ismount(os.path.join(path, "merged")) else None
        shutil.rmtree(path, ignore_errors=True)

    def _insert(self, key: str, d: str, parent: str | None, kind: str, link: str | None, size: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO snapshots(key, dir, parent, kind, link, size, created) VALUES(?,?,?,?,?,?,?)",
                             (key, d, parent, kind, link, size, time.time()))

    # -- operations -----------------------------------------------------------------------------------
    def apply(self, key: str, parent: str | None, fn: ApplyFn) -> Info:
        """Create committed snapshot `key` = `parent` + what `fn` writes. Idempotent by key."""
        with self._key_lock(key):
            if self.exists(key):
                return self._info(key)
            if parent is not None and not self.exists(parent):
                raise NotFound(f"parent snapshot {parent} does not exist")
            tmp = os.path.join(self.root, "tmp-" + secrets.token_hex(8))
            os.makedirs(os.path.join(tmp, "fs"))
            try:
                size = self._build(tmp, parent, fn)
                syncfs(tmp)
                d = "s" + secrets.token_hex(8)
                os.rename(tmp, os.path.join(self.root, d))
            except BaseException:
                self._force_rmtree(tmp)
                raise
            link = self._new_link()
            os.symlink(f"../{d}/fs", os.path.join(self.root, "l", link))
            self._insert(key, d, parent, "committed", link, size)
            return self._info(key)

    def _build(self, tmp: str, parent: str | None, fn: ApplyFn) -> int:
        raise NotImplementedError

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """A writable (active) snapshot on top of `parent`; returns the mounts of its root."""
        with self._key_lock(key):
            if self.exists(key):
                raise Conflict(f"snapshot {key} already exists")
            if parent is not None:
                info = self._info(parent)
                if info.kind != "committed":
                    raise InvalidArgument(f"parent snapshot {parent} is not committed")
            tmp = os.path.join(self.root, "tmp-" + secrets.token_hex(8))
            os.makedirs(os.path.join(tmp, "fs"))
            try:
                self._prepare_dir(tmp, parent)
                d = "s" + secrets.token_hex(8)
                os.rename(tmp, os.path.join(self.root, d))
            except BaseException:
                self._force_rmtree(tmp)
                raise
            self._insert(key, d, parent, "active", None, 0)
        return self.mounts(key)

    def _prepare_dir(self, tmp: str, parent: str | None) -> None:
        raise NotImplementedError

    def mounts(self, key: str) -> list[Mount]:
        raise NotImplementedError

    def view(self, key: str) -> list[Mount]:
        raise NotImplementedError

    def upper(self, key: str) -> str:
        return self._info(key).path

    def lower_dirs(self, key: str) -> list[str]:
        info = self._info(key)
        return [self._info(k).path for k in self.chain(info.parent)] if info.parent else []

    def remove(self, key: str) -> None:
        """Remove a snapshot; a committed one with children can't be removed (Conflict)."""
        with self._key_lock(key):
            r = self._row(key)
            if r is None:
                raise NotFound(f"snapshot {key} does not exist")
            with self._lock:
                if self._db.execute("SELECT 1 FROM snapshots WHERE parent=? LIMIT 1", (key,)).fetchone():
                    raise Conflict(f"snapshot {key} has children")
                self._db.execute("DELETE FROM snapshots WHERE key=?", (key,))
            if r[3]:
                try:
                    os.unlink(os.path.join(self.root, "l", r[3]))
                except FileNotFoundError:
                    pass
            self._force_rmtree(os.path.join(self.root, r[0]))

    def usage(self, key: str) -> int:
        info = self._info(key)
        return info.size if info.kind == "committed" else dir_usage(info.path)


class OverlaySnapshotter(_Base):
    name = "overlayfs"

    def _build(self, tmp: str, parent: str | None, fn: ApplyFn) -> int:
        return fn(os.path.join(tmp, "fs"), "overlay")

    def _prepare_dir(self, tmp: str, parent: str | None) -> None:
        os.mkdir(os.path.join(tmp, "work"), 0o700)

    def _lowers(self, key: str) -> list[str]:
        out = []
        for k in self.chain(key):
            r = self._row(k)
            assert r is not None and r[3]
            out.append(os.path.join(self.root, "l", r[3]))
        return out

    def mounts(self, key: str) -> list[Mount]:
        info = self._info(key)
        if info.kind == "committed":
            return self.view(key)
        d = os.path.dirname(info.path)
        if info.parent is None:
            return [Mount("bind", info.path, ["rbind", "rw"])]
        lowers = ":".join(self._lowers(info.parent))
        return [Mount("overlay", "overlay", ["index=off", f"lowerdir={lowers}", f"upperdir={info.path}",
                                              f"workdir={os.path.join(d, 'work')}"])]

    def view(self, key: str) -> list[Mount]:
        """Read-only mounts of a committed snapshot's whole tree."""
        info = self._info(key)
        if info.kind != "committed":
            raise InvalidArgument(f"snapshot {key} is not committed")
        lowers = self._lowers(key)
        if len(lowers) == 1:
            return [Mount("bind", info.path, ["rbind", "ro"])]
        return [Mount("overlay", "overlay", ["ro", "index=off", "lowerdir=" + ":".join(lowers)])]


class CopySnapshotter(_Base):
    name = "native"

    def _copy_parent(self, dest: str, parent: str | None) -> None:
        if parent is None:
            return
        src = self._info(parent).path
        subprocess.run(["cp", "-a", "--reflink=auto", src + "/.", dest], check=True, capture_output=True)

    def _build(self, tmp: str, parent: str | None, fn: ApplyFn) -> int:
        fs = os.path.join(tmp, "fs")
        self._copy_parent(fs, parent)
        return fn(fs, "flat")

    def _prepare_dir(self, tmp: str, parent: str | None) -> None:
        self._copy_parent(os.path.join(tmp, "fs"), parent)

    def mounts(self, key: str) -> list[Mount]:
        info = self._info(key)
        return [Mount("bind", info.path, ["rbind", "ro" if info.kind == "committed" else "rw"])]

    def view(self, key: str) -> list[Mount]:
        return [Mount("bind", self._info(key).path, ["rbind", "ro"])]


def overlay_supported(root: str) -> bool:
    """Can `root`'s file system host overlay upper dirs? Tried with a real mount, as Docker does."""
    if os.geteuid() != 0:
        return False
    probe = os.path.join(root, "tmp-probe-" + secrets.token_hex(4))
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.makedirs(os.path.join(probe, d))
        os.mknod(os.path.join(probe, "lower", "wh"), 0o020000, 0)  # whiteouts must be creatable too
        os.setxattr(os.path.join(probe, "upper"), "trusted.overlay.opaque", b"y")
        m = Mount("overlay", "overlay", [f"lowerdir={probe}/lower", f"upperdir={probe}/upper",
                                         f"workdir={probe}/work"])
        do_mount([m], os.path.join(probe, "merged"))
        do_unmount(os.path.join(probe, "merged"))
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def new(root: str, driver: str | None = None) -> Snapshotter:
    """The overlay snapshotter when the file system supports it (or `driver` says so), else the copy one."""
    os.makedirs(root, exist_ok=True)
    if driver is None:
        driver = "overlayfs" if overlay_supported(root) else "native"
    if driver in ("overlayfs", "overlay", "overlay2"):
        return OverlaySnapshotter(os.path.join(root, "overlayfs"))
    if driver in ("native", "copy", "vfs"):
        return CopySnapshotter(os.path.join(root, "native"))
    raise InvalidArgument(f"unknown snapshotter {driver!r}")
