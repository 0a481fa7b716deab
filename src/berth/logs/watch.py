"""Waking log followers when a log directory changes: inotify (through ctypes) on the event loop.

Why inotify rather than a poll: a follower wakes the moment the writer appends or rotates, and an idle
one costs no reads. Linux allows few inotify instances per user (128 by default), so every follower
on a loop shares one instance and one watch per directory; if inotify is unavailable all the same,
wait() simply sleeps its timeout and the follower polls."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    return _libc


class _Hub:
    """One inotify instance for a loop: watch descriptors shared by every waiter on a directory."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        fd = _lib().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        self.fd = fd
        self.loop = loop
        self.waiters: dict[int, set[asyncio.Event]] = {}
        loop.add_reader(fd, self._on_events)

    def add(self, directory: str, flag: asyncio.Event) -> int:
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), directory)
        self.waiters.setdefault(wd, set()).add(flag)
        return int(wd)

    def remove(self, wd: int, flag: asyncio.Event) -> None:
        flags = self.waiters.get(wd)
        if flags is None:
            return
        flags.discard(flag)
        if not flags:
            del self.waiters[wd]
            _lib().inotify_rm_watch(self.fd, wd)  # fails harmlessly if the directory went away

    def _on_events(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return
        off = 0
        while off + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, off)
            off += _EVENT.size + length
            woken = self.waiters.get(wd, ()) if not mask & IN_Q_OVERFLOW else \
                [f for fs in self.waiters.values() for f in fs]
            for f in woken:
                f.set()
            if mask & IN_IGNORED:  # the directory is gone: its watch with it
                self.waiters.pop(wd, None)

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.close(self.fd)


_hubs: dict[asyncio.AbstractEventLoop, _Hub] = {}


class DirWatch:
    """Changes in one directory, for one follower. Use on the loop that made it; close() when done."""

    def __init__(self, directory: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._flag = asyncio.Event()
        self._wd: int | None = None
        hub = _hubs.get(self._loop)
        try:
            if hub is None:
                hub = _hubs[self._loop] = _Hub(self._loop)
            self._wd = hub.add(directory, self._flag)
        except OSError:  # no inotify, too many instances, or no directory yet: poll
            self._release(hub)

    @property
    def polling(self) -> bool:
        return self._wd is None

    async def wait(self, timeout: float) -> bool:
        """Until something changed in the directory (True) or `timeout` seconds passed (False)."""
        if not self._flag.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._flag.wait()
            except TimeoutError:
                return False
        self._flag.clear()
        return True

    def close(self) -> None:
        hub = _hubs.get(self._loop)
        if hub is not None and self._wd is not None:
            hub.remove(self._wd, self._flag)
            self._wd = None
        self._release(hub)

    def _release(self, hub: _Hub | None) -> None:
        if hub is not None and not hub.waiters:  # the last follower on this loop closes the instance
            _hubs.pop(self._loop, None)
            with contextlib.suppress(OSError, RuntimeError):
                hub.close()
