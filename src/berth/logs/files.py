"""Opening a log's files — `<path>.N[.gz]` … `<path>.1[.gz]` and `<path>` — as one consistent history
while the writer, another process, may be rotating them.

Every rotation replaces the file at `<path>`, and the writer moves the current file to `<path>.rotating`
before it shifts the numbered ones (see writer.py). So if the same file sits at `<path>` before and after
the numbered files are opened, no shift overlapped the listing: no file is missed or seen twice. An open
fd keeps its file readable after the writer renames, compresses or deletes it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

RETRY_FOR = 0.5  # seconds to wait out a rotation in progress (a few renames; a killed writer's is finished
# by the next writer)
ATTEMPTS = 200


@dataclass
class LogFile:
    fd: int
    gz: bool
    ident: tuple[int, int]  # (st_dev, st_ino)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_file(path: str, gz: bool = False) -> LogFile | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    return LogFile(fd, gz, (st.st_dev, st.st_ino))


def ident(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at `path` now, or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def open_set(path: str) -> tuple[list[LogFile], LogFile | None]:
    """The rotated files, oldest first, and the current file (None if there is none).

    A writer rotating faster than this can list (every few entries, on a loaded machine) may never
    leave it a consistent moment: after ATTEMPTS tries it gives the current file alone, leaving the
    history out rather than repeating or cutting it."""
    deadline = time.monotonic() + RETRY_FOR
    attempt = 0
    while True:
        current = open_file(path)
        if current is None and os.path.exists(path + ".rotating") and time.monotonic() < deadline:
            time.sleep(0.001)  # between the writer's first rename and its new file
            continue
        rotated: list[LogFile] = []
        i = 1
        while True:
            f = open_file(f"{path}.{i}") or open_file(f"{path}.{i}.gz", gz=True)
            if f is None:
                break
            rotated.append(f)
            i += 1
        if ident(path) == (current.ident if current else None):
            rotated.reverse()
            return rotated, current
        for f in rotated:
            f.close()
        attempt += 1
        if attempt >= ATTEMPTS:
            return [], current
        if current is not None:
            current.close()
        time.sleep(0.0001 * min(attempt, 10))
