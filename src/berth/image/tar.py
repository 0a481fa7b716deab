"""A streaming tar reader for layers (ustar, GNU long names, PAX with xattrs), written for speed and
strictness: it reads headers straight from a byte buffer, validates checksums, and reports a truncated
or corrupt stream with the name of the entry it was in. Writing tars stays with `tarfile` (see writer.py).

The reader never touches the file system; `apply.py` decides what an entry means.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator

from berth.errors import InvalidArgument

BLOCK = 512
REGTYPE, AREGTYPE, LNKTYPE, SYMTYPE = b"0", b"\0", b"1", b"2"
CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE, CONTTYPE = b"3", b"4", b"5", b"6", b"7"
GNU_LONGNAME, GNU_LONGLINK, PAX_LOCAL, PAX_GLOBAL, GNU_SPARSE = b"L", b"K", b"x", b"g", b"S"
_ZERO_BLOCK = bytes(BLOCK)
_META_LIMIT = 1 << 20  # a long name or PAX block larger than this is hostile, not a file name
_CHUNK = 1 << 20


class TarError(InvalidArgument):
    """A corrupt, truncated or unsupported tar stream (HTTP 400 when it comes from a client)."""


class Entry:
    __slots__ = ("devmajor", "devminor", "gid", "linkname", "mode", "mtime_ns", "name", "size", "type", "uid",
                 "xattrs")

    def __init__(self) -> None:
        self.name = ""
        self.linkname = ""
        self.type = REGTYPE
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0
        self.mtime_ns = 0
        self.devmajor = 0
        self.devminor = 0
        self.xattrs: dict[str, bytes] = {}

    def is_file(self) -> bool:
        return self.type in (REGTYPE, AREGTYPE, CONTTYPE)

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, type={self.type!r}, size={self.size})"


def _num(field: bytes, what: str, name: str) -> int:
    """A numeric header field: NUL/space-terminated octal, or GNU base-256 (high bit set)."""
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)  # the common case: "0000644\0"
    except ValueError:
        pass
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise TarError(f"{name or 'tar header'}: negative {what}")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    s = field.split(b"\0", 1)[0].strip(b" ")
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise TarError(f"{name or 'tar header'}: invalid {what} field {s[:16]!r}") from None


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class TarReader:
    """Iterate entries of a tar stream given as a `read(n) -> bytes` function (b"" at EOF).

    After each yielded entry the caller may consume its data with `copy_to_fd`, `read_data` or not at
    all (it is skipped). `end_marker` tells whether the archive ended with the two zero blocks."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current entry not yet consumed
        self._pad = 0
        self._eof = False
        self.current = ""
        self.end_marker = False
        self._global: dict[str, str] = {}

    # -- buffer ---------------------------------------------------------------------------------------
    def _more(self, want: int) -> bool:
        """Make at least `want` bytes available; False at EOF."""
        while len(self._buf) - self._pos < want:
            if self._eof:
                return False
            chunk = self._read(max(_CHUNK, want))
            if not chunk:
                self._eof = True
                return False
            self._buf = self._buf[self._pos:] + chunk if self._pos < len(self._buf) else chunk
            self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        if not self._more(n):
            raise TarError(f"{self.current or 'tar stream'}: unexpected end of archive (truncated)")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def _skip(self, n: int) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail == 0 and not self._more(1):
                raise TarError(f"{self.current or 'tar stream'}: unexpected end of archive (truncated)")
            k = min(n, len(self._buf) - self._pos)
            self._pos += k
            n -= k

    # -- data -----------------------------------------------------------------------------------------
    def copy_to_fd(self, fd: int) -> None:
        """Write the current entry's data to `fd`."""
        n = self._left
        while n > 0:
            if self._pos >= len(self._buf) and not self._more(1):
                raise TarError(f"{self.current}: unexpected end of archive (truncated)")
            k = min(n, len(self._buf) - self._pos)
            mv = memoryview(self._buf)[self._pos:self._pos + k]
            while mv:
                w = os.write(fd, mv)
                mv = mv[w:]
            self._pos += k
            n -= k
        self._left = 0

    def iter_data(self) -> Iterator[memoryview]:
        """The current entry's data in chunks (views valid until the next call)."""
        n = self._left
        while n > 0:
            if self._pos >= len(self._buf) and not self._more(1):
                raise TarError(f"{self.current}: unexpected end of archive (truncated)")
            k = min(n, len(self._buf) - self._pos)
            yield memoryview(self._buf)[self._pos:self._pos + k]
            self._pos += k
            n -= k
            self._left = n

    def read_data(self, limit: int = _META_LIMIT) -> bytes:
        if self._left > limit:
            raise TarError(f"{self.current}: entry of {self._left} bytes is too large to read in memory")
        b = self._take(self._left)
        self._left = 0
        return b

    def drain(self) -> None:
        """Read the stream to its end (so a digest over it covers every byte, padding included)."""
        self._buf, self._pos = b"", 0
        while not self._eof:
            if not self._read(_CHUNK):
                self._eof = True

    # -- entries --------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        while True:
            if self._left or self._pad:
                self._skip(self._left + self._pad)
                self._left = self._pad = 0
            if not self._more(BLOCK):
                if len(self._buf) - self._pos:
                    raise TarError(f"{self.current or 'tar stream'}: unexpected end of archive (truncated)")
                return  # EOF on a block boundary: accepted without the end marker, as Go's archive/tar does
            hdr = self._buf[self._pos:self._pos + BLOCK]
            self._pos += BLOCK
            if hdr == _ZERO_BLOCK:
                self.end_marker = True
                return
            e = self._parse(hdr)
            self._left = e.size
            self._pad = (-e.size) % BLOCK
            if e.type in (GNU_LONGNAME, GNU_LONGLINK):
                data = self.read_data()
                value = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if e.type == GNU_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue
            if e.type in (PAX_LOCAL, PAX_GLOBAL):
                recs = self._pax(self.read_data())
                if e.type == PAX_GLOBAL:
                    self._global.update(recs)
                else:
                    pax.update(recs)
                continue
            if e.type == GNU_SPARSE or any(k.startswith("GNU.sparse.") for k in pax):
                raise TarError(f"{e.name}: sparse files are not supported in layers")
            if long_name is not None:
                e.name = long_name
            if long_link is not None:
                e.linkname = long_link
            if pax or self._global:
                self._apply_pax(e, {**self._global, **pax})
                self._left = e.size
                self._pad = (-e.size) % BLOCK
            long_name = long_link = None
            pax = {}
            self.current = e.name
            yield e

    def _parse(self, hdr: bytes) -> Entry:
        name = _str(hdr[0:100])
        chk = _num(hdr[148:156], "checksum", name)
        unsigned = sum(hdr) - sum(hdr[148:156]) + 256
        if chk != unsigned:
            signed = sum((b - 256 if b > 127 else b) for b in hdr[:148] + b" " * 8 + hdr[156:])
            if chk != signed:
                raise TarError(f"{self.current or 'tar stream'}: corrupt tar header after this entry (bad checksum)"
                               if self.current else "corrupt tar header (bad checksum)")
        e = Entry()
        if hdr[257:263] == b"ustar\x00" and hdr[345] != 0:
            prefix = _str(hdr[345:500])
            if prefix:
                name = prefix + "/" + name
        e.name = name
        e.mode = _num(hdr[100:108], "mode", name)
        e.uid = _num(hdr[108:116], "uid", name)
        e.gid = _num(hdr[116:124], "gid", name)
        e.size = _num(hdr[124:136], "size", name)
        e.mtime_ns = _num(hdr[136:148], "mtime", name) * 1_000_000_000
        t = hdr[156:157]
        e.type = t
        e.linkname = _str(hdr[157:257])
        if t in (CHRTYPE, BLKTYPE):
            e.devmajor = _num(hdr[329:337], "devmajor", name)
            e.devminor = _num(hdr[337:345], "devminor", name)
        if t in (LNKTYPE, SYMTYPE, DIRTYPE, CHRTYPE, BLKTYPE, FIFOTYPE):
            e.size = 0 if t != LNKTYPE else e.size  # these carry no data (a hard link may in old tars: skipped)
        if t == DIRTYPE or (t in (REGTYPE, AREGTYPE) and name.endswith("/")):
            e.type = DIRTYPE
        if t in (GNU_LONGNAME, GNU_LONGLINK, PAX_LOCAL, PAX_GLOBAL) and e.size > _META_LIMIT:
            raise TarError(f"{self.current or 'tar stream'}: tar metadata block of {e.size} bytes is too large")
        return e

    def _pax(self, data: bytes) -> dict[str, str]:
        recs: dict[str, str] = {}
        pos = 0
        while pos < len(data):
            if data[pos] == 0:
                break
            sp = data.find(b" ", pos)
            if sp < 0:
                raise TarError(f"{self.current or 'tar stream'}: corrupt PAX header")
            try:
                length = int(data[pos:sp])
            except ValueError:
                raise TarError(f"{self.current or 'tar stream'}: corrupt PAX header") from None
            if length <= sp - pos or pos + length > len(data):
                raise TarError(f"{self.current or 'tar stream'}: corrupt PAX header")
            rec = data[sp + 1:pos + length - 1]
            k, eq, v = rec.partition(b"=")
            if not eq:
                raise TarError(f"{self.current or 'tar stream'}: corrupt PAX record")
            key = k.decode("utf-8", "surrogateescape")
            if key.startswith(("SCHILY.xattr.", "LIBARCHIVE.xattr.")):
                recs[key] = base64.b64encode(v).decode()  # xattr values are binary: keep them exactly
            else:
                recs[key] = v.decode("utf-8", "surrogateescape")
            pos += length
        return recs

    def _apply_pax(self, e: Entry, recs: dict[str, str]) -> None:
        for key, v in recs.items():
            try:
                if key == "path":
                    e.name = v
                elif key == "linkpath":
                    e.linkname = v
                elif key == "size":
                    e.size = int(v)
                elif key == "uid":
                    e.uid = int(v)
                elif key == "gid":
                    e.gid = int(v)
                elif key == "mtime":
                    sec, _, frac = v.partition(".")
                    e.mtime_ns = int(sec) * 1_000_000_000 + (int((frac + "000000000")[:9]) if frac else 0)
                elif key.startswith("SCHILY.xattr."):
                    e.xattrs[key[len("SCHILY.xattr."):]] = base64.b64decode(v)
                elif key.startswith("LIBARCHIVE.xattr."):
                    from urllib.parse import unquote

                    raw = base64.b64decode(v)
                    e.xattrs[unquote(key[len("LIBARCHIVE.xattr."):])] = base64.b64decode(raw + b"==")
            except ValueError:
                raise TarError(f"{e.name}: invalid PAX value for {key}") from None
        if e.size < 0:
            raise TarError(f"{e.name}: negative size")
        if e.type == DIRTYPE or e.type in (SYMTYPE, CHRTYPE, BLKTYPE, FIFOTYPE):
            e.size = 0
