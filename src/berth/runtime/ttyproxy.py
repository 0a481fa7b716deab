"""Relay between our own terminal and a container's pty master (foreground `run`/`exec` with a tty)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any


def copy_winsize(src: int, dst: int) -> None:
    try:
        ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def proxy(master: int, pid: int) -> None:
    """Copy stdin -> master and master -> stdout until the container side closes."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    if os.isatty(stdin):
        copy_winsize(stdin, master)

    def on_winch(_s: int, _f: Any) -> None:
        copy_winsize(stdin, master)

    old = signal.signal(signal.SIGWINCH, on_winch)
    inputs = [master, stdin]
    try:
        with raw_mode(stdin):
            while True:
                try:
                    r, _, _ = select.select(inputs, [], [])
                except InterruptedError:
                    continue
                if master in r:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    os.write(stdout, data)
                if stdin in r:
                    data = os.read(stdin, 65536)
                    if not data:
                        inputs.remove(stdin)
                        os.write(master, b"\x04")  # EOF on the container's terminal
                    else:
                        os.write(master, data)
    finally:
        signal.signal(signal.SIGWINCH, old)
        os.close(master)
