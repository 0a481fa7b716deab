"""The json-file log writer a container's monitor feeds with its stdout/stderr.

It reproduces moby's copier (daemon/logger/copier.go) and json-file logger: output is cut at newlines,
each line one entry whose "log" ends with "\\n"; a line that reaches 16 KiB without a newline is written
in 16 KiB pieces without "\\n" (partial entries), and every piece of one line carries the time of its
first piece; what is left without a newline when a stream ends is written as a partial entry.

Rotation is loggerutils/logfile.go's: before an entry is written, if the file has reached `max_size`
it becomes `<path>.1` (older ones shift to `.2` … and the oldest beyond `max_file` is removed; with
`max_file=1` the file is simply removed) and a new empty file takes its name; with `compress`, `.1` is
then gzipped to `.1.gz`. One difference, for readers in other processes (moby's share the writer's
lock): the current file is first renamed to `<path>.rotating`, so the path is missing for exactly as
long as the shift is in progress, and a reader that sees the same file at the path before and after
listing the rotated ones knows its list is consistent. A writer killed half-way through leaves the
`.rotating` file (or an uncompressed `.1`) behind; the next writer on that path finishes the job.

Small on purpose: a single-threaded process imports this, so no asyncio, no threads, no fsync; one
write(2) per call in the common case. Compression runs synchronously (rarely: once per `max_size`
bytes, with isal) because the monitor reaps every child, so a compressor process would be stolen."""

from __future__ import annotations

import os
import time

from berth.errors import InvalidArgument
from berth.logs.jsonline import ASCII_SPECIAL_BUT_NEWLINE, encode, escape, format_time

PARTIAL_SIZE = 16 * 1024  # moby's copier buffer: a line this long without "\n" is logged in pieces
_STREAM_NAMES = {"stdout": b"stdout", "stderr": b"stderr"}


def check_options(max_size: int | None, max_file: int, compress: bool) -> None:
    """Docker's json-file option rules (jsonfilelog.New), with its messages."""
    if max_size is not None and max_size <= 0:
        raise InvalidArgument("max-size must be a positive number")
    if max_file < 1:
        raise InvalidArgument("max-file cannot be less than 1")
    if compress and (max_file == 1 or max_size is None):
        raise InvalidArgument("compress cannot be true when max-file is less than 2 or max-size is not set")


class _Stream:
    __slots__ = ("name", "partial_ns", "pending")

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.pending = b""  # output after the last newline, not yet logged
        self.partial_ns: int | None = None  # time of the first piece of a line logged in pieces


class JSONFileWriter:
    """Appends a container's output to `path` in Docker's json-file format, rotating as Docker does.

    A write error (a full disk) drops that output, as Docker does, instead of raising into the monitor:
    `dropped` counts the lost entries and `last_error` keeps the error."""

    def __init__(self, path: str, max_size: int | None = None, max_file: int = 1, compress: bool = False,
                 mode: int = 0o640) -> None:
        check_options(max_size, max_file, compress)
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.compress = compress
        self.mode = mode
        self.dropped = 0
        self.last_error: OSError | None = None
        self._closed = False
        if max_file > 1:
            self._recover()
        self._fd = self._open(os.O_APPEND)
        self._size = os.fstat(self._fd).st_size  # moby starts from the existing size, too
        self._last_ns = 0  # time of the last entry written: the lastTime of a compressed file
        self._streams = {name: _Stream(b) for name, b in _STREAM_NAMES.items()}

    def _open(self, extra: int) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | extra, self.mode)

    def write(self, stream: str, data: bytes, time_ns: int | None = None) -> None:
        """Log `data` read from `stream` ("stdout" or "stderr") at `time_ns` (default: now)."""
        if self._closed:
            raise ValueError("cannot write because the output file was closed")
        st = self._streams[stream]
        ns = time.time_ns() if time_ns is None else time_ns
        buf = st.pending + data if st.pending else data
        if st.partial_ns is None and self._write_plain(st, buf, ns):
            return
        entries: list[tuple[bytes, int]] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            stop = len(buf) if nl < 0 else nl
            while stop - start >= PARTIAL_SIZE:  # 16 KiB without a newline: a partial entry
                if st.partial_ns is None:
                    st.partial_ns = ns
                entries.append((escape(buf[start:start + PARTIAL_SIZE]), st.partial_ns))
                start += PARTIAL_SIZE
            if nl < 0:
                break
            line_ns = ns if st.partial_ns is None else st.partial_ns
            st.partial_ns = None
            entries.append((escape(buf[start:nl]) + b"\\n", line_ns))
            start = nl + 1
        st.pending = buf[start:]
        if entries:
            self._append(st.name, entries)

    def _write_plain(self, st: _Stream, buf: bytes, ns: int) -> bool:
        """The common case at C speed: whole lines shorter than 16 KiB, plain ASCII with nothing to escape,
        and no rotation due among them, become one joined buffer. False (nothing done) otherwise."""
        last = buf.rfind(b"\n")
        if last < 0 or len(buf) - last - 1 >= PARTIAL_SIZE:
            return False
        body = buf[:last]
        if not body.isascii() or ASCII_SPECIAL_BUT_NEWLINE.search(body):
            return False
        lines = body.split(b"\n")
        if last >= PARTIAL_SIZE and max(map(len, lines)) >= PARTIAL_SIZE:
            return False
        head = b'{"log":"'
        tail = b'\\n","stream":"%s","time":"%s"}\n' % (st.name, format_time(ns))
        out = head + (tail + head).join(lines) + tail
        before_last = self._size + len(out) - len(head) - len(lines[-1]) - len(tail)
        if self.max_size is not None and before_last >= self.max_size:
            return False  # a rotation falls among them: entry by entry
        st.pending = buf[last + 1:]
        self._last_ns = ns
        self._flush([out], len(lines))
        return True

    def end(self, stream: str, time_ns: int | None = None) -> None:
        """`stream` reached EOF: log what is left of its last line, as a partial entry (no "\\n")."""
        st = self._streams[stream]
        if st.pending and not self._closed:
            ns = st.partial_ns if st.partial_ns is not None else (time.time_ns() if time_ns is None else time_ns)
            self._append(st.name, [(escape(st.pending), ns)])
        st.pending = b""
        st.partial_ns = None

    def close(self) -> None:
        """End both streams and close the file. Idempotent."""
        if self._closed:
            return
        for name in self._streams:
            self.end(name)
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _append(self, stream: bytes, entries: list[tuple[bytes, int]]) -> None:
        batch: list[bytes] = []
        size = self._size
        for escaped, ns in entries:
            if self.max_size is not None and size >= self.max_size:
                self._flush(batch, len(batch))
                batch = []
                self._rotate()
                size = self._size
            line = encode(stream, escaped, ns)
            batch.append(line)
            size += len(line)
            self._last_ns = ns
        self._flush(batch, len(batch))

    def _flush(self, batch: list[bytes], count: int) -> None:
        if not batch:
            return
        view = memoryview(b"".join(batch) if len(batch) > 1 else batch[0])
        try:
            if self._fd < 0:  # reopening after a failed rotation
                self._fd = self._open(os.O_APPEND)
                self._size = os.fstat(self._fd).st_size
            while view:
                n = os.write(self._fd, view)
                self._size += n
                view = view[n:]
        except OSError as e:
            self.dropped += count
            self.last_error = e

    def _rotate(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closed before any rename: a reader that sees the new file knows the old is final
            self._fd = -1
        try:
            if self.max_file < 2:
                _unlink(self.path)
            else:
                os.rename(self.path, self.path + ".rotating")
                try:
                    self._shift()
                finally:
                    os.rename(self.path + ".rotating", self.path + ".1")
        except OSError as e:
            self.last_error = e  # as moby: "log data may have been lost"; the new file is opened anyway
        self._size = 0
        try:
            self._fd = self._open(os.O_APPEND | os.O_TRUNC)
        except OSError as e:
            self.last_error = e  # retried by the next write
            return
        if self.compress:
            self._compress(self._last_ns)

    def _shift(self) -> None:
        """Make room for a new `.1`: move `.1`, `.2` … up by one, dropping the oldest if all are there.
        (moby's loop, except that it stops at a gap, so that a shift cut short can be finished.)"""
        ext = ".gz" if self.compress else ""
        gap = 1
        while gap < self.max_file and os.path.exists(f"{self.path}.{gap}{ext}"):
            gap += 1
        if gap == self.max_file:
            gap -= 1
            _unlink(f"{self.path}.{gap}{ext}")
        for i in range(gap, 1, -1):
            _rename(f"{self.path}.{i - 1}{ext}", f"{self.path}.{i}{ext}")

    def _compress(self, last_ns: int) -> None:
        from berth.logs.gzfile import compress_file

        try:
            compress_file(self.path + ".1", self.path + ".1.gz", last_ns, self.mode)
        except OSError as e:
            self.last_error = e

    def _recover(self) -> None:
        """Finish a rotation that a killed writer left half done, so that readers need not wait it out."""
        if os.path.exists(self.path + ".rotating"):
            self._shift()  # a no-op if it had got as far as moving `.1`
            os.rename(self.path + ".rotating", self.path + ".1")
        if self.compress and os.path.exists(self.path + ".1"):  # killed before compressing it
            from berth.logs.reader import read_all

            last = read_all(self.path + ".1", tail=1)
            self._compress(last[0][2] if last else 0)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass
