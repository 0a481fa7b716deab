"""The daemon's side of `docker cp`: stat a path, tar it out, extract a tar in, inside a container's root.

Everything the container can touch is hostile, and the container keeps running while we work: any
directory may be swapped for a symlink to "/" at any moment (CVE-2018-15664), /etc/passwd may be a fifo
or a device node, and the client's tar may name "../x", "/x" or link out. So:
- every path is resolved inside `root` by the kernel (openat2 with RESOLVE_IN_ROOT) or, where that
  syscall is missing, by a walk that opens one component at a time with O_NOFOLLOW and resolves each
  symlink itself; either way "/" and ".." stop at the container's root, never the host's;
- reads and writes then happen relative to the directory fd so obtained, and the last component is
  never followed: it is created with O_EXCL|O_NOFOLLOW, or opened O_PATH|O_NOFOLLOW and checked;
- only regular files are ever opened for reading or writing (an O_PATH fd, checked with fstat, then
  reopened through /proc/self/fd), so a swapped-in device node or fifo is never opened;
- users are looked up by parsing the container's passwd and group files, never through NSS
  (CVE-2019-14271: moby's helper, chrooted into the container, loaded its libnss_*.so).
Semantics and messages follow moby (daemon/archive*.go, containerfs_linux.go) and moby/go-archive.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import io
import json
import logging
import os
import posixpath
import stat as S
import tarfile
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from typing import Any, BinaryIO

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.image import tar as tarfmt
from berth.oci import compression

log = logging.getLogger("berth.daemon.archive")

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall table unification)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_LINKS = 40  # the kernel's MAXSYMLINKS
_PATH_MAX = 4095
_CHUNK = 1 << 20
_FLUSH = 256 << 10
_IMPLIED_DIR_MODE = 0o755
_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

# Go's os.FileMode type bits (the "mode" of X-Docker-Container-Path-Stat)
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    """A stat(2) mode as Go's os.FileMode (what Docker puts in the path stat)."""
    mode = st_mode & 0o777
    fmt = S.S_IFMT(st_mode)
    mode |= {S.S_IFDIR: MODE_DIR, S.S_IFLNK: MODE_SYMLINK, S.S_IFBLK: MODE_DEVICE, S.S_IFIFO: MODE_NAMED_PIPE,
             S.S_IFSOCK: MODE_SOCKET, S.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE}.get(fmt, 0)
    if st_mode & S.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & S.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & S.S_ISVTX:
        mode |= MODE_STICKY
    return mode


# -- openat2 --------------------------------------------------------------------------------------


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = _OpenHow(flags, 0, resolve)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(dirfd), os.fsencode(path), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return int(fd)


class _Root:
    """A container's root as a directory fd; every path given to it is resolved inside it."""

    use_openat2 = True  # turned off when the kernel (or a seccomp filter) lacks it; tests flip it

    def __init__(self, root: str) -> None:
        self.fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> _Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str, flags: int) -> int:
        """openat(root, path, flags) with every symlink and ".." resolved inside the root; the last
        component is followed unless `flags` has O_NOFOLLOW. `path` is inside the container."""
        rel = path.lstrip("/") or "."
        if _Root.use_openat2:
            for _ in range(16):
                try:
                    return _openat2(self.fd, rel, flags | os.O_CLOEXEC, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
                except OSError as e:
                    if e.errno == errno.EAGAIN:  # a rename raced the lookup: the kernel asks us to retry
                        continue
                    if e.errno != errno.ENOSYS:
                        raise
                    _Root.use_openat2 = False
                    break
        fd, _, missing = self.walk(rel, follow=not flags & os.O_NOFOLLOW)
        keep = False
        try:
            if missing:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            st = os.fstat(fd)
            if flags & os.O_DIRECTORY and not S.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            if flags & os.O_PATH:
                keep = True
                return fd
            if S.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            # the walk's fd names the very inode it checked: reopen that, never the path again
            return os.open(f"/proc/self/fd/{fd}", flags & ~os.O_NOFOLLOW | os.O_CLOEXEC)
        finally:
            if not keep:
                os.close(fd)

    def walk(self, path: str, *, follow: bool) -> tuple[int, str, list[str]]:
        """Resolve `path` one component at a time from the root, as a chroot would, without ever
        following a link from the kernel's side. Returns an O_PATH fd of the deepest object that
        exists, its path inside the container, and the components past it that do not exist (so a
        dangling path resolves "as far as possible", like moby's FollowSymlinkInScope)."""
        todo = path.split("/")[::-1]
        fds: list[int] = []
        names: list[str] = []
        links = 0
        try:
            while todo:
                c = todo.pop()
                if c in ("", "."):
                    continue
                if c == "..":
                    if names:
                        os.close(fds.pop())
                        names.pop()
                    continue
                try:
                    fd = os.open(c, _O_PATH_NOFOLLOW, dir_fd=fds[-1] if fds else self.fd)
                except FileNotFoundError:
                    missing: list[str] = []
                    for m in [c, *todo[::-1]]:
                        if m == "..":
                            if missing:
                                missing.pop()
                        elif m not in ("", "."):
                            missing.append(m)
                    top = fds.pop() if fds else os.dup(self.fd)
                    return top, "/" + "/".join(names), missing
                mode = os.fstat(fd).st_mode
                if S.S_ISLNK(mode) and (follow or todo):  # as the kernel: a trailing "/" follows too
                    links += 1
                    target = os.readlink("", dir_fd=fd)
                    os.close(fd)
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    if not target:  # the kernel does not resolve an empty link
                        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                    if target.startswith("/"):
                        while fds:
                            os.close(fds.pop())
                        names.clear()
                    todo.extend(target.split("/")[::-1])
                    continue
                if todo and not S.S_ISDIR(mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                fds.append(fd)
                names.append(c)
            top = fds.pop() if fds else os.dup(self.fd)
            return top, "/" + "/".join(names), []
        finally:
            for fd in fds:
                os.close(fd)

    def resolve(self, path: str) -> str:
        """The container path `path` leads to with every symlink followed (moby's FollowSymlinkInScope)."""
        fd, found, missing = self.walk(path, follow=True)
        os.close(fd)
        return posixpath.join(found, *missing)

    def read_small(self, path: str, limit: int = 16 << 20) -> bytes:
        """A regular file's content (passwd, group); never opens a fifo or a device."""
        fd = self.open(path, _O_PATH)
        try:
            if not S.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(fd)
        with os.fdopen(rfd, "rb") as f:
            return f.read(limit)


# -- paths as moby cleans them --------------------------------------------------------------------


def _go_base(p: str) -> str:
    """Go's filepath.Base."""
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p.rsplit("/", 1)[-1]


def _clean_abs(p: str) -> str:
    """filepath.Join("/", p): lexically clean, ".." stopping at "/"."""
    return posixpath.normpath("/" + p.lstrip("/")) if p.strip("/") else "/"


def _abs_path(user_path: str) -> str:
    """moby's PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)."""
    if "\0" in user_path:
        raise InvalidArgument("invalid path: contains a NUL byte")
    clean = _clean_abs(user_path)
    if _go_base(clean) != "." and _go_base(user_path) == ".":
        if not clean.endswith("/"):
            clean += "/"
        clean += "."
    if not clean.endswith("/") and user_path.endswith("/"):
        clean += "/"
    return clean


def _asserts_dir(abs_path: str) -> bool:
    return abs_path.endswith("/") or _go_base(abs_path) == "."


def _not_found(user_path: str, container: str) -> NotFound:
    return NotFound(f"Could not find the file {user_path} in container {container}" if container
                    else f"Could not find the file {user_path}")


def _path_error(e: OSError, op: str, abs_path: str, user_path: str, container: str) -> Exception:
    if e.errno == errno.ENOENT:
        return _not_found(user_path, container)
    if e.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
        return InvalidArgument(f"{op} {abs_path}: {os.strerror(e.errno or 0).lower()}")
    return e


def _open_final(r: _Root, abs_path: str) -> int:
    """An O_PATH fd of `abs_path`: its last component is not followed unless the path asserts a
    directory (a trailing "/" or "/."), exactly as lstat(2) on that path would do."""
    if _asserts_dir(abs_path):
        return r.open(abs_path, _O_PATH | os.O_DIRECTORY)
    return r.open(abs_path, _O_PATH_NOFOLLOW)


def _rfc3339(ns: int) -> str:
    """Go's time.Time JSON form in UTC (RFC 3339 with trailing zeros of the fraction trimmed)."""
    sec, frac = divmod(ns, 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def _stat_dict(name: str, st: os.stat_result, link: str) -> dict[str, Any]:
    return {"name": name, "size": st.st_size, "mode": go_file_mode(st.st_mode), "mtime": _rfc3339(st.st_mtime_ns),
            "linkTarget": link}


# -- stat -----------------------------------------------------------------------------------------


def stat(root: str, path: str, *, container: str = "") -> dict[str, Any]:
    """`HEAD /containers/{id}/archive`: {"name","size","mode","mtime","linkTarget"} of `path` in the
    container whose root filesystem is mounted at `root`. The last component is not followed (a
    symlink describes itself; linkTarget is where it leads inside the container), unless the path
    ends with "/" or "/.". `container` is the name the user gave, for moby's 404 message."""
    abs_path = _abs_path(path)
    with _Root(root) as r:
        try:
            fd = _open_final(r, abs_path)
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
            link = r.resolve(abs_path) if S.S_ISLNK(st.st_mode) else ""
        except OSError as e:
            raise _path_error(e, "lstat", abs_path, path, container) from None
    return _stat_dict(_go_base(abs_path), st, link)


# -- get ------------------------------------------------------------------------------------------


def get(root: str, path: str, *, container: str = "") -> tuple[dict[str, Any], Generator[bytes, None, None]]:
    """`GET /containers/{id}/archive`: the stat of `path` and a tar of it, as moby builds it: a
    directory is archived with its contents under its own base name ("etc/", "etc/passwd"), or as
    "./..." when the path ends with "/.", or with absolute names for "/"; anything else is one entry
    named by its base name (a symlink as a symlink). Errors about `path` are raised here; the tar is
    produced lazily (`root` must stay mounted until the iterator ends or is closed)."""
    st = stat(root, path, container=container)
    return st, _tar(root, _abs_path(path))


def _tar(root: str, abs_path: str) -> Generator[bytes, None, None]:
    out = _TarOut()
    with _Root(root) as r:
        try:
            fd = _open_final(r, abs_path)
        except OSError as e:  # gone since the stat: an empty archive, as moby's tarballer gives
            log.warning("archive of %s: %s", abs_path, e)
            yield out.end()
            return
        try:
            st = os.fstat(fd)
            if S.S_ISDIR(st.st_mode):
                top = _go_base(abs_path)
                prefix = "/" if top == "/" else top + "/"
                out.entry(fd, prefix, st)
                yield from out.take()
                yield from _tar_tree(out, fd, prefix)
            else:
                out.entry(fd, _go_base(abs_path), st)
                yield from out.drain()
        finally:
            os.close(fd)
    yield out.end()


def _tar_tree(out: _TarOut, top_fd: int, top_prefix: str) -> Iterator[bytes]:
    """The tree under directory `top_fd`, pre-order with names sorted bytewise (Go's filepath.WalkDir)."""
    dfd = os.open(f"/proc/self/fd/{top_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack: list[tuple[int, str, Iterator[str]]] = [(dfd, top_prefix, iter(_listdir(dfd)))]
    try:
        while stack:
            dfd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dfd)
                stack.pop()
                continue
            arch = prefix + name
            if len(os.fsencode(arch)) > _PATH_MAX:
                log.warning("archive: skipping %s...: path too long", arch[:64])
                continue
            try:
                fd = os.open(name, _O_PATH_NOFOLLOW, dir_fd=dfd)
            except OSError as e:  # removed (or replaced) while we walk: moby logs and goes on
                log.warning("archive: %s: %s", arch, e)
                continue
            try:
                st = os.fstat(fd)
                if S.S_ISDIR(st.st_mode):
                    out.entry(fd, arch + "/", st)
                    sub = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    stack.append((sub, arch + "/", iter(_listdir(sub))))
                else:
                    out.entry(fd, arch, st)
            finally:
                os.close(fd)
            yield from out.take()
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)


def _listdir(dfd: int) -> list[str]:
    try:
        return sorted(os.listdir(dfd), key=os.fsencode)
    except OSError as e:
        log.warning("archive: listing a directory: %s", e)
        return []


class _TarOut:
    """Builds the tar stream: headers as Go's archive.FileInfoHeader fills them (no user or group
    names: nothing is looked up), hard links as links to the first name seen, data read from the
    O_PATH fd reopened read-only (only for regular files), output in chunks of about _FLUSH bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.seen: dict[tuple[int, int], str] = {}
        self._pending: tuple[int, int] | None = None  # (read fd, size) of data still to stream

    def entry(self, fd: int, name: str, st: os.stat_result) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode = st.st_mode & 0o7777
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = st.st_mtime_ns // 1_000_000_000
        fmt = S.S_IFMT(st.st_mode)
        rfd = -1
        if fmt == S.S_IFDIR:
            ti.type = tarfile.DIRTYPE
        elif fmt == S.S_IFLNK:
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink("", dir_fd=fd)
        elif fmt in (S.S_IFCHR, S.S_IFBLK):
            ti.type = tarfile.CHRTYPE if fmt == S.S_IFCHR else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif fmt == S.S_IFIFO:
            ti.type = tarfile.FIFOTYPE
        elif fmt == S.S_IFREG:
            ti.type = tarfile.REGTYPE
        else:
            log.warning("archive: %s: sockets not supported", name)
            return
        if fmt != S.S_IFDIR and st.st_nlink > 1:
            first = self.seen.get((st.st_dev, st.st_ino))
            if first is not None:
                ti.type, ti.linkname, fmt = tarfile.LNKTYPE, first, 0
            else:
                self.seen[(st.st_dev, st.st_ino)] = name
        if fmt == S.S_IFREG:
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            ti.size = st.st_size
            try:
                cap = os.getxattr(rfd, "security.capability")
            except OSError:
                cap = b""
            if cap:
                if len(cap) > 3 and cap[3] == 3:  # v3 names a namespace's root uid: meaningless elsewhere
                    cap = bytes(cap[:3]) + b"\x02" + bytes(cap[4:20])
                ti.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
        self.buf += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if rfd >= 0:
            self._pending = (rfd, ti.size)

    def take(self) -> Iterator[bytes]:
        """The pending file data, then the buffer once it is big enough."""
        if self._pending is not None:
            yield from self._data()
        if len(self.buf) >= _FLUSH:
            yield bytes(self.buf)
            self.buf.clear()

    def drain(self) -> Iterator[bytes]:
        if self._pending is not None:
            yield from self._data()

    def _data(self) -> Iterator[bytes]:
        assert self._pending is not None
        rfd, size = self._pending
        self._pending = None
        left = size
        try:
            while left:
                try:
                    chunk = os.read(rfd, min(left, _CHUNK))
                except OSError as e:
                    log.warning("archive: read error: %s", e)
                    chunk = b""
                if not chunk:  # the file shrank under us: keep the archive well-formed
                    chunk = bytes(min(left, _CHUNK))
                left -= len(chunk)
                if len(chunk) >= _FLUSH:
                    if self.buf:
                        yield bytes(self.buf)
                        self.buf.clear()
                    yield chunk
                else:
                    self.buf += chunk
                    if len(self.buf) >= _FLUSH:
                        yield bytes(self.buf)
                        self.buf.clear()
        finally:
            os.close(rfd)
        self.buf += bytes(-size % tarfmt.BLOCK)

    def end(self) -> bytes:
        data = bytes(self.buf) + bytes(2 * tarfmt.BLOCK)  # Go's tar writer ends with two zero blocks, no padding
        self.buf.clear()
        return data


# -- put ------------------------------------------------------------------------------------------


def put(root: str, path: str, data: BinaryIO | Iterable[bytes], no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False, *, container: str = "", user: str = "", read_only: bool = False) -> None:
    """`PUT /containers/{id}/archive`: extract the tar in `data` (a file object or an iterable of
    chunks; gzip, bzip2, xz and zstd are detected) into the directory `path` of the container.

    `path` must exist and be a directory (symlinks followed, the last one too). Entries are placed
    relative to it; their own symlinked parents are followed inside the container's root. Entry
    names that climb out ("../x") or hard links that do are refused; absolute names are taken as
    relative. An existing entry is replaced, except that directories merge, and with
    `no_overwrite_dir_non_dir` a directory and a non-directory never replace each other. Ownership
    comes from the tar headers, or from the container's `user` ("name|uid[:group|gid]", looked up in
    its own passwd/group files) when `copy_uid_gid`. `read_only` is the container's ReadonlyRootfs."""
    abs_path = _abs_path(path)
    with _Root(root) as r:
        try:
            dest = r.resolve(abs_path)  # filepath.EvalSymlinks: fails if anything is missing
            dfd = r.open(dest, _O_PATH)
        except OSError as e:
            raise _path_error(e, "lstat", abs_path, path, container) from None
        try:
            if not S.S_ISDIR(os.fstat(dfd).st_mode):
                raise InvalidArgument("extraction point is not a directory")
            if read_only:
                raise InvalidArgument("container rootfs is marked read-only")
            owner = _container_ids(r, user) if copy_uid_gid and user else None
            reader = _plain_reader(data)
            _Extractor(r, dest, no_overwrite_dir_non_dir, owner).run(tarfmt.TarReader(reader.read))
        finally:
            os.close(dfd)


def _plain_reader(data: BinaryIO | Iterable[bytes]) -> BinaryIO:
    raw: Any = data if hasattr(data, "read") else _IterReader(iter(data))
    _, reader = compression.open_reader(raw)
    return reader  # type: ignore[return-value]


class _IterReader(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks."""

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._left:
            chunk = next(self._it, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        n = min(len(b), len(self._left))
        b[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


class _Extractor:
    """Applies one client tar to a directory of the container (go-archive's Unpack, fd-relative)."""

    def __init__(self, r: _Root, dest: str, no_overwrite: bool, owner: tuple[int, int] | None) -> None:
        self.r = r
        self.dest = dest  # resolved, inside the container
        self.no_overwrite = no_overwrite
        self.owner = owner
        self.dirs: list[tuple[str, int]] = []  # (entry name, mtime ns): directory times are set last
        self._cache: dict[str, int] = {}

    def run(self, reader: tarfmt.TarReader) -> None:
        try:
            for e in reader:
                if e.type == tarfmt.PAX_GLOBAL:
                    continue
                name = posixpath.normpath(e.name.lstrip("/")) if e.name.strip("/") else "."
                if name == ".":
                    continue
                if name == ".." or name.startswith("../"):
                    raise InvalidArgument(f"invalid entry name {_go_quote(e.name)}")
                try:
                    self._entry(e, name, reader)
                except OSError as err:
                    raise BerthError(f"{name}: {os.strerror(err.errno or 0).lower()}") from err
            for name, mtime in self.dirs:
                parent, _, base = name.rpartition("/")
                try:
                    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=self._dir(parent, create=False))
                except OSError:
                    continue  # removed by a later entry
                try:
                    os.utime(fd, ns=(mtime, mtime))
                finally:
                    os.close(fd)
        finally:
            self._forget()

    # -- directories of the destination, resolved inside the root and cached by entry name --------
    def _forget(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def _dir(self, rel: str, create: bool = True) -> int:
        """An O_PATH fd of directory `rel` under the destination, made (0755, as go-archive's implied
        directories) where missing if `create`."""
        fd = self._cache.get(rel)
        if fd is not None:
            return fd
        if len(self._cache) > 256:
            self._forget()
        full = posixpath.join(self.dest, rel) if rel else self.dest
        try:
            fd = self.r.open(full, _O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create:
                raise
            fd = self._make_dirs(full)
        self._cache[rel] = fd
        return fd

    def _make_dirs(self, full: str) -> int:
        fd, _, missing = self.r.walk(full, follow=True)
        try:
            if not S.S_ISDIR(os.fstat(fd).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", full)
            for c in missing:
                try:
                    os.mkdir(c, _IMPLIED_DIR_MODE, dir_fd=fd)
                    made = True
                except FileExistsError:
                    made = False
                nfd = os.open(c, _O_PATH_NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
                if made:
                    _chmod_opath(fd, _IMPLIED_DIR_MODE)  # mkdir obeys the umask; go-archive chmods
            return fd
        except BaseException:
            os.close(fd)
            raise

    # -- entries ---------------------------------------------------------------------------------
    def _entry(self, e: tarfmt.Entry, name: str, reader: tarfmt.TarReader) -> None:
        parent, _, base = name.rpartition("/")
        link_parent = link_base = ""
        if e.type == tarfmt.LNKTYPE:
            link_parent, _, link_base = self._link_target(e.linkname).rpartition("/")
        pfd = self._dir(parent)
        is_dir = e.type == tarfmt.DIRTYPE
        try:
            cur = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            cur = None
        if cur is not None:
            cur_dir = S.S_ISDIR(cur.st_mode)
            if self.no_overwrite and cur_dir and not is_dir:
                raise Conflict(f"cannot overwrite directory {_go_quote(name)} with non-directory "
                               f"{_go_quote(self.dest)}")
            if self.no_overwrite and not cur_dir and is_dir:
                raise Conflict(f"cannot overwrite non-directory {_go_quote(name)} with directory "
                               f"{_go_quote(self.dest)}")
            if not (cur_dir and is_dir):
                if cur_dir:
                    self._forget()
                    _rmtree(self._dir(parent), base)
                else:
                    os.unlink(base, dir_fd=pfd)
                    if S.S_ISLNK(cur.st_mode):
                        self._forget()  # a cached directory may have been reached through it
                pfd = self._dir(parent)
        uid, gid = self.owner or (e.uid, e.gid)
        mode = e.mode & 0o7777
        if e.is_file():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777,
                         dir_fd=pfd)
            try:
                reader.copy_to_fd(fd)
                os.fchown(fd, uid, gid)
                self._xattrs_fd(fd, e)
                os.fchmod(fd, mode)
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)
        elif is_dir:
            if cur is None or not S.S_ISDIR(cur.st_mode):
                os.mkdir(base, mode & 0o777, dir_fd=pfd)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.fchown(fd, uid, gid)
                self._xattrs_fd(fd, e)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            self.dirs.append((name, e.mtime_ns))
        elif e.type == tarfmt.SYMTYPE:
            # stored verbatim, as go-archive does: it is only ever followed inside the root
            os.symlink(e.linkname, base, dir_fd=pfd)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            self._xattrs_path(pfd, base, e)
            os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif e.type == tarfmt.LNKTYPE:
            os.link(link_base, base, src_dir_fd=self._dir(link_parent, create=False), dst_dir_fd=pfd,
                    follow_symlinks=False)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            self._xattrs_path(pfd, base, e)
            self._chmod_utime(pfd, base, mode, e.mtime_ns)
        elif e.type in (tarfmt.CHRTYPE, tarfmt.BLKTYPE, tarfmt.FIFOTYPE):
            kind = {tarfmt.CHRTYPE: S.S_IFCHR, tarfmt.BLKTYPE: S.S_IFBLK, tarfmt.FIFOTYPE: S.S_IFIFO}[e.type]
            os.mknod(base, kind | (mode & 0o777), os.makedev(e.devmajor, e.devminor), dir_fd=pfd)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            self._xattrs_path(pfd, base, e)
            self._chmod_utime(pfd, base, mode, e.mtime_ns)
        else:
            raise InvalidArgument(f"unhandled tar header type {e.type[0] if e.type else 0}")

    def _link_target(self, linkname: str) -> str:
        """A hard link's target relative to the destination (go-archive's resolveHardlinkTarget)."""
        cleaned = posixpath.normpath(linkname.lstrip("/")) if linkname.strip("/") else "."
        if cleaned == "." or cleaned == ".." or cleaned.startswith("../"):
            raise InvalidArgument(f"invalid hardlink target {_go_quote(linkname)}")
        return cleaned

    def _chmod_utime(self, pfd: int, base: str, mode: int, mtime_ns: int) -> None:
        """chmod and times of a just-made entry that is not a regular file or a directory: through an
        O_PATH fd checked not to be a symlink (fchmodat would follow one, to the host's root)."""
        fd = os.open(base, _O_PATH_NOFOLLOW, dir_fd=pfd)
        try:
            if S.S_ISLNK(os.fstat(fd).st_mode):
                return  # a hard link to a symlink: a symlink has no mode of its own
            _chmod_opath(fd, mode)
            os.utime(f"/proc/self/fd/{fd}", ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def _xattrs_fd(self, fd: int, e: tarfmt.Entry) -> None:
        for k, v in e.xattrs.items():
            _setxattr(lambda k=k, v=v: os.setxattr(fd, k, v))

    def _xattrs_path(self, pfd: int, base: str, e: tarfmt.Entry) -> None:
        # the parent's magic link, then the name itself without following it
        for k, v in e.xattrs.items():
            _setxattr(lambda k=k, v=v: os.setxattr(f"/proc/self/fd/{pfd}/{base}", k, v, follow_symlinks=False))


def _rmtree(pfd: int, name: str) -> None:
    """Remove directory `name` of `pfd` and everything in it, never following a link: shutil.rmtree
    opens each directory without O_NOFOLLOW (then checks), so a swapped-in link would be opened."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, dir_fd=pfd)
    stack: list[tuple[int, str, int, Iterator[str]]] = [(pfd, name, fd, iter(os.listdir(fd)))]
    try:
        while stack:
            parent, dname, fd, children = stack[-1]
            child = next(children, None)
            if child is None:  # empty now
                stack.pop()
                os.close(fd)
                os.rmdir(dname, dir_fd=parent)
                continue
            try:
                sub = os.open(child, flags, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                os.unlink(child, dir_fd=fd)  # not a directory, or a link to one: the name goes
                continue
            stack.append((fd, child, sub, iter(os.listdir(sub))))
    finally:
        for _, _, fd, _ in stack:
            os.close(fd)


def _setxattr(call: Any) -> None:
    try:
        call()
    except PermissionError:  # go-archive: EPERM (e.g. trusted.* without the capability) is skipped
        pass


def _chmod_opath(fd: int, mode: int) -> None:
    os.chmod(f"/proc/self/fd/{fd}", mode)


def _go_quote(s: str) -> str:
    """Go's %q, near enough: a double-quoted string with Go's escapes."""
    return json.dumps(s, ensure_ascii=False)


# -- the container's users, without NSS -----------------------------------------------------------


def _container_ids(r: _Root, user: str) -> tuple[int, int]:
    """moby's getUIDGID: "user[:group]", names looked up in the container's /etc/passwd and /etc/group."""
    name_or_id, _, group = user.partition(":")
    uid = gid = 0
    if name_or_id:
        num = _id(name_or_id)
        entry = _lookup(r, "/etc/passwd", lambda f: f[0] == name_or_id if num is None else _int(f[2]) == num)
        if num is None:
            if isinstance(entry, str):
                raise InvalidArgument(f"failed to look up user {_go_quote(name_or_id)} in container: {entry}")
            uid, gid = _int(entry[2]), _int(entry[3])
        else:
            uid, gid = (num, 0) if isinstance(entry, str) else (_int(entry[2]), _int(entry[3]))
    if group:
        num = _id(group)
        if num is not None:
            gid = num
        else:
            entry = _lookup(r, "/etc/group", lambda f: f[0] == group)
            if isinstance(entry, str):
                raise InvalidArgument(f"failed to look up group {_go_quote(group)} in container: {entry}")
            gid = _int(entry[2])
    return uid, gid


def _id(s: str) -> int | None:
    return int(s) if s.isdigit() and int(s) <= 0x7FFFFFFF else None


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        return 0


def _lookup(r: _Root, path: str, match: Any) -> list[str] | str:
    """The first matching line's fields, or the error text moby/sys/user would give."""
    try:
        text = r.read_small(path).decode("utf-8", "replace")
    except OSError as e:
        return f"open {path}: {(e.strerror or '').lower()}"
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = line.split(":")
        fields += [""] * (7 - len(fields))
        if match(fields):
            return fields
    return "no matching entries in passwd file" if path.endswith("passwd") else "no matching entries in group file"


# -- for the daemon's event loop ------------------------------------------------------------------


async def get_async(root: str, path: str, *, container: str = "") -> tuple[dict[str, Any], AsyncIterator[bytes]]:
    """`get` off the event loop: the stat, then the tar read from a worker thread chunk by chunk."""
    st, chunks = await asyncio.to_thread(get, root, path, container=container)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            await asyncio.to_thread(chunks.close)

    return st, body()


async def put_async(root: str, path: str, data: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool = False,
                    copy_uid_gid: bool = False, *, container: str = "", user: str = "",
                    read_only: bool = False) -> None:
    """`put` off the event loop, fed from an async byte stream (the request body)."""
    loop = asyncio.get_running_loop()

    def chunks() -> Iterator[bytes]:
        while True:
            chunk = asyncio.run_coroutine_threadsafe(_next_chunk(data), loop).result()
            if chunk is None:
                return
            yield chunk

    await asyncio.to_thread(put, root, path, chunks(), no_overwrite_dir_non_dir, copy_uid_gid, container=container,
                            user=user, read_only=read_only)


async def _next_chunk(data: AsyncIterator[bytes]) -> bytes | None:
    return await anext(data, None)
