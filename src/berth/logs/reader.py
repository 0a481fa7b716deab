"""Reading a json-file log: a snapshot of what is written (with tail, since and until), then, to
follow, whatever the writer appends after it, across rotations. Synchronous and blocking: berthd runs
it in a thread (stream.py); tests and tools call read_all().

The rules are moby's (loggerutils/logfile.go): `tail` picks the last N entries over all files first,
counting both streams; then `since` drops entries until the first one at or after it (later ones are
all kept: times need not be monotonic); the first entry after `until` ends the read; compressed files
whose recorded lastTime is before `since` are not even inflated; the stream choice applies last."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from decimal import Decimal

from berth.errors import InvalidArgument
from berth.logs import files, scan
from berth.logs.files import LogFile
from berth.logs.gzfile import isize, last_time
from berth.logs.jsonline import decode

Entry = tuple[int, bytes, int]  # (stream 1 stdout | 2 stderr, data, time in ns since the epoch)

BATCH = 1024  # entries per batch handed across threads


def to_ns(t: float | int | None) -> int | None:
    """Seconds since the epoch as nanoseconds, keeping the decimals a float was written with."""
    if t is None:
        return None
    if isinstance(t, int):
        return t * 1_000_000_000
    return int(Decimal(repr(t)) * 1_000_000_000)


class LogReader:
    """One read of the log at `path`: iterate `snapshot()`, then call `poll()` to follow.

    Calls are serialised by a lock, so an async caller may run each in a different worker thread,
    and close() (from any thread) waits for a running call instead of closing its fds under it."""

    def __init__(self, path: str, *, stdout: bool = True, stderr: bool = True, since: float | None = None,
                 until: float | None = None, tail: int | None = None) -> None:
        if not stdout and not stderr:
            raise InvalidArgument("You must choose at least one stream")
        self.path = path
        self._streams = (stdout, stderr)
        self._since = to_ns(since)
        self._until = to_ns(until)
        self._tail = None if tail is None or tail < 0 else tail
        self._lock = threading.Lock()
        self._open: list[LogFile] = []
        self._current: LogFile | None = None
        self._pos = 0  # offset in the current file just after the last complete line read
        self._gen: Iterator[Entry] | None = None
        self.done = False  # an entry after `until` was seen: nothing more will be yielded
        self.closed = False
        self._final = False  # the current file was rotated away: read it to its end, then move on
        self._gz: Iterator[bytes] | None = None  # lines of a gzip file being followed through
        self._queue: list[LogFile] = []  # files to follow after the current one, oldest first
        self._finished: LogFile | None = None  # the file followed last, and the time of its last entry
        self._finished_ns = 0
        self._last_ns = 0  # time of the last entry decoded

    # -- filtering ---------------------------------------------------------------------------------
    def _accept(self, line: bytes) -> Entry | None:
        """The entry of `line` if it is to be yielded; sets `done` at the first entry after `until`."""
        e = decode(line)
        if e is None:
            return None
        self._last_ns = e[2]
        if self._since is not None:
            if e[2] < self._since:
                return None
            self._since = None  # from the first entry at or after `since`, keep everything
        if self._until is not None and e[2] > self._until:
            self.done = True
            return None
        return e if self._streams[e[0] - 1] else None

    # -- the snapshot ----------------------------------------------------------------------------
    def _plan(self) -> list[tuple[LogFile, int, int | None]]:
        """Which files to read and from where, oldest first: (file, start offset or, for a gzip file,
        lines to skip, stop offset)."""
        rotated, current = files.open_set(self.path)
        self._open = [*rotated, *([current] if current else [])]
        self._current = current
        if current is None and rotated:  # (a writer killed mid-rotation) follow from the newest rotated file
            self._finished = rotated[-1]
            self._finished_ns = (last_time(rotated[-1].fd) or 0) if rotated[-1].gz else 0
        end = os.fstat(current.fd).st_size if current else 0
        plan: list[tuple[LogFile, int, int | None]] = []
        need = self._tail
        for f in reversed(self._open):  # newest first, so that tail stops early
            if f.gz and self._since is not None and (t := last_time(f.fd)) is not None and t < self._since:
                continue  # moby's shortcut: every entry in it is older than `since`
            size = end if f is current else os.fstat(f.fd).st_size
            if need is None:
                plan.append((f, 0, size))
            elif need == 0:
                if f is current:
                    self._pos = scan.tail_start(f.fd, end, 0)[1]  # tail=0: follow from the end
                break
            elif f.gz:
                count = scan.gz_count(f.fd)
                plan.append((f, max(0, count - need), None))
                need -= min(count, need)
            else:
                start, stop, found = scan.tail_start(f.fd, size, need)
                plan.append((f, start, stop))
                need -= found
        plan.reverse()
        return plan

    def _snapshot(self) -> Iterator[Entry]:
        for f, start, stop in self._plan():
            if f.gz:
                raw: Iterator[bytes] = scan.gz_lines(f.fd, skip=start)
            else:
                raw = self._plain(f, start, stop)
            for line in raw:
                e = self._accept(line)
                if self.done:
                    return
                if e is not None:
                    yield e
            if f is not self._current and f is not self._finished:
                f.close()
        for f in self._open:  # and those tail did not need
            if f is not self._current and f is not self._finished:
                f.close()
        self._open = []

    def _plain(self, f: LogFile, start: int, stop: int | None) -> Iterator[bytes]:
        for line, after in scan.lines(f.fd, start, stop):
            if f is self._current:
                self._pos = after  # following goes on from the last complete line
            yield line

    def snapshot(self, limit: int = BATCH) -> list[Entry]:
        """The next entries of the snapshot, oldest first; [] once it is exhausted."""
        with self._lock:
            if self.closed or self.done:
                return []
            if self._gen is None:
                self._gen = self._snapshot()
            out: list[Entry] = []
            for e in self._gen:
                out.append(e)
                if len(out) >= limit:
                    break
            return out

    # -- following ---------------------------------------------------------------------------------
    def poll(self, limit: int = BATCH) -> list[Entry]:
        """Entries appended since the snapshot or the last poll, across rotations; [] if none yet."""
        with self._lock:
            out: list[Entry] = []
            while not self.closed and not self.done and len(out) < limit:
                if self._current is None and not self._next_file():
                    break
                assert self._current is not None
                if self._read_current(out, limit):
                    continue
                if self._final:  # a rotated-away file read to its end: go on with the next one
                    self._finished, self._finished_ns = self._current, self._last_ns
                    self._current = None
                    self._final = False
                elif self._current.gz or files.ident(self.path) != self._current.ident:
                    # The writer closes a file before it renames it: what we read from now on is all.
                    self._final = True
                else:
                    break  # nothing new: wait for the writer
            return out

    def _read_current(self, out: list[Entry], limit: int) -> bool:
        """Append new entries of the current file to `out`; True if it had new lines."""
        f = self._current
        assert f is not None
        if f.gz:
            if self._gz is None:
                self._gz = scan.gz_lines(f.fd)
            raw: Iterator[bytes] = self._gz
        else:
            raw = self._plain(f, self._pos, None)
        moved = False
        for line in raw:
            moved = True
            e = self._accept(line)
            if e is not None:
                out.append(e)
            if self.done or len(out) >= limit:
                break
        return moved

    def _next_file(self) -> bool:
        """Move on to the file written after the one just finished; False if there is none yet.

        A slow follower may find that the writer rotated more than once: unlike moby (which warns
        and skips), it reads the files in between. It finds the file it finished among the rotated
        ones by identity or, once gzipped (a new inode), by the lastTime in its header and the size in
        its trailer. Should two files match (identical output rotated twice within one read), the
        newest is taken: at worst files are skipped, as moby does, never read twice."""
        if not self._queue:
            rotated, live = files.open_set(self.path)
            start = 0
            done = self._finished
            if done is not None:  # still open, so its inode number cannot have been reused yet
                size = os.fstat(done.fd).st_size & 0xFFFFFFFF
                for i, f in enumerate(rotated):
                    if f.ident == done.ident or (f.gz and last_time(f.fd) == self._finished_ns
                                                 and isize(f.fd) == size):
                        start = i + 1
            for f in rotated[:start]:
                f.close()
            self._queue = [*rotated[start:], *([live] if live else [])]
        if not self._queue:
            return False  # between a rotation's rename and its new file, or no log yet
        if self._finished is not None:
            self._finished.close()
            self._finished = None
        self._current = self._queue.pop(0)
        self._pos, self._gz = 0, None
        return True

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._gen = None
            for f in self._open:
                f.close()
            self._open = []
            for f in [*self._queue, *(f for f in (self._current, self._finished) if f is not None)]:
                f.close()
            self._queue = []
            self._current = None


def read_all(path: str, *, stdout: bool = True, stderr: bool = True, since: float | None = None,
             until: float | None = None, tail: int | None = None) -> list[Entry]:
    """Every entry of the log (or the chosen part of it), oldest first, across rotated files."""
    r = LogReader(path, stdout=stdout, stderr=stderr, since=since, until=until, tail=tail)
    try:
        out: list[Entry] = []
        while batch := r.snapshot(1 << 16):
            out += batch
        return out
    finally:
        r.close()
