"""Reading and writing cgroup files, with runc's error wording, and undo for `apply`.

Every value goes out in one write(2): the kernel parses each write as one value, so a buffered
writer that split it would corrupt it. Files are opened with O_TRUNC, as a shell's ">" does: the
kernel ignores it, and a fake tree of plain files (tests) then holds exactly the value written."""

from __future__ import annotations

import errno
import os
import time

from berth.errors import BerthError, InvalidArgument, NotFound

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: this is on the container start path
if TYPE_CHECKING:
    from collections.abc import Callable


class CgroupError(BerthError):
    """The cgroup filesystem failed in a way the user did not cause (500)."""


class CgroupWriteError(InvalidArgument):
    """The kernel refused a value (or the file for it is missing). Carries file, value and errno."""

    def __init__(self, message: str, path: str, value: str, err: int) -> None:
        super().__init__(message)
        self.path = path
        self.value = value
        self.errno = err


def go_strerror(err: int) -> str:
    """Go's wording of an errno ("invalid argument"), which runc's messages carry."""
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


def go_quote(value: str) -> str:
    """Go's %q for the short strings we write."""
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


_WRITE = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC


def read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def read_or(path: str, default: str | None = None) -> str | None:
    try:
        return read(path)
    except (FileNotFoundError, ProcessLookupError):
        return default
    except OSError as e:
        if e.errno == errno.ENODEV:
            return default
        raise


def write_raw(path: str, value: str) -> None:
    """One write(2) of `value`; OSError as the kernel gave it."""
    fd = os.open(path, _WRITE)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def write(path: str, value: str) -> None:
    """Write one value; a refusal raises CgroupWriteError worded as runc's."""
    try:
        fd = os.open(path, _WRITE)
    except OSError as e:
        err = e.errno or errno.EIO
        raise CgroupWriteError(f"open {path}: {go_strerror(err)}", path, value, err) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        err = e.errno or errno.EIO
        raise CgroupWriteError(
            f"failed to write {go_quote(value)}: write {path}: {go_strerror(err)}", path, value, err
        ) from None
    finally:
        os.close(fd)


def write_lines(path: str, value: str) -> None:
    """runc's WriteFileByLine: files such as io.max take one entry per write."""
    if "\n" not in value.rstrip("\n"):
        write(path, value)
        return
    for line in value.splitlines():
        if line:
            write(path, line + "\n")


def parse_kv(text: str) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat, memory.events) -> dict; unparsable lines skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_int(path: str, default: int | None = None) -> int | None:
    """An integer file; "max" reads as 2**64-1 (runc's MaxUint64); a missing file as `default`."""
    text = read_or(path)
    if text is None:
        return default
    text = text.strip()
    if text == "max":
        return 2**64 - 1
    try:
        return int(text)
    except ValueError:
        return default


class Txn:
    """Undo log for `apply`: a refused value must leave the cgroup as it was.

    Each write first reads the file's current value; `rollback` restores them newest first, which
    replays valid kernel states in reverse (memory/memsw ordering stays legal)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def on_rollback(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def write(self, path: str, value: str, restore: str | None = None) -> None:
        """Write `value`; on rollback write back `restore`, or the value read before writing."""
        old = restore
        if old is None:
            try:
                old = read(path)
            except OSError:
                old = None  # write-only or missing: nothing to restore (the write may still work)
        write_lines(path, value)
        if old is not None:
            self._undo.append(lambda: write_lines(path, old.strip() or old))

    def try_write(self, path: str, value: str) -> CgroupWriteError | None:
        """Like write, but a refusal is returned instead of raised (for runc's retry orderings)."""
        try:
            self.write(path, value)
        except CgroupWriteError as e:
            return e
        return None

    def rollback(self) -> None:
        for fn in reversed(self._undo):
            try:
                fn()
            except (OSError, BerthError):
                pass  # best effort: the original error is what the caller needs to see
        self._undo.clear()


def write_pid(procs_file: str, pid: int) -> None:
    """Move `pid` into a cgroup. EINVAL can mean the task is still being forked (TASK_NEW): retry."""
    for attempt in range(5):
        try:
            write_raw(procs_file, str(pid))
            return
        except OSError as e:
            if e.errno == errno.ESRCH:
                raise NotFound(f"failed to write {pid}: write {procs_file}: no such process") from None
            if e.errno == errno.EINVAL and attempt < 4:
                time.sleep(0.03)
                continue
            raise CgroupError(f"failed to write {pid}: write {procs_file}: {go_strerror(e.errno or 0)}") from None


def read_pids(directory: str) -> list[int]:
    """The pids in one cgroup (cgroup.threads for a threaded v2 cgroup, where cgroup.procs is ENOTSUP)."""
    try:
        text = read(os.path.join(directory, "cgroup.procs"))
    except OSError as e:
        if e.errno != errno.EOPNOTSUPP:
            raise
        text = read(os.path.join(directory, "cgroup.threads"))
    return [int(x) for x in text.split()]


def all_pids(directory: str) -> list[int]:
    """Every pid in a cgroup and its descendants; [] when the cgroup does not exist."""
    out: list[int] = []
    stack = [directory]
    while stack:
        d = stack.pop()
        try:
            out.extend(read_pids(d))
            with os.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
    return out


def _rmdir(path: str, deadline: float) -> int:
    """rmdir, retrying EBUSY (tasks still exiting) with backoff until `deadline`; 0 or the errno."""
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return 0
        except FileNotFoundError:
            return 0
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() + delay > deadline:
                return e.errno or errno.EIO
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def remove_tree(path: str, deadline: float = 0.0) -> int:
    """runc's RemovePath: remove a cgroup and its sub-cgroups, children first; 0 or an errno.
    EBUSY is retried until `deadline` (time.monotonic), shared by all the hierarchies of a destroy."""
    if _rmdir(path, 0.0) == 0:
        return 0
    try:
        with os.scandir(path) as it:
            subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    except OSError as e:
        return e.errno or errno.EIO
    for sub in subdirs:
        err = remove_tree(sub, deadline)
        if err:
            return err
    return _rmdir(path, deadline)


DESTROY_RETRY = 1.0  # seconds a destroy waits for exiting tasks to leave (runc: ~1 s of backoff)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll with a short, growing sleep (cgroup state changes take micro- to milliseconds)."""
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
