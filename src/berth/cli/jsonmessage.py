"""Render a JSON-message stream (pull, push, load, import, build) as docker's jsonmessage does:
on a terminal, one line per layer id redrawn in place with cursor movement; otherwise plain lines,
skipping the progress-bar updates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from berth.units import format_duration, human_size


class JSONMessageError(Exception):
    """An in-band `errorDetail`: the command fails with its message."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def rfc3339_nano_fixed(ns: int) -> str:
    """Go's "2006-01-02T15:04:05.000000000Z07:00" in local time."""
    sec, frac = divmod(ns, 10**9)
    t = time.localtime(sec)
    off = t.tm_gmtoff or 0
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}" + zone


def progress_string(p: dict[str, object], width: int, now: float | None = None) -> str:
    current = int(p.get("current") or 0)  # type: ignore[call-overload]
    total = int(p.get("total") or 0)  # type: ignore[call-overload]
    units_name = str(p.get("units") or "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}" if not units_name else f"{current} {units_name}"
    percentage = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    numbers = ""
    if p.get("hidecounts"):
        pass
    elif not units_name:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units_name}"
        if current > total:
            numbers = f"{current} {units_name}"
    left_box = ""
    start = int(p.get("start") or 0)  # type: ignore[call-overload]
    if width > 50 and current > 0 and start > 0 and percentage < 50:
        now = time.time() if now is None else now
        per_entry_ns = int((now - start) * 10**9) // current
        left_ns = (total - current) * per_entry_ns
        left_box = " " + format_duration(round(left_ns / 10**9) * 10**9)
    return bar + numbers + left_box


class Display:
    """Feeds messages one by one; `write` receives text (already with escape sequences on a TTY)."""

    def __init__(self, write: Callable[[str], None], is_terminal: bool, width: int = 200,
                 aux: Callable[[dict[str, object]], None] | None = None) -> None:
        self.write = write
        self.tty = is_terminal
        self.width = width
        self.aux = aux
        self.ids: dict[str, int] = {}

    def feed(self, jm: dict[str, object]) -> None:
        if jm.get("aux") is not None:
            if self.aux is not None:
                self.aux(jm)
            return
        jid = str(jm.get("id") or "")
        progress = jm.get("progressDetail")
        diff = 0
        if jid and (progress is not None or jm.get("progress")):
            line = self.ids.get(jid)
            if line is None:
                line = len(self.ids)
                self.ids[jid] = line
                if self.tty:
                    self.write("\n")
            diff = len(self.ids) - line
            if self.tty and diff:
                self.write(f"\x1b[{diff}A")
        else:
            self.ids = {}
        try:
            self._display(jm)
        finally:
            if jid and self.tty and diff:  # aec.Down(0) writes nothing
                self.write(f"\x1b[{diff}B")

    def _display(self, jm: dict[str, object]) -> None:
        err = jm.get("errorDetail")
        if err is not None:
            msg = err.get("message", "") if isinstance(err, dict) else str(err)
            code = err.get("code", 0) if isinstance(err, dict) else 0
            raise JSONMessageError(str(msg), int(code or 0))
        progress = jm.get("progressDetail")
        stream = str(jm.get("stream") or "")
        status = str(jm.get("status") or "")
        endl = ""
        pstr = progress_string(progress, self.width) if isinstance(progress, dict) else ""
        if self.tty and not stream and progress is not None:
            self.write("\x1b[2K\r")
            endl = "\r"
        elif progress is not None and pstr:
            return
        out = []
        if jm.get("timeNano"):
            out.append(rfc3339_nano_fixed(int(jm["timeNano"])) + " ")  # type: ignore[call-overload]
        elif jm.get("time"):
            out.append(rfc3339_nano_fixed(int(jm["time"]) * 10**9) + " ")  # type: ignore[call-overload]
        if jm.get("id"):
            out.append(f"{jm['id']}: ")
        if jm.get("from"):
            out.append(f"(from {jm['from']}) ")
        if progress is not None and self.tty:
            out.append(f"{status} {pstr}{endl}")
        elif jm.get("progress"):
            out.append(f"{status} {jm['progress']}{endl}")
        elif stream:
            out.append(f"{stream}{endl}")
        else:
            out.append(f"{status}{endl}\n")
        self.write("".join(out))


def display_stream(messages: Iterable[object], write: Callable[[str], None], is_terminal: bool, width: int = 200,
                   aux: Callable[[dict[str, object]], None] | None = None) -> None:
    """Render every message; raises JSONMessageError on the first `errorDetail`."""
    d = Display(write, is_terminal, width, aux)
    for jm in messages:
        if isinstance(jm, dict):
            d.feed(jm)
