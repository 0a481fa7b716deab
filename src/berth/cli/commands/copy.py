"""`cp`: copy between a container and the local filesystem through the archive endpoints.

From a container: `GET /containers/{id}/archive?path=` gives a tar whose root entry is the source's
base name; it is extracted here by our own checked extractor (no entry may leave the destination and
none is written through a symlink), renamed to the destination's name as docker's archive.CopyTo does.
To a container: a tar of the local path (root entry renamed likewise) is PUT, chunked, into the
destination directory (`HEAD` first to learn whether the destination is a directory)."""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _cpath, _parse
from berth.cli.flags import BOOL, Flag
from berth.client.errors import DaemonError, DaemonNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def split_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: "ctr:path" unless the part before ':' looks like a local path."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    ctr, _, path = arg.partition(":")
    return ctr, path


class _CountingReader:
    def __init__(self, pieces: object) -> None:
        self.it = iter(pieces)  # type: ignore[call-overload]
        self.buf = b""
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            try:
                piece = next(self.it)
            except StopIteration:
                break
            self.total += len(piece)
            self.buf += piece
        if n < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _safe_parts(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise StatusError(1, f"invalid archive entry {name!r}: it leaves the destination")
    return parts


def _ensure_dirs(root: str, parts: list[str]) -> str:
    """Create (or check) each directory under root without following any symlink; return the path."""
    path = root
    for p in parts:
        path = os.path.join(path, p)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise StatusError(1, f"cannot extract {path!r}: a parent is not a directory")
    return path


def extract(fileobj: object, dest: str, rebase: tuple[str, str] | None = None) -> None:
    """Extract a tar stream into dest, refusing entries that would escape it or write through a link."""
    with tarfile.open(fileobj=fileobj, mode="r|*") as tf:  # type: ignore[call-overload]
        dirs: list[tuple[str, tarfile.TarInfo]] = []
        for m in tf:
            name = m.name
            if rebase is not None:
                first, _, rest = name.partition("/")
                if first == rebase[0]:
                    name = rebase[1] + ("/" + rest if rest else "")
            parts = _safe_parts(name)
            if not parts:
                continue
            parent = _ensure_dirs(dest, parts[:-1])
            target = os.path.join(parent, parts[-1])
            try:
                existing = os.lstat(target)
            except FileNotFoundError:
                existing = None
            if existing is not None and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
                if stat.S_ISDIR(existing.st_mode):
                    raise StatusError(1, f"cannot overwrite directory {target!r} with non-directory")
                os.unlink(target)
            if m.isdir():
                if existing is None or not stat.S_ISDIR(existing.st_mode):
                    os.mkdir(target, 0o700)
                dirs.append((target, m))
                continue
            if m.issym():
                os.symlink(m.linkname, target)
            elif m.islnk():
                link_parts = _safe_parts(m.linkname)
                if rebase is not None and link_parts and link_parts[0] == rebase[0]:
                    link_parts[0] = rebase[1]
                src = os.path.join(dest, *link_parts)
                os.link(src, target, follow_symlinks=False)
            elif m.isfile():
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    src_f = tf.extractfile(m)
                    assert src_f is not None
                    while True:
                        chunk = src_f.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                os.mknod(target, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
            else:
                continue
            if not m.issym():
                os.chmod(target, m.mode & 0o7777)
            os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
        for path, m in reversed(dirs):
            os.chmod(path, m.mode & 0o7777)
            os.utime(path, (m.mtime, m.mtime))


def _stat_header(value: str) -> dict[str, Any]:
    try:
        return json.loads(base64.b64decode(value)) if value else {}
    except (ValueError, TypeError):
        return {}


def _from_container(cli: Cli, ctr: str, src: str, dst: str, quiet: bool, follow: bool) -> int:
    from berth.units import human_size

    client = cli.client
    rebase_name = ""
    if follow:
        try:
            head = client.request("HEAD", _cpath(ctr, "archive"), {"path": src})
            st = _stat_header(head.header("x-docker-container-path-stat"))
            if int(st.get("mode") or 0) & (1 << 27):  # os.ModeSymlink
                target = str(st.get("linkTarget") or "")
                if not target.startswith("/"):
                    target = os.path.join(os.path.dirname(src), target)
                rebase_name = os.path.basename(src.rstrip("/"))
                src = target
        except DaemonError:
            pass
    resp = client.request("GET", _cpath(ctr, "archive"), {"path": src})
    if dst == "-":
        from berth.cli.pump import write_all

        cli.stdout.flush()
        for piece in resp.iter_raw():
            write_all(1, piece)
        return 0
    st = _stat_header(resp.header("x-docker-container-path-stat"))
    src_is_dir = bool(int(st.get("mode") or 0) & (1 << 31))
    src_base = os.path.basename(src.rstrip("/")) or "/"
    if src.endswith("/.") or src == ".":
        src_base = ""
    dst_abs = os.path.abspath(dst)
    reader = _CountingReader(resp.iter_raw())
    rebase: tuple[str, str] | None = None
    try:
        dst_st = os.stat(dst_abs)
        dst_exists, dst_is_dir = True, stat.S_ISDIR(dst_st.st_mode)
    except FileNotFoundError:
        dst_exists, dst_is_dir = False, False
    if dst_exists and dst_is_dir:
        target_dir = dst_abs
        if rebase_name:
            rebase = (src_base, rebase_name)
    else:
        if dst.endswith("/") and not dst_exists:
            raise StatusError(1, f"destination directory {dst_abs} does not exist")
        if dst_exists and src_is_dir:
            raise StatusError(1, "cannot copy a directory to a file")
        parent = os.path.dirname(dst_abs)
        if not os.path.isdir(parent):
            raise StatusError(1, f"destination directory {parent} does not exist")
        target_dir = parent
        rebase = (src_base, os.path.basename(dst_abs))
    extract(reader, target_dir, rebase)
    if not quiet:
        cli.err(f"Successfully copied {human_size(reader.total, 3)} to {dst_abs}")
    return 0


def _tar_pieces(src: str, arcname: str):
    """A tar of src (root entry named arcname), produced in pieces as it is written."""
    import io

    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            data = bytes(b)  # type: ignore[call-overload]
            self.chunks.append(data)
            return len(data)

    sink = Sink()
    tf = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def walk(path: str, name: str):
        tf.add(path, arcname=name, recursive=False)
        if os.path.isdir(path) and not os.path.islink(path):
            for entry in sorted(os.listdir(path)):
                yield from walk(os.path.join(path, entry), f"{name}/{entry}")
        if sink.chunks:
            out = b"".join(sink.chunks)
            sink.chunks.clear()
            yield out

    yield from walk(src, arcname)
    tf.close()
    if sink.chunks:
        yield b"".join(sink.chunks)


def _to_container(cli: Cli, src: str, ctr: str, dst: str, quiet: bool, archive: bool, follow: bool) -> int:
    from berth.units import human_size

    client = cli.client
    try:
        head = client.request("HEAD", _cpath(ctr, "archive"), {"path": dst})
        dst_st = _stat_header(head.header("x-docker-container-path-stat"))
        dst_exists = True
    except DaemonNotFound:
        dst_st, dst_exists = {}, False
    dst_is_dir = bool(int(dst_st.get("mode") or 0) & (1 << 31))
    params: dict[str, object] = {"noOverwriteDirNonDir": True, "copyUIDGID": True if archive else None}
    if src == "-":
        params["path"] = dst
        body = iter(lambda: cli.stdin.buffer.read(1 << 20), b"")
        client.request("PUT", _cpath(ctr, "archive"), params, body=body,
                       headers={"Content-Type": "text/plain"}).read()
        return 0
    local = os.path.abspath(src)
    if follow and os.path.islink(local):
        local = os.path.realpath(local)
    if not os.path.lexists(local):
        raise StatusError(1, f"lstat {local}: no such file or directory")
    src_base = os.path.basename(src.rstrip("/")) or "."
    if dst_exists and dst_is_dir:
        put_dir, arcname = dst, src_base
    else:
        if dst.endswith("/"):
            raise StatusError(1, f'Error response from daemon: Could not find the file {dst} in container {ctr}')
        if dst_exists and os.path.isdir(local):
            raise StatusError(1, "cannot copy directory to a file")
        put_dir, arcname = os.path.dirname(dst.rstrip("/")) or "/", os.path.basename(dst.rstrip("/"))
    params["path"] = put_dir
    total = 0

    def counted():
        nonlocal total
        for piece in _tar_pieces(local, arcname):
            total += len(piece)
            yield piece

    client.request("PUT", _cpath(ctr, "archive"), params, body=counted(),
                   headers={"Content-Type": "text/plain"}).read()
    if not quiet:
        cli.err(f"Successfully copied {human_size(total, 3)} to {ctr}:{dst}")
    return 0


def cp(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\t" + path + " [OPTIONS] SRC_PATH|- "
               "CONTAINER:DEST_PATH", [
                   Flag("archive", "a", BOOL, help="Archive mode (copy all uid/gid information)"),
                   Flag("follow-link", "L", BOOL, help="Always follow symbol link in SRC_PATH"),
                   Flag("quiet", "q", BOOL, help="Suppress progress output during copy. Progress output is "
                                                 "automatically suppressed if no terminal is attached"),
               ], argv, "Copy files/folders between a container and the local filesystem", exact=2)
    if p is None:
        return 0
    o, args = p
    # without -q, progress is shown only when stdout is a terminal (docker's rule)
    quiet = bool(o.quiet) if o.changed("quiet") else not cli.is_tty_out()
    src_ctr, src_path = split_arg(args[0])
    dst_ctr, dst_path = split_arg(args[1])
    if not src_path:
        raise StatusError(1, "source can not be empty")
    if not dst_path:
        raise StatusError(1, "destination can not be empty")
    if src_ctr and dst_ctr:
        raise StatusError(1, "copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise StatusError(1, "must specify at least one container source")
    if src_ctr:
        return _from_container(cli, src_ctr, src_path, dst_path, quiet, bool(o.follow_link))
    return _to_container(cli, src_path, dst_ctr, dst_path, quiet, bool(o.archive), bool(o.follow_link))
