"""What a test may leave behind on the host, and a way to see what is new since a snapshot.

Session-scoped helpers (a daemon started once for many tests) register their own pids with
`allow_pid` so that they and their descendants are not counted as leaks."""

from __future__ import annotations

import os
import subprocess

_allowed: set[int] = set()


def allow_pid(pid: int) -> None:
    _allowed.add(pid)


def disallow_pid(pid: int) -> None:
    _allowed.discard(pid)


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def _cgroups() -> set[str]:
    found: set[str] = set()
    base = "/sys/fs/cgroup"
    for top, dirs, _files in os.walk(base):
        depth = top[len(base):].count("/")
        for d in dirs:
            if "berth" in d or "test" in d:
                found.add(os.path.join(top, d))
        if depth >= 3:
            dirs.clear()
    return found


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _links() -> set[str]:
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return set()
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process."""
    out: dict[int, tuple[int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rp = stat.rfind(")")
        comm = stat[stat.find("(") + 1:rp]
        fields = stat[rp + 2:].split()
        if fields[0] == "Z":
            continue
        out[int(name)] = (int(fields[1]), comm)
    return out


def _descends_from(pid: int, roots: set[int], procs: dict[int, tuple[int, str]]) -> bool:
    seen = 0
    while pid in procs and seen < 64:
        if pid in roots:
            return True
        pid = procs[pid][0]
        seen += 1
    return pid in roots


def snapshot() -> dict[str, object]:
    return {
        "mounts": _mounts(),
        "cgroups": _cgroups(),
        "netns": _netns(),
        "links": _links(),
        "procs": set(_procs()),
    }


def new_since(before: dict[str, object]) -> dict[str, list[str]]:
    now = {"mounts": _mounts(), "cgroups": _cgroups(), "netns": _netns(), "links": _links()}
    diff: dict[str, list[str]] = {}
    for key, cur in now.items():
        extra = sorted(cur - before[key])  # type: ignore[operator]
        if extra:
            diff[key] = extra
    procs = _procs()
    me = os.getpid()
    roots = _allowed | {me}
    extra_p = []
    for pid in sorted(set(procs) - before["procs"]):  # type: ignore[operator]
        ppid, comm = procs[pid]
        # our own short-lived children (e.g. a `ps` we just ran) are fine once they exit;
        # anything still alive that is not under an allowed root is a leak.
        if _descends_from(pid, _allowed, procs) and pid not in _allowed:
            continue
        if pid == me or ppid == me and comm in ("ps", "ip"):
            continue
        extra_p.append(f"{pid}({comm}, ppid {ppid})")
    if extra_p:
        diff["processes"] = extra_p
    return diff


def cleanup(diff: dict[str, list[str]]) -> None:
    """Best effort: undo what a failed test left, so one failure does not cascade."""
    for p in diff.get("processes", []):
        try:
            os.kill(int(p.split("(")[0]), 9)
        except OSError:
            pass
    for m in sorted(diff.get("mounts", []), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    for c in sorted(diff.get("cgroups", []), key=len, reverse=True):
        try:
            os.rmdir(c)
        except OSError:
            pass
    for n in diff.get("netns", []):
        subprocess.run(["ip", "netns", "delete", n], capture_output=True)
    for link in diff.get("links", []):
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
