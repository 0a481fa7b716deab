"""Start the kernel's cgroup-attach synchronisation early, so the container's own join is quick.

Every write to a cgroup.procs file takes one global lock (cgroup_threadgroup_rwsem, a per-cpu
rwsem). When nobody wrote for a while, taking it waits a whole RCU grace period (~10-20 ms on
these machines); for about one more grace period after a writer leaves, the next writer does not
wait. `berth-runtime run` joins its container's cgroup only after it has imported its code, read
the bundle and cloned the child: moving ourselves into the cgroup we are already in (a no-op
migration), in a thread at the very start, pays that wait in parallel with all of that.
"""

from __future__ import annotations

import os


def _own_procs_file() -> str | None:
    """A cgroup.procs file of the cgroup this process is in, in any mounted hierarchy."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls.startswith("name="):
            continue
        if not ctrls:
            dirs = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        else:
            dirs = [f"/sys/fs/cgroup/{ctrls}", f"/sys/fs/cgroup/{ctrls.split(',')[0]}"]
        for d in dirs:
            procs = f"{d}{path.rstrip('/')}/cgroup.procs"
            if os.path.exists(procs):
                return procs
    return None


def _rejoin(procs: str) -> None:
    try:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")  # "0" is the writer itself
        finally:
            os.close(fd)
    except OSError:
        pass  # only an optimisation: a read-only or foreign cgroup tree just means no head start


def start() -> None:
    """Begin the no-op join in the background (root only: others cannot write cgroup.procs)."""
    if os.geteuid() != 0:
        return
    procs = _own_procs_file()
    if procs:
        from berth.runtime import bgthread

        bgthread.start(lambda: _rejoin(procs))  # never waited for: we only want its side effect
