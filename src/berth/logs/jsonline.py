"""One json-file log entry, byte for byte as Docker writes it, and back.

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T23:30:00.123456789Z"}

The escaping is moby's `ffjsonWriteJSONBytesAsString` (jsonlog/jsonlogbytes.go), not Python's json:
control bytes other than \\n and \\r become \\u00XX (so a tab is \\u0009), `<`, `>` and `&` are escaped as
\\u003c, \\u003e, \\u0026, U+2028/U+2029 as \\u2028/\\u2029, other valid UTF-8 is written raw, and each byte of
an invalid UTF-8 sequence becomes one \\ufffd. Times are Go's RFC3339Nano in UTC: the fraction loses its
trailing zeros and disappears when zero."""

from __future__ import annotations

import json
import re
import time

STREAMS = {"stdout": 1, "stderr": 2}

_HEX = "0123456789abcdef"
_ESC: dict[str, str] = {chr(c): f"\\u00{_HEX[c >> 4]}{_HEX[c & 15]}" for c in range(0x20)}
_ESC.update({"\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\", "<": "\\u003c", ">": "\\u003e",
             "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
# decode(..., "surrogateescape") turns each undecodable byte into one of U+DC80..U+DCFF: Go's one
# RuneError per bad byte, which moby writes as the six characters \ufffd.
_ESC.update({chr(0xDC00 + b): "\\ufffd" for b in range(0x80, 0x100)})
_ESC_B = {k.encode(): v.encode() for k, v in _ESC.items() if ord(k) < 0x80}

_ASCII_SPECIAL = re.compile(rb'[\x00-\x1f"\\<>&]')
ASCII_SPECIAL_BUT_NEWLINE = re.compile(rb'[\x00-\x09\x0b-\x1f"\\<>&]')  # for many lines at once
_SPECIAL = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\udc80-\udcff]')


def escape(data: bytes) -> bytes:
    """`data` as the inside of a JSON string, escaped as moby escapes it."""
    if data.isascii():
        if _ASCII_SPECIAL.search(data) is None:
            return data  # the common case: one C-level scan and no copy
        return _ASCII_SPECIAL.sub(lambda m: _ESC_B[m.group()], data)
    text = data.decode("utf-8", "surrogateescape")
    return _SPECIAL.sub(lambda m: _ESC[m.group()], text).encode("utf-8")


_sec_cache: tuple[int, bytes] = (-1, b"")
_ns_cache: tuple[int, bytes] = (-1, b"")


def format_time(ns: int) -> bytes:
    """Go's time.RFC3339Nano of a UTC time in nanoseconds since the epoch."""
    global _sec_cache, _ns_cache
    if _ns_cache[0] == ns:  # the entries of one read share their time
        return _ns_cache[1]
    sec, frac = divmod(ns, 1_000_000_000)
    if _sec_cache[0] != sec:  # one strftime per second of output, not per line
        _sec_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode())
    text = _sec_cache[1] + b"Z" if not frac else b"%s.%sZ" % (_sec_cache[1], (b"%09d" % frac).rstrip(b"0"))
    _ns_cache = (ns, text)
    return text


def encode(stream: bytes, escaped_log: bytes, ns: int) -> bytes:
    """A whole entry line (with its trailing newline); `escaped_log` comes from escape()."""
    return b'{"log":"%s","stream":"%s","time":"%s"}\n' % (escaped_log, stream, format_time(ns))


_epoch_cache: dict[str, int] = {}


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_time(s: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with an optional fraction (what Go writes)."""
    base = s[:19]
    sec = _epoch_cache.get(base)
    if sec is None:
        if len(s) < 20 or s[4] != "-" or s[7] != "-" or s[10] not in "Tt" or s[13] != ":" or s[16] != ":":
            raise ValueError(f"bad timestamp {s!r}")
        days = _days_from_civil(int(s[0:4]), int(s[5:7]), int(s[8:10]))
        sec = days * 86400 + int(s[11:13]) * 3600 + int(s[14:16]) * 60 + int(s[17:19])
        if len(_epoch_cache) > 4096:
            _epoch_cache.clear()
        _epoch_cache[base] = sec
    i = 19
    frac = 0
    if s[i] == ".":
        j = i + 1
        while j < len(s) and s[j].isdigit():
            j += 1
        digits = s[i + 1:j][:9]
        frac = int(digits.ljust(9, "0")) if digits else 0
        i = j
    zone = s[i:]
    if zone in ("Z", "z"):
        offset = 0
    elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":":
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
    else:
        raise ValueError(f"bad timestamp {s!r}")
    return (sec - offset) * 1_000_000_000 + frac


def _unsurrogate(text: str) -> bytes:
    # A lone surrogate escape (\ud800) is not UTF-8: Go's decoder reads it as U+FFFD, and so do we.
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text).encode("utf-8")


def decode(line: bytes) -> tuple[int, bytes, int] | None:
    """(stream 1|2, data, time in ns) of one entry line, or None if it is not a stdout/stderr entry."""
    try:
        obj = json.loads(line)
        stream = STREAMS[obj["stream"]]
        ns = parse_time(obj["time"])
        text = obj.get("log", "")
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # a torn or foreign line: skip it rather than end the whole stream
    if not isinstance(text, str):
        return None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = _unsurrogate(text)
    return stream, data, ns
