"""Layer application: every entry kind, whiteouts in both modes, and the hostile set."""

import os
import stat
import subprocess
import tarfile

import pytest

from berth.image.apply import ApplyError, apply_tar
from berth.image.stream import DigestMismatch, VerifiedStream
from berth.image.tar import TarError
from berth.store.mount import Mount, mount, unmount
from tests.image import tars
from tests.image.tars import build, entry

pytestmark = pytest.mark.root


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos:self.pos + (1 << 16)]
        self.pos += len(chunk)
        return chunk


def apply_bytes(data: bytes, root: str, mode: str = "flat") -> None:
    apply_tar(_Bytes(data), root, mode)  # type: ignore[arg-type]


def tree(root: str) -> dict[str, tuple]:
    out = {}
    for top, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(top, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    return out


RICH = [
    entry("etc/", tarfile.DIRTYPE, mode=0o755),
    entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o644),
    entry("tmp/", tarfile.DIRTYPE, mode=0o1777),
    entry("usr/bin/", tarfile.DIRTYPE, mode=0o755, mtime=1_000_000_000),
    entry("usr/bin/su", data=b"#!su", mode=0o4755, uid=0, gid=0),
    entry("usr/bin/own", data=b"owned", mode=0o2750, uid=1000, gid=1001),
    entry("usr/bin/link", tarfile.LNKTYPE, link="usr/bin/su"),
    entry("usr/bin/sym", tarfile.SYMTYPE, link="su", uid=1000, gid=1000),
    entry("dev/", tarfile.DIRTYPE, mode=0o755),
    entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
    entry("dev/loopx", tarfile.BLKTYPE, mode=0o660, dev=(7, 200)),
    entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
    entry("x/attr", data=b"x", xattrs={"user.berth": "hello", "trusted.overlay.opaque": "y"}),
]


@pytest.mark.parametrize("mode", ["flat", "overlay"])
def test_every_entry_kind_is_applied_faithfully(tmp_path, mode: str) -> None:
    root = str(tmp_path / "root")
    os.mkdir(root)
    apply_bytes(build(RICH), root, mode)
    st = os.lstat(f"{root}/usr/bin/su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_nlink == 2
    assert os.lstat(f"{root}/usr/bin/link").st_ino == st.st_ino
    own = os.lstat(f"{root}/usr/bin/own")
    assert (own.st_uid, own.st_gid, stat.S_IMODE(own.st_mode)) == (1000, 1001, 0o2750)
    assert os.readlink(f"{root}/usr/bin/sym") == "su"
    assert os.lstat(f"{root}/usr/bin/sym").st_uid == 1000
    assert stat.S_IMODE(os.lstat(f"{root}/tmp").st_mode) == 0o1777
    null = os.lstat(f"{root}/dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISBLK(os.lstat(f"{root}/dev/loopx").st_mode)
    assert stat.S_ISFIFO(os.lstat(f"{root}/run/fifo").st_mode)
    assert os.getxattr(f"{root}/x/attr", "user.berth") == b"hello"
    with pytest.raises(OSError):  # overlay's own attributes are never taken from a layer
        os.getxattr(f"{root}/x/attr", "trusted.overlay.opaque")
    assert os.lstat(f"{root}/usr/bin").st_mtime == 1_000_000_000  # dir mtimes set after their children
    assert os.lstat(f"{root}/etc/passwd").st_mtime == 1_600_000_000
    assert stat.S_IMODE(os.lstat(f"{root}/run").st_mode) == 0o755  # implied parents, as Docker makes them


def test_matches_gnu_tar_on_rich_layer(tmp_path) -> None:
    data = build([e for e in RICH if not e[0].pax_headers])
    (tmp_path / "l.tar").write_bytes(data)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    apply_bytes(data, str(ours))
    subprocess.run(["tar", "-xpf", str(tmp_path / "l.tar"), "-C", str(theirs), "--same-owner"], check=True)
    assert tree(str(ours)) == tree(str(theirs))


BASE = [
    entry("a/", tarfile.DIRTYPE, mode=0o755), entry("a/x", data=b"x"), entry("a/y", data=b"y"),
    entry("b/", tarfile.DIRTYPE, mode=0o755), entry("b/z", data=b"z"), entry("c", data=b"c"),
    entry("d/", tarfile.DIRTYPE, mode=0o755), entry("d/keep", data=b"k"),
]
TOP = [
    entry(".wh.c", data=b""),
    entry("a/.wh..wh..opq", data=b""), entry("a/new", data=b"n"),
    entry("b/.wh.z", data=b""),
    entry("d/", tarfile.DIRTYPE, mode=0o700),
    entry("e", data=b"same-layer"), entry(".wh.e", data=b""),  # a whiteout never hides its own layer
]
EXPECTED = {"a", "a/new", "b", "d", "d/keep", "e"}


def _names(root: str) -> set[str]:
    return set(tree(root))


def test_whiteouts_flat(tmp_path) -> None:
    root = str(tmp_path / "r")
    os.mkdir(root)
    apply_bytes(build(BASE), root, "flat")
    apply_bytes(build(TOP), root, "flat")
    assert _names(root) == EXPECTED
    assert stat.S_IMODE(os.lstat(f"{root}/d").st_mode) == 0o700


def test_whiteouts_overlay_give_the_same_merged_tree(tmp_path) -> None:
    lower, upper, work, merged = (str(tmp_path / n) for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        os.mkdir(d)
    apply_bytes(build(BASE), lower, "overlay")
    apply_bytes(build(TOP), upper, "overlay")
    c = os.lstat(f"{upper}/c")
    assert stat.S_ISCHR(c.st_mode) and c.st_rdev == 0
    assert os.getxattr(f"{upper}/a", "trusted.overlay.opaque") == b"y"
    mount([Mount("overlay", "overlay", [f"lowerdir={upper}:{lower}"])], merged)
    try:
        assert _names(merged) == EXPECTED
    finally:
        unmount(merged)


@pytest.mark.parametrize("name", sorted(tars.HOSTILE))
@pytest.mark.parametrize("mode", ["flat", "overlay"])
def test_hostile_layers_are_refused_and_nothing_escapes(tmp_path, name: str, mode: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched")
    root = tmp_path / "deep" / "er" / "root"
    root.mkdir(parents=True)
    before = sorted(str(p) for p in tmp_path.rglob("*") if "root" not in p.parts)
    factory, message = tars.HOSTILE[name]
    with pytest.raises((ApplyError, TarError)) as info:
        apply_bytes(factory(str(outside)), str(root), mode)
    assert message in str(info.value)
    after = sorted(str(p) for p in tmp_path.rglob("*") if "root" not in p.parts)
    assert after == before
    assert (outside / "sentinel").read_text() == "untouched"
    assert os.lstat(outside / "sentinel").st_nlink == 1


def test_confined_writes_stay_inside(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched")
    for name, data in tars.confined_writes(str(outside)):
        root = tmp_path / name
        root.mkdir()
        apply_bytes(data, str(root))
        assert sorted(p.name for p in outside.iterdir()) == ["sentinel"], name
        assert (outside / "sentinel").read_text() == "untouched"
    assert (tmp_path / "abs-symlink-write-through" / str(outside).lstrip("/") / "pwned").read_text() == "inside"
    assert (tmp_path / "symlink-replaced" / "s").read_text() == "replaced"
    assert (tmp_path / "hardlink-replaced" / "victim").read_text() == "original"
    assert (tmp_path / "parent-symlink-dotdot" / "pwned2").read_text() == "in"


def test_verified_stream_catches_a_wrong_diff_id(tmp_path) -> None:
    data = build(BASE)
    (tmp_path / "l.tar").write_bytes(data)
    root = tmp_path / "r"
    root.mkdir()
    with open(tmp_path / "l.tar", "rb") as f:
        s = VerifiedStream(f, diff_id="sha256:" + "0" * 64)
        apply_tar(s, str(root), "flat")
        with pytest.raises(DigestMismatch, match="diff_id mismatch"):
            s.verify()
