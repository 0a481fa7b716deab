"""Helpers for the archive tests (no tests here): a small container root, a host sentinel directory
that must never change, tree snapshots to compare, tars built entry by entry, and GNU tar as the
reference for what an archive means."""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from berth.daemon import archive

MTIME = 1_600_000_000


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the kernel's RESOLVE_IN_ROOT, then again with the O_NOFOLLOW walk."""
    monkeypatch.setattr(archive._Root, "use_openat2", request.param == "openat2")
    return str(request.param)


@pytest.fixture
def croot(tmp_path: Path) -> Path:
    """A container root: /etc with passwd and group, a few files, links and directories."""
    r = tmp_path / "root"
    for d in ("etc", "tmp", "data/sub", "home/user", "lib"):
        (r / d).mkdir(parents=True)
    (r / "etc/hostname").write_text("c0ffee\n")
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1001:u:/home/user:/bin/sh\n"
                                  "nobody:x:65534:65534:n:/:/bin/false\n")
    (r / "etc/group").write_text("root:x:0:\nusers:x:100:\nuser:x:1001:\nextra:x:2000:user\n")
    (r / "data/a.txt").write_bytes(b"alpha\n" * 100)
    (r / "data/sub/b.bin").write_bytes(bytes(range(256)) * 40)
    (r / "data/empty").write_bytes(b"")
    os.symlink("a.txt", r / "data/rel-link")
    os.symlink("/etc/hostname", r / "data/abs-link")
    os.symlink("../../../../../../..", r / "data/up")
    os.symlink("/nonexistent/deeper", r / "data/dangling")
    os.link(r / "data/a.txt", r / "data/sub/hard")
    os.symlink("/data", r / "datalink")
    os.chmod(r / "tmp", 0o1777)
    os.chmod(r / "data/sub/b.bin", 0o4755)
    for p in sorted(r.rglob("*"), reverse=True):
        os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    return r


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A host directory outside the container's root, with content a breakout would change."""
    s = tmp_path / "host-sentinel"
    (s / "inner").mkdir(parents=True)
    (s / "secret").write_bytes(b"HOST-SECRET-" + os.urandom(8).hex().encode())
    (s / "inner/file").write_text("untouched\n")
    os.symlink("secret", s / "link")
    return s


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything about a tree that a write could change (the top directory included)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name != "." else dirpath
            if name == "." and dirpath != str(root):
                continue
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what: Any = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                what = sorted(os.listdir(p))
            else:
                what = st.st_rdev
            out[rel] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns, what)
    return out


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """What a copy must keep: type, permissions, owner, whole-second mtime, content or target."""
    out: dict[str, tuple[Any, ...]] = {}
    for rel, (fmt, mode, uid, gid, mtime, what) in snapshot(root).items():
        if rel == ".":
            continue
        out[rel] = (fmt, mode if fmt != stat.S_IFLNK else 0, uid, gid,
                    mtime // 1_000_000_000 if fmt != stat.S_IFDIR else None, what)
    return out


def inode_groups(root: Path) -> list[list[str]]:
    """Names that share an inode (hard links), for trees compared across copies."""
    by: dict[int, list[str]] = {}
    for p in root.rglob("*"):
        st = os.lstat(p)
        if not stat.S_ISDIR(st.st_mode):
            by.setdefault(st.st_ino, []).append(str(p.relative_to(root)))
    return sorted(sorted(v) for v in by.values() if len(v) > 1)


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, uid: int = 0,
          gid: int = 0, link: str = "", mtime: int = MTIME, dev: tuple[int, int] = (0, 0),
          pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = kind, mode, uid, gid, mtime, link
    ti.devmajor, ti.devminor = dev
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
    if pax:
        ti.pax_headers = pax
    return ti, data


def build(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


def gnu_list(data: bytes) -> list[str]:
    """`tar -tv --numeric-owner --full-time`, the reference reading of an archive: one line per entry,
    runs of spaces collapsed."""
    r = subprocess.run(["tar", "-tv", "--numeric-owner", "--full-time", "-f", "-"], input=data, capture_output=True,
                       check=True, env={**os.environ, "TZ": "UTC"})
    return [" ".join(line.split()) for line in r.stdout.decode().splitlines()]


def gnu_extract(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "--numeric-owner", "--same-permissions", "--xattrs", "-f", "-", "-C", str(dest)],
                   input=data, capture_output=True, check=True)


def gnu_create(src: Path, *names: str) -> bytes:
    r = subprocess.run(["tar", "-c", "--numeric-owner", "--xattrs", "-f", "-", "-C", str(src), *names],
                       capture_output=True, check=True)
    return r.stdout


_libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2


def exchange(a: str, b: str) -> None:
    """renameat2(RENAME_EXCHANGE): swap two names atomically (the CVE-2018-15664 race's tool)."""
    if _libc.renameat2(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
