"""From file trees back to tars: a flat tar of a tree (export, import of a folder), the layer diff of a
container's writable layer (commit, build) with whiteouts, and Docker's change list (`docker diff`).

Overlay: the upper dir *is* the diff; a 0/0 char device is a deleted path (`.wh.<name>` in the tar)
and `trusted.overlay.opaque=y` an opaque dir (`<dir>/.wh..wh..opq`). Copy snapshotter: the active tree
is compared with its parent's full copy (type, mode, owner, size, mtime, link target).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from berth.image.apply import OPAQUE, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX

KIND_MODIFIED, KIND_ADDED, KIND_DELETED = 0, 1, 2


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in names:
        if n.startswith("trusted.overlay.") or n == "system.nfs4_acl":
            continue
        try:
            out["SCHILY.xattr." + n] = os.getxattr(path, n, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            continue
    return out


class TreeWriter:
    """Adds files from disk to a tar (PAX), keeping hard links within the archive as links."""

    def __init__(self, out: BinaryIO) -> None:
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",  # noqa: SIM115
                               errors="surrogateescape")
        self._inodes: dict[tuple[int, int], str] = {}

    def add(self, path: str, arcname: str, st: os.stat_result | None = None) -> None:
        st = st or os.lstat(path)
        ti = tarfile.TarInfo(arcname)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.mtime = st.st_mtime_ns // 1_000_000_000
        ti.uname = ti.gname = ""
        m = st.st_mode
        data: BinaryIO | None = None
        if stat.S_ISREG(m):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._inodes:
                ti.type = tarfile.LNKTYPE
                ti.linkname = self._inodes[key]
            else:
                if st.st_nlink > 1:
                    self._inodes[key] = arcname
                ti.size = st.st_size
                data = open(path, "rb")  # noqa: SIM115 - closed below
        elif stat.S_ISDIR(m):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(m):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(m):
            ti.type = tarfile.FIFOTYPE
        else:
            return  # sockets are not archived (as tar and Docker do)
        ti.pax_headers = _xattrs(path)
        try:
            self.tf.addfile(ti, data)
        finally:
            if data is not None:
                data.close()

    def whiteout(self, arcname: str) -> None:
        ti = tarfile.TarInfo(arcname)
        ti.mode = 0o644
        self.tf.addfile(ti)

    def close(self) -> None:
        self.tf.close()


def _walk(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, full path, lstat) of everything under root, parents before children, sorted."""
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(full), reverse=True)
        except OSError:
            continue
        for n in names:
            r = f"{rel}/{n}" if rel else n
            p = os.path.join(root, r)
            st = os.lstat(p)
            yield r, p, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(r)


def _walk_sorted(root: str) -> list[tuple[str, str, os.stat_result]]:
    return sorted(_walk(root), key=lambda x: x[0].split("/"))


def write_tree(root: str, out: BinaryIO, include_root: bool = False) -> None:
    """A flat tar of everything under `root` (names relative to it, no leading ./)."""
    w = TreeWriter(out)
    for rel, path, st in _walk_sorted(root):
        w.add(path, rel, st)
    w.close()


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lexists_in(lowers: list[str], rel: str) -> bool:
    """Does `rel` exist in the merged view of `lowers` (top first), honouring their whiteouts?"""
    parts = rel.split("/")
    for low in lowers:
        p = os.path.join(low, rel)
        try:
            st = os.lstat(p)
            return not _is_whiteout(st)
        except OSError:
            pass
        # a whiteout or opaque dir above in this layer hides lower layers
        for i in range(1, len(parts) + 1):
            q = os.path.join(low, *parts[:i])
            try:
                qs = os.lstat(q)
            except OSError:
                break
            if _is_whiteout(qs) or (i < len(parts) and not stat.S_ISDIR(qs.st_mode)):
                return False
            if i < len(parts) and stat.S_ISDIR(qs.st_mode) and _is_opaque(q):
                return False
    return False


def overlay_diff(upper: str, out: BinaryIO) -> None:
    """The layer tar of an overlay upper dir."""
    w = TreeWriter(out)
    for rel, path, st in _walk_sorted(upper):
        d, _, base = rel.rpartition("/")
        if _is_whiteout(st):
            w.whiteout(f"{d}/{WHITEOUT_PREFIX}{base}" if d else WHITEOUT_PREFIX + base)
            continue
        w.add(path, rel, st)
        if stat.S_ISDIR(st.st_mode) and _is_opaque(path):
            w.whiteout(f"{rel}/{OPAQUE}")
    w.close()


def overlay_changes(upper: str, lowers: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for rel, path, st in _walk_sorted(upper):
        if _is_whiteout(st):
            out.append({"Path": "/" + rel, "Kind": KIND_DELETED})
            continue
        existed = _lexists_in(lowers, rel)
        out.append({"Path": "/" + rel, "Kind": KIND_MODIFIED if existed else KIND_ADDED})
        if existed and stat.S_ISDIR(st.st_mode) and _is_opaque(path):
            for low in lowers:
                ldir = os.path.join(low, rel)
                if os.path.isdir(ldir) and not os.path.islink(ldir):
                    for n in sorted(os.listdir(ldir)):
                        if not os.path.lexists(os.path.join(path, n)):
                            out.append({"Path": f"/{rel}/{n}", "Kind": KIND_DELETED})
                    break
    return sorted(out, key=lambda c: str(c["Path"]))


def _same(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or a.st_mode != b.st_mode:
        return False
    if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return True
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def tree_changes(new: str, old: str | None) -> list[tuple[str, int]]:
    """(relative path, kind) between two full trees (the copy snapshotter)."""
    changes: dict[str, int] = {}
    new_entries = {rel: (p, st) for rel, p, st in _walk(new)}
    old_entries = {rel: (p, st) for rel, p, st in _walk(old)} if old else {}
    for rel, (p, st) in new_entries.items():
        o = old_entries.get(rel)
        if o is None:
            changes[rel] = KIND_ADDED
        elif not _same(st, o[1], p, o[0]):
            changes[rel] = KIND_MODIFIED
    for rel in old_entries:
        if rel not in new_entries:
            parent = rel.rpartition("/")[0]
            if parent in old_entries and parent not in new_entries:
                continue  # a deleted dir's children are implied
            changes[rel] = KIND_DELETED
    for rel in list(changes):  # parents of a change are modified, as the kernel sees them
        parent = rel.rpartition("/")[0]
        while parent and parent not in changes and parent in new_entries and parent in old_entries:
            changes[parent] = KIND_MODIFIED
            parent = parent.rpartition("/")[0]
    return sorted(changes.items())


def copy_diff(new: str, old: str | None, out: BinaryIO) -> None:
    w = TreeWriter(out)
    for rel, kind in tree_changes(new, old):
        if kind == KIND_DELETED:
            d, _, base = rel.rpartition("/")
            w.whiteout(f"{d}/{WHITEOUT_PREFIX}{base}" if d else WHITEOUT_PREFIX + base)
        else:
            w.add(os.path.join(new, rel), rel)
    w.close()
