"""Human units as docker prints and parses them (go-units, Go's time and strconv formatting)."""

from __future__ import annotations

DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_BIN_MUL = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DEC_MUL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def go_g(value: float, precision: int) -> str:
    """Go's `%.<p>g`: like C's, but Go prints exponents with at least two digits (as C does)."""
    return f"{value:.{precision}g}"


def _scale(size: float, base: float, names: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(names) - 1:
        size /= base
        i += 1
    return size, names[i]


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `%.<p>g` ("1.98MB", "796kB")."""
    value, unit = _scale(float(size), 1000.0, DECIMAL)
    return go_g(value, precision) + unit


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("1.5MiB")."""
    value, unit = _scale(float(size), 1024.0, BINARY)
    return go_g(value, 4) + unit


def _parse_size(text: str, table: dict[str, int]) -> int:
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] != " ":
        num, sfx = text[: sep + 1], text[sep + 1:]
    else:
        num, sfx = text[:sep], text[sep + 1:]
    try:
        size = float(num)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax') from None
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    if low[0] == "b":
        if len(low) > 1:
            raise ValueError(f"invalid suffix: '{low}'")
        return int(size)
    mul = table.get(low[0])
    if mul is None or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{low}'")
    return int(size * mul)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "10m" = 10 MiB; the b/ib suffixes are optional, case-insensitive."""
    return _parse_size(text, _BIN_MUL)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize (decimal units)."""
    return _parse_size(text, _DEC_MUL)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration ("Less than a second", "About a minute", "3 hours", "2 weeks")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_DUR_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
              "h": 3600 * 10**9}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds ("1h2m3.5s", "300ms", "-1.5h")."""
    orig = text
    err = ValueError(f'time: invalid duration "{orig}"')
    neg = False
    if text[:1] in ("-", "+"):
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise err
    total = 0.0
    while text:
        i = 0
        while i < len(text) and (text[i].isdigit() or text[i] == "."):
            i += 1
        num = text[:i]
        if not num or num == ".":
            raise err
        text = text[i:]
        j = 0
        while j < len(text) and not (text[j].isdigit() or text[j] == "."):
            j += 1
        unit = text[:j]
        text = text[j:]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if unit not in _DUR_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(num) * _DUR_UNITS[unit]
    ns = round(total)
    return -ns if neg else ns


def format_duration(ns: int) -> str:
    """Go's time.Duration.String ("1m30s", "1.5s", "300ms", "0s")."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 10**9:
        if u < 1000:
            s = f"{u}ns"
        elif u < 10**6:
            s = _trim(u / 1000) + "µs"
        else:
            s = _trim(u / 10**6) + "ms"
    else:
        h, rem = divmod(u, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        sec = _trim(rem / 10**9) + "s"
        s = (f"{h}h{m}m" if h else (f"{m}m" if m else "")) + sec
    return ("-" if neg else "") + s


def _trim(x: float) -> str:
    text = f"{x:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_cpus(text: str) -> int:
    """docker's --cpus: a rational number of CPUs, in nano-CPUs ("1.5" -> 1500000000)."""
    from fractions import Fraction

    try:
        value = Fraction(text.strip()) if text.strip() == text else None
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None:
        raise ValueError(f"failed to parse {text} as a rational number")
    nano = value * 10**9
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)
