"""The local terminal: raw mode (always restored), window size, and docker's detach-key escape."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def size(fd: int = 1) -> tuple[int, int]:
    """(height, width) of the terminal on fd, or (0, 0) when it is not one (docker's GetTtySize)."""
    if not is_tty(fd):
        return 0, 0
    try:
        cols, rows = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return rows, cols


class RawMode:
    """Put a terminal in raw mode for the duration of a `with` block (restored even on errors)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> RawMode:
        import termios
        import tty

        try:
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            self.saved = None
        return self

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()


def parse_detach_keys(text: str) -> bytes:
    """moby/term ToBytes: "ctrl-p,ctrl-q", "ctrl-@", "a,b"; raises ValueError on anything else."""
    out = bytearray()
    for key in text.split(","):
        if len(key) != 1:
            k = key.strip().lower()
            if not k.startswith("ctrl-") or len(k) != 6:
                raise ValueError(f"Unknown character: '{key}'")
            c = k[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c) - 64)
            else:
                raise ValueError(f"Unknown character: '{key}'")
        else:
            out.append(ord(key))
    return bytes(out)


class EscapeProxy:
    """Watches stdin for the detach sequence. Bytes that might start it are held back until it is
    complete (detach) or broken (flushed), as moby/term's EscapeProxy does."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach requested)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[: self.matched]
                self.matched = 0
                if b == self.keys[0]:
                    self.matched = 1
                    continue
            out.append(b)
        return bytes(out), False
