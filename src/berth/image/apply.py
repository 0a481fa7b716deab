"""Apply a layer tar to a directory, safely: the extractor behind every snapshot.

Semantics follow the image spec's changesets and what Docker does:
- an existing path is replaced unless both are directories (then only attributes change);
- `.wh.<name>` deletes `<name>` from lower layers and `<dir>/.wh..wh..opq` hides all lower children;
  in "overlay" mode they become what overlayfs reads (a 0/0 char device, `trusted.overlay.opaque=y`)
  because the target is an empty diff dir over the lower layers; in "flat" mode (the copy snapshotter,
  whose target already holds the lower layers) they delete, sparing paths this same layer created;
- ownership, modes (setuid/setgid/sticky), mtimes, xattrs, devices, fifos, hard and symbolic links kept.

Safety (the daemon runs as root and layers come from anywhere):
- names are cleaned lexically; an absolute name or one whose `..` climbs above the root is refused;
- every write happens relative to a directory fd reached from the root fd by opening one component
  at a time with O_NOFOLLOW; a symlink met on the way is resolved *inside* the root (chroot semantics,
  as moby's chrootarchive), so nothing outside the root is ever opened, written or linked;
- the final component is never followed: an existing entry is removed and recreated (a file is never
  opened for writing through an existing hard link or symlink);
- a relative symlink target that climbs above the root is refused (Docker's "invalid symlink" rule);
  hard link targets must be existing non-directories inside the root;
- names over NAME_MAX / PATH_MAX, sizes over the free space, sparse or unknown entries, and corrupt or
  truncated streams are refused with the entry's name. The caller discards the half-applied target.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass
from typing import Literal

from berth.errors import InvalidArgument
from berth.image import tar
from berth.image.tar import Entry, TarReader

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
NAME_MAX = 255
PATH_MAX = 4095
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40
_CACHE_MAX = 512

Mode = Literal["overlay", "flat"]


class ApplyError(InvalidArgument):
    """A layer entry that can't or must not be applied; the message names the entry."""


@dataclass
class ApplyResult:
    entries: int = 0
    size: int = 0  # bytes of regular file content written


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def clean_name(name: str) -> str:
    """The entry name as a clean path relative to the root ("" is the root); ApplyError if it escapes."""
    if name.startswith("./"):
        name = name[2:]
    if len(name) < NAME_MAX and "/." not in name and "//" not in name and not name.startswith((".", "/")):
        return name.rstrip("/")  # the common case: already clean, no component can be too long
    if name.startswith("/"):
        raise ApplyError(f"{name}: absolute path in layer")
    parts: list[str] = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not parts:
                raise ApplyError(f"{name}: path escapes the root")
            parts.pop()
            continue
        if len(c.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise ApplyError(f"{name[:80]}...: file name longer than {NAME_MAX} bytes")
        if "\0" in c:
            raise ApplyError(f"{name!r}: NUL in file name")
        parts.append(c)
    path = "/".join(parts)
    if len(path.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise ApplyError(f"{name[:80]}...: path longer than {PATH_MAX} bytes")
    return path


def _clamp(parts: list[str]) -> str:
    """Resolve `.`/`..` with `..` stopping at the root (how a path resolves inside a chroot)."""
    out: list[str] = []
    for c in parts:
        if c in ("", "."):
            continue
        if c == "..":
            if out:
                out.pop()
            continue
        out.append(c)
    return "/".join(out)


class Applier:
    """Applies one layer stream to `root`. Not thread-safe; one per layer."""

    def __init__(self, root: str, mode: Mode = "overlay") -> None:
        self.mode = mode
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._cache: dict[str, int] = {}
        self._dirs: list[tuple[str, int, int]] = []  # (key, mode, mtime_ns), fixed up at the end
        self._created: set[str] = set()
        self._umask = _umask()
        self._root = os.geteuid() == 0
        st = os.statvfs(root)
        self._free = st.f_bavail * st.f_frsize
        # In an empty target without setgid, what root creates is already 0:0: skip that chown (a syscall
        # per file). Dirs are created without setgid and get their modes at the end, so this holds.
        self._owned_by_root = (mode == "overlay" and self._root and os.getegid() == 0
                               and not os.stat(self.root_fd).st_mode & stat.S_ISGID)
        self.result = ApplyResult()

    def close(self) -> None:
        self._clear_cache()
        os.close(self.root_fd)

    def __enter__(self) -> Applier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- directory resolution -------------------------------------------------------------------------
    def _clear_cache(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def _dir(self, key: str, create: bool = True, depth: int = 0) -> int:
        """An fd for directory `key` (relative to the root), resolving symlinks inside the root."""
        if not key:
            return self.root_fd
        fd = self._cache.get(key)
        if fd is not None:
            return fd
        if depth > _MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links")
        parts = key.split("/")
        i = len(parts) - 1
        cur = self.root_fd
        while i > 0:
            cached = self._cache.get("/".join(parts[:i]))
            if cached is not None:
                cur = cached
                break
            i -= 1
        for j in range(i, len(parts)):
            c = parts[j]
            try:
                nfd = os.open(c, _DIR_FLAGS, dir_fd=cur)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(c, 0o755, dir_fd=cur)
                nfd = os.open(c, _DIR_FLAGS, dir_fd=cur)
                if self.mode == "flat":
                    self._created.add("/".join(parts[:j + 1]))
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(c, dir_fd=cur, follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise OSError(errno.ENOTDIR, f"{'/'.join(parts[:j + 1])} is not a directory") from None
                target = os.readlink(c, dir_fd=cur)
                base = [] if target.startswith("/") else parts[:j]
                return self._dir(_clamp([*base, *target.split("/"), *parts[j + 1:]]), create, depth + 1)
            self._cache["/".join(parts[:j + 1])] = nfd
            cur = nfd
        return cur

    def _remove(self, pfd: int, base: str) -> bool:
        """Remove `base` in `pfd` if present (recursively for a directory). True if something was removed."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            self._clear_cache_keep(pfd)
            shutil.rmtree(base, dir_fd=pfd)
        else:
            if stat.S_ISLNK(st.st_mode):
                self._clear_cache_keep(pfd)
            os.unlink(base, dir_fd=pfd)
        return True

    def _clear_cache_keep(self, keep: int) -> None:
        """Forget cached fds (a directory or link changed) but keep `keep` open for the caller."""
        for k, fd in list(self._cache.items()):
            if fd != keep:
                os.close(fd)
                del self._cache[k]

    # -- entries --------------------------------------------------------------------------------------
    def apply(self, reader: TarReader) -> ApplyResult:
        for e in reader:
            if len(self._cache) > _CACHE_MAX:
                self._clear_cache()
            try:
                self._entry(e, reader)
            except ApplyError:
                raise
            except InvalidArgument:
                raise
            except OSError as err:
                raise ApplyError(f"{e.name}: {err.strerror or err}") from err
            self.result.entries += 1
        self._finish_dirs()
        return self.result

    def _entry(self, e: Entry, reader: TarReader) -> None:
        name = clean_name(e.name)
        t = e.type
        if not name:
            if t != tar.DIRTYPE:
                raise ApplyError(f"{e.name}: the root can only be a directory")
            self._attrs_fd(self.root_fd, e)
            self._dirs.append(("", e.mode & 0o7777, e.mtime_ns))
            return
        parent, _, base = name.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(e, parent, base)
            return
        if e.size > self._free and e.is_file():
            raise ApplyError(f"{e.name}: size {e.size} is larger than the free space ({self._free} bytes)")
        pfd = self._dir(parent)
        if self.mode == "flat":
            self._created.add(name)
        if e.is_file():
            self._file(e, reader, pfd, base, parent)
        elif t == tar.DIRTYPE:
            self._mkdir(e, pfd, base, name, parent)
        elif t == tar.SYMTYPE:
            self._symlink(e, pfd, base, parent)
        elif t == tar.LNKTYPE:
            self._hardlink(e, base, parent)
        elif t in (tar.CHRTYPE, tar.BLKTYPE, tar.FIFOTYPE):
            self._node(e, pfd, base, parent)
        else:
            raise ApplyError(f"{e.name}: unsupported tar entry type {t!r}")

    def _file(self, e: Entry, reader: TarReader, pfd: int, base: str, parent: str) -> None:
        mode = e.mode & 0o7777
        try:
            fd = os.open(base, _FILE_FLAGS, mode & 0o777, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            pfd = self._dir(parent)
            fd = os.open(base, _FILE_FLAGS, mode & 0o777, dir_fd=pfd)
        try:
            if e.size:
                reader.copy_to_fd(fd)
                self._free -= e.size
                self.result.size += e.size
            if self._root and (e.uid or e.gid or not self._owned_by_root):
                os.fchown(fd, e.uid, e.gid)
            if mode & 0o7000 or mode & self._umask:
                os.fchmod(fd, mode)
            if e.xattrs:
                self._xattrs(fd, e)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _mkdir(self, e: Entry, pfd: int, base: str, name: str, parent: str) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(pfd, base)
                pfd = self._dir(parent)
                os.mkdir(base, 0o700, dir_fd=pfd)
        fd = self._cache.get(name)
        if fd is None:
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            self._cache[name] = fd
        self._attrs_fd(fd, e)
        self._dirs.append((name, e.mode & 0o7777, e.mtime_ns))

    def _attrs_fd(self, fd: int, e: Entry) -> None:
        if self._root:
            os.fchown(fd, e.uid, e.gid)
        if e.xattrs:
            self._xattrs(fd, e)

    def _symlink(self, e: Entry, pfd: int, base: str, parent: str) -> None:
        target = e.linkname
        if not target:
            raise ApplyError(f"{e.name}: symlink with an empty target")
        if not target.startswith("/"):
            depth = parent.count("/") + 1 if parent else 0
            for c in target.split("/"):
                if c == "..":
                    depth -= 1
                    if depth < 0:
                        raise ApplyError(f"{e.name}: invalid symlink -> {target!r} (points outside the root)")
                elif c not in ("", "."):
                    depth += 1
        try:
            os.symlink(target, base, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            pfd = self._dir(parent)
            os.symlink(target, base, dir_fd=pfd)
        if self._root:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, e: Entry, base: str, parent: str) -> None:
        try:
            tname = clean_name(e.linkname)
        except ApplyError as err:
            raise ApplyError(f"{e.name}: hard link target {err}") from None
        if not tname:
            raise ApplyError(f"{e.name}: hard link to the root")
        tparent, _, tbase = tname.rpartition("/")
        try:
            tpfd = self._dir(tparent, create=False)
            tst = os.stat(tbase, dir_fd=tpfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise ApplyError(f"{e.name}: hard link target {e.linkname!r} not found in the layer") from None
        if stat.S_ISDIR(tst.st_mode):
            raise ApplyError(f"{e.name}: hard link to a directory {e.linkname!r}")
        pfd = self._dir(parent)
        try:
            cur = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if (cur.st_dev, cur.st_ino) == (tst.st_dev, tst.st_ino):
                return
            self._remove(pfd, base)
            pfd = self._dir(parent)
        except FileNotFoundError:
            pass
        tpfd = self._dir(tparent, create=False)
        os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _node(self, e: Entry, pfd: int, base: str, parent: str) -> None:
        mode = e.mode & 0o7777
        kind = {tar.CHRTYPE: stat.S_IFCHR, tar.BLKTYPE: stat.S_IFBLK, tar.FIFOTYPE: stat.S_IFIFO}[e.type]
        dev = os.makedev(e.devmajor, e.devminor) if kind != stat.S_IFIFO else 0
        if not self._root and kind != stat.S_IFIFO:
            raise ApplyError(f"{e.name}: device nodes need root")
        try:
            os.mknod(base, kind | (mode & 0o777), dev, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            pfd = self._dir(parent)
            os.mknod(base, kind | (mode & 0o777), dev, dir_fd=pfd)
        if self._root:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, mode, dir_fd=pfd)  # a node just made here, not a link: following is harmless
        os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _xattrs(self, fd: int, e: Entry) -> None:
        for k, v in e.xattrs.items():
            if k.startswith("trusted.overlay."):
                continue  # overlayfs' own attributes are berth's to set, never a layer's
            try:
                os.setxattr(fd, k, v)
            except OSError as err:
                if err.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise

    # -- whiteouts ------------------------------------------------------------------------------------
    def _whiteout(self, e: Entry, parent: str, base: str) -> None:
        if base == OPAQUE:
            self._opaque(parent)
            return
        target = base[len(WHITEOUT_PREFIX):]
        if not target or target in (".", "..") or target.startswith(WHITEOUT_PREFIX):
            raise ApplyError(f"{e.name}: invalid whiteout")
        key = f"{parent}/{target}" if parent else target
        if self.mode == "overlay":
            pfd = self._dir(parent)
            try:
                st = os.stat(target, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                os.mknod(target, stat.S_IFCHR, 0, dir_fd=pfd)
                return
            # Made by this same layer: the spec keeps it; a directory must then hide the lower one.
            if stat.S_ISDIR(st.st_mode):
                self._opaque(key)
            return
        if key in self._created:
            return
        try:
            pfd = self._dir(parent, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        self._remove(pfd, target)

    def _opaque(self, key: str) -> None:
        fd = self._dir(key)
        if self.mode == "overlay":
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        for child in os.listdir(fd):
            ck = f"{key}/{child}" if key else child
            if ck not in self._created:
                self._remove(fd, child)
                fd = self._dir(key)

    def _finish_dirs(self) -> None:
        """Directory modes and mtimes last: writing children changes a directory's mtime."""
        for key, mode, mtime in reversed(self._dirs):
            try:
                fd = self._dir(key, create=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime, mtime))


def apply_tar(read_stream: object, root: str, mode: Mode = "overlay") -> ApplyResult:
    """Apply the tar stream (an object with `read(n)`) to `root`; returns counts. Raises ApplyError/TarError."""
    reader = TarReader(read_stream.read)  # type: ignore[attr-defined]
    with Applier(root, mode) as a:
        return a.apply(reader)
