"""Layer tars built entry by entry, including the hostile set (names, links, sizes, truncation)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, uid: int = 0,
          gid: int = 0, link: str = "", mtime: int = 1_600_000_000, dev: tuple[int, int] = (0, 0),
          xattrs: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
        ti.size = len(data)
    if xattrs:
        ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
    return ti, data


def build(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


def _huge_size() -> bytes:
    """A header claiming a 1 TiB file (GNU base-256 size), followed by a few bytes."""
    ti = tarfile.TarInfo("huge")
    ti.size = 1 << 40
    hdr = ti.tobuf(format=tarfile.GNU_FORMAT)
    return hdr + b"x" * 512 + bytes(1024)


def _truncated() -> bytes:
    data = build([entry("a/", tarfile.DIRTYPE, mode=0o755), entry("a/big", data=b"z" * 100_000)])
    return data[:50_000]


def _bad_checksum() -> bytes:
    data = bytearray(build([entry("ok", data=b"1"), entry("second", data=b"2")]))
    data[1024 + 10] ^= 0x55  # flip a byte in the second entry's header (after PAX + first file)
    return bytes(data)


# name -> (tar bytes factory, expected error fragment); every one must be refused with nothing written
# outside the target and the entry named in the message.
HOSTILE: dict[str, tuple[Callable[[str], bytes], str]] = {
    "dotdot": (lambda out: build([entry("../escape", data=b"x")]), "../escape: path escapes the root"),
    "dotdot-deep": (lambda out: build([entry("a/../../escape", data=b"x")]), "a/../../escape: path escapes"),
    "absolute": (lambda out: build([entry(out + "/abs", data=b"x")]), "absolute path"),
    "symlink-relative-out": (lambda out: build([entry("l", tarfile.SYMTYPE, link="../../../../../" + out.lstrip("/")),
                                                entry("l/pwned", data=b"x")]), "l: invalid symlink"),
    "hardlink-out": (lambda out: build([entry("h", tarfile.LNKTYPE, link="../../../" + out.lstrip("/") + "/sentinel")]),
                     "h: "),
    "hardlink-abs-out": (lambda out: build([entry("h", tarfile.LNKTYPE, link=out + "/sentinel")]), "absolute path"),
    "hardlink-dir": (lambda out: build([entry("d/", tarfile.DIRTYPE, mode=0o755),
                                        entry("h", tarfile.LNKTYPE, link="d")]), "h: hard link to a directory"),
    "huge-size": (lambda out: _huge_size(), "huge: size 1099511627776 is larger than the free space"),
    "long-name": (lambda out: build([entry("d/" + "n" * 300, data=b"x")]), "file name longer than 255 bytes"),
    "long-path": (lambda out: build([entry("/".join(["abcdefgh"] * 600), data=b"x")]), "path longer than 4095"),
    "truncated": (lambda out: _truncated(), "a/big: unexpected end of archive"),
    "bad-checksum": (lambda out: _bad_checksum(), "bad checksum"),
    "bare-whiteout": (lambda out: build([entry("d/.wh.", data=b"")]), "d/.wh.: invalid whiteout"),
    "sparse": (lambda out: build([entry("s", b"S", data=b"")]), "sparse"),
}


def confined_writes(out: str) -> list[tuple[str, bytes]]:
    """Layers that are *accepted* but must land inside the root: absolute symlinks written through
    (chroot semantics, as Docker's chrootarchive), and links replaced rather than written through."""
    return [
        ("abs-symlink-write-through", build([entry("evil", tarfile.SYMTYPE, link=out),
                                             entry("evil/pwned", data=b"inside")])),
        ("symlink-replaced", build([entry("s", tarfile.SYMTYPE, link=out + "/sentinel"),
                                    entry("s", data=b"replaced")])),
        ("hardlink-replaced", build([entry("victim", data=b"original"), entry("h", tarfile.LNKTYPE, link="victim"),
                                     entry("h", data=b"replaced")])),
        ("parent-symlink-dotdot", build([entry("x", tarfile.SYMTYPE, link="/"), entry("x/pwned2", data=b"in")])),
    ]
