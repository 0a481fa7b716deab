"""Finding lines in log files: forwards from an offset, and backwards from the end for `tail`
(moby's pkg/tailfile idea: count newlines in blocks read from the end, never scan the whole file).
Only complete lines count: the writer may be half-way through appending the last one."""

from __future__ import annotations

import os
from collections.abc import Iterator

from berth.logs.gzfile import inflate

BLOCK = 64 * 1024
READ = 256 * 1024


def tail_start(fd: int, end: int, n: int) -> tuple[int, int, int]:
    """(start, stop, found) for the last `n` complete lines of `fd[:end]`: they are `fd[start:stop]`,
    `stop` is just after the last newline, and `found` ≤ n is how many lines that is."""
    need = n + 1  # the newline ending the last line, then one before each of the n lines
    pos = end
    stop = -1
    while pos > 0:
        size = min(BLOCK, pos)
        pos -= size
        block = os.pread(fd, size, pos)
        i = len(block)
        if stop < 0 or block.count(b"\n") >= need:
            while need:
                i = block.rfind(b"\n", 0, i)
                if i < 0:
                    break
                if stop < 0:
                    stop = pos + i + 1
                need -= 1
            if not need:
                return pos + i + 1, stop, n
        else:
            need -= block.count(b"\n")  # a whole block of lines we do not want: just count them
    if stop < 0:
        return 0, 0, 0
    return 0, stop, n + 1 - need


def lines(fd: int, start: int, stop: int | None = None) -> Iterator[tuple[bytes, int]]:
    """(line without its newline, offset just after it) for the complete lines of `fd[start:stop]`."""
    pos = start
    size = READ
    while stop is None or pos < stop:
        want = size if stop is None else min(size, stop - pos)
        chunk = os.pread(fd, want, pos)
        last = chunk.rfind(b"\n")
        if last < 0:
            if len(chunk) < want or pos + len(chunk) == stop:
                return  # what is left is an incomplete line
            size *= 2  # a line longer than the read: read more at once
            continue
        base = pos
        for line in chunk[:last].split(b"\n"):
            base += len(line) + 1
            yield line, base
        pos += last + 1
        size = READ


def gz_lines(fd: int, skip: int = 0) -> Iterator[bytes]:
    """The complete lines of a gzip log, without their newlines, after the first `skip`."""
    rest = b""
    for chunk in inflate(fd):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        if skip:
            drop = min(skip, len(parts))
            skip -= drop
            del parts[:drop]
        yield from parts


def gz_count(fd: int) -> int:
    """How many complete lines a gzip log holds (one inflate pass; the tail pass is a second one)."""
    return sum(chunk.count(b"\n") for chunk in inflate(fd))
