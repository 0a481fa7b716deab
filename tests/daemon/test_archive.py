"""docker cp's daemon side on a real file system: stat, get and put as moby does them, checked
against GNU tar's reading of the archives and against the trees themselves."""

from __future__ import annotations

import asyncio
import gzip
import io
import lzma
import os
import stat
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from berth.daemon import archive
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from tests.daemon.test_archive_env import (
    MTIME,
    build,
    croot,
    entry,
    gnu_extract,
    gnu_list,
    inode_groups,
    resolver,
    snapshot,
    tree,
)

__all__ = ["croot", "resolver"]  # fixtures used here
pytestmark = pytest.mark.root  # ownership, device nodes

DIR, LNK = archive.MODE_DIR, archive.MODE_SYMLINK


# -- stat --------------------------------------------------------------------------------------------


def test_stat_file_dir_and_modes(croot: Path, resolver: str) -> None:
    st = archive.stat(str(croot), "/etc/hostname", container="c1")
    assert st == {"name": "hostname", "size": 7, "mode": 0o644, "mtime": "2020-09-13T12:26:40Z", "linkTarget": ""}
    assert archive.stat(str(croot), "/data/sub/b.bin")["mode"] == archive.MODE_SETUID | 0o755
    d = archive.stat(str(croot), "/tmp")
    assert d["mode"] == DIR | archive.MODE_STICKY | 0o777 and d["name"] == "tmp"
    assert archive.stat(str(croot), "/")["name"] == "/"
    assert archive.stat(str(croot), "/")["mode"] & DIR
    assert archive.stat(str(croot), "etc/hostname")["name"] == "hostname"  # relative: from /
    assert archive.stat(str(croot), "/etc/../etc/./hostname")["name"] == "hostname"
    assert archive.stat(str(croot), "/etc/.")["name"] == "."
    assert archive.stat(str(croot), "/etc/")["name"] == "etc"
    os.mkfifo(croot / "tmp/fifo")
    os.mknod(croot / "tmp/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(croot / "tmp/null", 0o666)
    assert archive.stat(str(croot), "/tmp/fifo")["mode"] == archive.MODE_NAMED_PIPE | 0o644
    assert archive.stat(str(croot), "/tmp/null")["mode"] == archive.MODE_DEVICE | archive.MODE_CHAR_DEVICE | 0o666


def test_stat_symlinks_describe_themselves_and_resolve_inside_the_root(croot: Path, resolver: str) -> None:
    st = archive.stat(str(croot), "/data/rel-link")
    assert st["mode"] == LNK | 0o777 and st["size"] == len("a.txt") and st["linkTarget"] == "/data/a.txt"
    assert archive.stat(str(croot), "/data/abs-link")["linkTarget"] == "/etc/hostname"
    assert archive.stat(str(croot), "/data/up")["linkTarget"] == "/"  # "../../.." stops at the container's root
    # a dangling link resolves as far as it can (moby's FollowSymlinkInScope)
    assert archive.stat(str(croot), "/data/dangling")["linkTarget"] == "/nonexistent/deeper"
    # intermediate links are followed, inside the root
    assert archive.stat(str(croot), "/data/up/etc/hostname")["size"] == 7
    assert archive.stat(str(croot), "/datalink/a.txt")["size"] == 600
    # a trailing "/" or "/." follows the last link too, as lstat(2) does
    st = archive.stat(str(croot), "/datalink/")
    assert st["mode"] & DIR and st["name"] == "datalink" and st["linkTarget"] == ""


def test_stat_errors_are_moby_s(croot: Path, resolver: str) -> None:
    with pytest.raises(NotFound, match=r"^Could not find the file /nope in container c1$"):
        archive.stat(str(croot), "/nope", container="c1")
    with pytest.raises(NotFound, match="Could not find the file nope/x in container c1"):
        archive.stat(str(croot), "nope/x", container="c1")
    with pytest.raises(NotFound):
        archive.stat(str(croot), "/data/dangling/")  # following a dangling link
    with pytest.raises(InvalidArgument, match=r"^lstat /etc/hostname/: not a directory$"):
        archive.stat(str(croot), "/etc/hostname/")
    os.symlink("loop2", croot / "loop1")
    os.symlink("loop1", croot / "loop2")
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        archive.stat(str(croot), "/loop1/x")
    with pytest.raises(InvalidArgument, match="NUL"):
        archive.stat(str(croot), "/etc/\0x")


# -- get -------------------------------------------------------------------------------------------


def _get(root: Path, path: str) -> tuple[dict, bytes]:
    st, chunks = archive.get(str(root), path)
    return st, b"".join(chunks)


def _names(data: bytes) -> list[str]:
    """Entry names exactly as stored (tarfile strips a directory's trailing slash)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            out.append(m.name + ("/" if m.isdir() else ""))
    return out


def test_get_directory_names_follow_moby_rebase_rules(croot: Path, resolver: str) -> None:
    st, data = _get(croot, "/data")
    assert st["name"] == "data" and st["mode"] & DIR
    assert _names(data) == ["data/", "data/a.txt", "data/abs-link", "data/dangling", "data/empty", "data/rel-link",
                            "data/sub/", "data/sub/b.bin", "data/sub/hard", "data/up"]
    assert _names(_get(croot, "/data/")[1]) == _names(data)
    dot = _names(_get(croot, "/data/.")[1])
    assert dot == ["./", *["./" + n[len("data/"):] for n in _names(data)[1:]]]
    # the root: absolute names ("/", "/data/..."), as moby's rebase of "/" to "" gives
    names = _names(_get(croot, "/")[1])
    assert names[0] == "/" and "/etc/hostname" in names and "/data/sub/b.bin" in names
    # through a link to a directory with a trailing slash: the directory, under the link's name
    assert _names(_get(croot, "/datalink/")[1])[:2] == ["datalink/", "datalink/a.txt"]


def test_get_single_entries_and_links(croot: Path, resolver: str) -> None:
    st, data = _get(croot, "/etc/hostname")
    assert st["size"] == 7
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        [m] = t.getmembers()
        assert (m.name, m.size, m.mode, m.mtime, m.uid, m.uname) == ("hostname", 7, 0o644, MTIME, 0, "")
        assert t.extractfile(m).read() == b"c0ffee\n"  # type: ignore[union-attr]
    # the last link is not followed: the archive holds the link itself
    st, data = _get(croot, "/datalink")
    assert st["linkTarget"] == "/data"
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        [m] = t.getmembers()
        assert m.issym() and m.name == "datalink" and m.linkname == "/data"
    # Go's writer: two zero blocks at the end, no padding to a record
    assert len(data) % 512 == 0 and data.endswith(bytes(1024)) and not data.endswith(bytes(1536))


def test_get_matches_gnu_tar_and_extracts_to_the_same_tree(croot: Path, tmp_path: Path, resolver: str) -> None:
    os.chown(croot / "data/a.txt", 1000, 1001)
    os.utime(croot / "data/a.txt", (MTIME, MTIME))
    os.mkfifo(croot / "data/fifo")
    os.mknod(croot / "data/null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    for p in ("data/fifo", "data/null", "data"):
        os.utime(croot / p, (MTIME, MTIME))
    _, data = _get(croot, "/data")
    listing = "\n".join(gnu_list(data))
    assert "-rw-r--r-- 1000/1001 600 2020-09-13 12:26:40 data/a.txt" in listing
    assert "hrw-r--r-- 1000/1001 0 2020-09-13 12:26:40 data/sub/hard link to data/a.txt" in listing
    assert "lrwxrwxrwx 0/0 0 2020-09-13 12:26:40 data/up -> ../../../../../../.." in listing
    assert "prw-r--r-- 0/0 0 2020-09-13 12:26:40 data/fifo" in listing
    assert "crw------- 0/0 1,3 2020-09-13 12:26:40 data/null" in listing
    assert "-rwsr-xr-x 0/0 10240 2020-09-13 12:26:40 data/sub/b.bin" in listing
    out = tmp_path / "out"
    gnu_extract(data, out)
    assert tree(out / "data") == tree(croot / "data")
    assert inode_groups(out / "data") == inode_groups(croot / "data") == [["a.txt", "sub/hard"]]


def test_get_skips_sockets_and_streams_big_files_in_chunks(croot: Path, tmp_path: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(croot / "data/sock"))
    s.close()
    big = os.urandom(1 << 20) * 5
    (croot / "data/big").write_bytes(big)
    _, chunks = archive.get(str(croot), "/data")
    sizes = []
    out = bytearray()
    for c in chunks:
        sizes.append(len(c))
        out += c
    assert max(sizes) <= (1 << 20) + (256 << 10) + 2048  # streamed, never the whole file at once
    with tarfile.open(fileobj=io.BytesIO(bytes(out))) as t:
        names = t.getnames()
        assert "data/sock" not in names
        assert t.extractfile("data/big").read() == big  # type: ignore[union-attr]


def test_get_keeps_file_capabilities(croot: Path, tmp_path: Path) -> None:
    cap = bytes.fromhex("0000000200200000000000000000000000000000")  # v2: cap_net_raw permitted
    try:
        os.setxattr(croot / "data/a.txt", "security.capability", cap)
    except OSError as e:
        pytest.skip(f"file capabilities unsupported here: {e}")
    _, data = _get(croot, "/data/a.txt")
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        [m] = t.getmembers()
        assert m.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == cap


def test_get_of_a_file_that_vanished_after_the_stat_is_an_empty_archive(croot: Path) -> None:
    st, chunks = archive.get(str(croot), "/etc/hostname")
    os.unlink(croot / "etc/hostname")
    data = b"".join(chunks)
    assert data == bytes(1024) and st["name"] == "hostname"


def test_get_generator_closed_early_releases_its_fds(croot: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    (croot / "data/big").write_bytes(os.urandom(3 << 20))
    _, chunks = archive.get(str(croot), "/data")
    next(chunks)
    chunks.close()
    assert len(os.listdir("/proc/self/fd")) == before


# -- put -------------------------------------------------------------------------------------------


def test_put_extracts_relative_to_the_directory(croot: Path, resolver: str) -> None:
    data = build([entry("new/", tarfile.DIRTYPE, mode=0o750, uid=5, gid=6),
                  entry("new/f.txt", data=b"hello", mode=0o4711, uid=1000, gid=1001),
                  entry("new/link", tarfile.SYMTYPE, link="f.txt", uid=7, gid=8),
                  entry("new/hard", tarfile.LNKTYPE, link="new/f.txt", mode=0o4711, uid=1000, gid=1001),
                  entry("new/fifo", tarfile.FIFOTYPE, mode=0o640),
                  entry("new/null", tarfile.CHRTYPE, mode=0o600, dev=(1, 3)),
                  entry("/abs/x", data=b"abs"),  # absolute names are taken as relative, parents implied
                  entry("./dot", data=b"dot")])
    archive.put(str(croot), "/tmp", [data], container="c1")
    t = croot / "tmp"
    st = os.lstat(t / "new/f.txt")
    assert (t / "new/f.txt").read_bytes() == b"hello"
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o4711, 1000, 1001, MTIME)
    assert os.readlink(t / "new/link") == "f.txt" and os.lstat(t / "new/link").st_uid == 7
    assert os.lstat(t / "new/hard").st_ino == st.st_ino
    assert stat.S_ISFIFO(os.lstat(t / "new/fifo").st_mode) and stat.S_IMODE(os.lstat(t / "new/fifo").st_mode) == 0o640
    assert os.lstat(t / "new/null").st_rdev == os.makedev(1, 3)
    d = os.lstat(t / "new")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, int(d.st_mtime)) == (0o750, 5, 6, MTIME)  # times set last
    assert (t / "abs/x").read_bytes() == b"abs" and stat.S_IMODE(os.lstat(t / "abs").st_mode) == 0o755
    assert (t / "dot").read_bytes() == b"dot"


def test_put_round_trip_keeps_the_tree(croot: Path, tmp_path: Path, resolver: str) -> None:
    os.chown(croot / "data/a.txt", 1000, 1001)
    os.setxattr(croot / "data/empty", "user.note", b"kept")
    os.utime(croot / "data/a.txt", (MTIME, MTIME))
    _, data = _get(croot, "/data")
    other = tmp_path / "other"
    (other / "dest").mkdir(parents=True)
    archive.put(str(other), "/dest", [data])
    assert tree(other / "dest/data") == tree(croot / "data")
    assert inode_groups(other / "dest/data") == [["a.txt", "sub/hard"]]
    # xattrs travel when the client sends them (GNU tar --xattrs)
    from tests.daemon.test_archive_env import gnu_create

    archive.put(str(other), "/dest", [gnu_create(croot, "data/empty")])
    assert os.getxattr(other / "dest/data/empty", "user.note") == b"kept"


def test_put_replaces_files_and_merges_directories(croot: Path, resolver: str) -> None:
    (croot / "tmp/d").mkdir()
    (croot / "tmp/d/keep").write_text("keep")
    (croot / "tmp/f").write_text("old")
    (croot / "tmp/was-dir").mkdir()
    (croot / "tmp/was-dir/inner").write_text("x")
    os.symlink("/etc", croot / "tmp/was-link")
    data = build([entry("d/", tarfile.DIRTYPE, mode=0o700), entry("d/new", data=b"n"), entry("f", data=b"new"),
                  entry("was-dir", data=b"file now"), entry("was-link", data=b"file, not through the link")])
    archive.put(str(croot), "/tmp", [data])
    t = croot / "tmp"
    assert sorted(os.listdir(t / "d")) == ["keep", "new"] and stat.S_IMODE(os.lstat(t / "d").st_mode) == 0o700
    assert (t / "f").read_text() == "new"
    assert (t / "was-dir").read_bytes() == b"file now"
    assert not os.path.islink(t / "was-link") and (t / "was-link").read_bytes() == b"file, not through the link"
    assert (croot / "etc/hostname").read_text() == "c0ffee\n"


def test_put_no_overwrite_dir_non_dir(croot: Path, resolver: str) -> None:
    (croot / "tmp/d").mkdir()
    (croot / "tmp/f").write_text("old")
    with pytest.raises(Conflict, match=r'^cannot overwrite directory "d" with non-directory "/tmp"$'):
        archive.put(str(croot), "/tmp/", [build([entry("d", data=b"x")])], True)
    with pytest.raises(Conflict, match=r'^cannot overwrite non-directory "f" with directory "/tmp"$'):
        archive.put(str(croot), "/tmp", [build([entry("f", tarfile.DIRTYPE)])], True)
    assert (croot / "tmp/d").is_dir() and (croot / "tmp/f").read_text() == "old"
    # the message names the destination after its links are followed
    with pytest.raises(Conflict, match=r'with non-directory "/data"$'):
        archive.put(str(croot), "/datalink", [build([entry("sub", data=b"x")])], True)
    archive.put(str(croot), "/tmp", [build([entry("d", tarfile.DIRTYPE), entry("f", data=b"new")])], True)
    assert (croot / "tmp/f").read_text() == "new"


def test_put_destination_rules(croot: Path, resolver: str) -> None:
    tar1 = build([entry("x", data=b"1")])
    archive.put(str(croot), "/datalink", [tar1])  # a link to a directory is followed
    assert (croot / "data/x").read_bytes() == b"1"
    archive.put(str(croot), "/data/up/tmp", [tar1])  # "up" is "../../.." inside the root: /tmp
    assert (croot / "tmp/x").read_bytes() == b"1"
    with pytest.raises(NotFound, match=r"^Could not find the file /nope/ in container c9$"):
        archive.put(str(croot), "/nope/", [tar1], container="c9")
    with pytest.raises(NotFound):
        archive.put(str(croot), "/data/dangling", [tar1])
    with pytest.raises(InvalidArgument, match=r"^extraction point is not a directory$"):
        archive.put(str(croot), "/etc/hostname", [tar1])
    with pytest.raises(InvalidArgument, match=r"^container rootfs is marked read-only$"):
        archive.put(str(croot), "/tmp", [tar1], read_only=True)


def test_put_accepts_compressed_tars_and_file_objects(croot: Path) -> None:
    data = build([entry("gz", data=b"gzip")])
    archive.put(str(croot), "/tmp", [gzip.compress(data)[:10], gzip.compress(data)[10:]])
    assert (croot / "tmp/gz").read_bytes() == b"gzip"
    archive.put(str(croot), "/tmp", io.BytesIO(lzma.compress(build([entry("xz", data=b"xz")]))))
    assert (croot / "tmp/xz").read_bytes() == b"xz"


def test_put_refuses_corrupt_and_unknown_entries(croot: Path) -> None:
    good = build([entry("ok", data=b"1" * 1000)])
    with pytest.raises(InvalidArgument, match="truncated"):
        archive.put(str(croot), "/tmp", [good[:1200]])
    bad = bytearray(good)
    bad[0] = ord("X")  # breaks the checksum
    with pytest.raises(InvalidArgument, match="checksum"):
        archive.put(str(croot), "/tmp", [bytes(bad)])
    weird = build([entry("odd", b"Z")])
    with pytest.raises(InvalidArgument, match="unhandled tar header type 90"):
        archive.put(str(croot), "/tmp", [weird])


def test_put_ownership_from_headers_or_the_container_user(croot: Path) -> None:
    data = build([entry("d/", tarfile.DIRTYPE, uid=11, gid=12), entry("d/f", data=b"x", uid=13, gid=14),
                  entry("d/l", tarfile.SYMTYPE, link="f", uid=15, gid=16)])

    def owners() -> list[tuple[int, int]]:
        return [(os.lstat(croot / "tmp" / p).st_uid, os.lstat(croot / "tmp" / p).st_gid) for p in ("d", "d/f", "d/l")]

    archive.put(str(croot), "/tmp", [data], copy_uid_gid=False, user="user")
    assert owners() == [(11, 12), (13, 14), (15, 16)]  # copyUIDGID off: the headers' ids
    archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="")
    assert owners() == [(11, 12), (13, 14), (15, 16)]  # no Config.User: the headers' ids too
    cases = {"user": (1000, 1001), "user:extra": (1000, 2000), "1000": (1000, 1001), "12345": (12345, 0),
             "12345:users": (12345, 100), ":77": (0, 77), "nobody:5": (65534, 5)}
    for user, ids in cases.items():
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user=user)
        assert owners() == [ids] * 3, user
    with pytest.raises(InvalidArgument, match='failed to look up user "bob" in container: no matching entries in '
                                              "passwd file"):
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="bob")
    with pytest.raises(InvalidArgument, match='failed to look up group "staff" in container: no matching entries'):
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="user:staff")


def test_put_errors_from_the_file_system_name_the_entry(croot: Path) -> None:
    (croot / "tmp/blocker").write_text("a file where a directory is needed")
    with pytest.raises(BerthError, match="blocker/x: not a directory"):
        archive.put(str(croot), "/tmp", [build([entry("blocker/x", data=b"1")])])
    with pytest.raises(BerthError, match="ghost: no such file or directory"):
        archive.put(str(croot), "/tmp", [build([entry("ghost", tarfile.LNKTYPE, link="missing")])])


def test_async_wrappers_stream_through_the_event_loop(croot: Path, tmp_path: Path) -> None:
    big = os.urandom(3 << 20)
    (croot / "data/big").write_bytes(big)

    async def main() -> None:
        _, body = await archive.get_async(str(croot), "/data/big", container="c")
        data = b"".join([c async for c in body])

        async def feed() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 65536):
                await asyncio.sleep(0)
                yield data[i:i + 65536]

        await archive.put_async(str(croot), "/tmp", feed(), container="c")
        with pytest.raises(NotFound, match=r"in container c$"):
            await archive.get_async(str(croot), "/missing", container="c")

    asyncio.run(main())
    assert (croot / "tmp/big").read_bytes() == big


def test_snapshot_helper_sees_changes(tmp_path: Path) -> None:
    """The sentinel comparisons below would notice a write, a new file, a chmod or a touch."""
    d = tmp_path / "s"
    d.mkdir()
    (d / "f").write_text("x")
    a = snapshot(d)
    for change in (lambda: (d / "f").write_text("y"), lambda: (d / "g").write_text(""),
                   lambda: os.chmod(d / "f", 0o600), lambda: os.utime(d / "f", (1, 1))):
        change()
        b = snapshot(d)
        assert a != b
        a = b
