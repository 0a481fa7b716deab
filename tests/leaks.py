"""What a test may leave behind on the host, and a way to see what is new since a snapshot.

Leaks are scoped to this test session so that several sessions (developers, CI) can run side by
side: a session owns everything under its scope paths (pytest's base temp dir, plus any path
registered with `add_scope`) and every cgroup, netns or link whose name carries `TOKEN`.
Tests name what they create with `name()` so it carries the token.

Session-scoped helpers (a daemon started once for many tests) register their pids with
`allow_pid` so that they and their descendants are not counted as leaks."""

from __future__ import annotations

import os
import secrets
import subprocess

TOKEN = os.environ.setdefault("BERTH_TEST_TOKEN", "bt" + secrets.token_hex(3))
_scopes: list[str] = []
_allowed: set[int] = set()


def name(prefix: str = "berth-test") -> str:
    """A unique name for a cgroup, container id, link or netns, tagged with this session's token."""
    return f"{prefix}-{TOKEN}-{secrets.token_hex(3)}"


def add_scope(path: str) -> None:
    path = os.path.realpath(path)
    if path not in _scopes:
        _scopes.append(path)


def allow_pid(pid: int) -> None:
    _allowed.add(pid)


def disallow_pid(pid: int) -> None:
    _allowed.discard(pid)


def _in_scope(path: str) -> bool:
    return TOKEN in path or any(path == s or path.startswith(s + "/") for s in _scopes)


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {mp for mp in (line.split()[4] for line in f) if _in_scope(mp)}


def _cgroups() -> set[str]:
    found: set[str] = set()
    for top, dirs, _files in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if TOKEN in d:
                found.add(os.path.join(top, d))
    return found


def _netns() -> set[str]:
    try:
        return {n for n in os.listdir("/run/netns") if TOKEN in n}
    except FileNotFoundError:
        return set()


def _links() -> set[str]:
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return set()
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}
    return {n for n in names if TOKEN in n}


def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every live (non-zombie) process."""
    out: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rp = stat.rfind(")")
        fields = stat[rp + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        out[int(entry)] = (int(fields[1]), stat[stat.find("(") + 1:rp])
    return out


def _descends_from(pid: int, roots: set[int], procs: dict[int, tuple[int, str]]) -> bool:
    for _ in range(64):
        if pid in roots:
            return True
        if pid not in procs:
            return False
        pid = procs[pid][0]
    return False


def _proc_in_scope(pid: int) -> bool:
    try:
        for link in ("root", "cwd"):
            if _in_scope(os.readlink(f"/proc/{pid}/{link}")):
                return True
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        if TOKEN in cmd or any(s in cmd for s in _scopes):
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"BERTH_TEST_TOKEN={TOKEN}".encode() in f.read()
    except OSError:
        return False


def snapshot() -> dict[str, set]:
    return {
        "mounts": _mounts(),
        "cgroups": _cgroups(),
        "netns": _netns(),
        "links": _links(),
        "procs": set(_procs()),
    }


def new_since(before: dict[str, set]) -> dict[str, list[str]]:
    now = {"mounts": _mounts(), "cgroups": _cgroups(), "netns": _netns(), "links": _links()}
    diff: dict[str, list[str]] = {}
    for key, cur in now.items():
        extra = sorted(cur - before[key])
        if extra:
            diff[key] = extra
    procs = _procs()
    me = os.getpid()
    extra_p = []
    for pid in sorted(set(procs) - before["procs"]):
        ppid, comm = procs[pid]
        if pid in _allowed or _descends_from(pid, _allowed, procs):
            continue
        if _descends_from(pid, {me}, procs) or _proc_in_scope(pid):
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
        for _ in range(20):
            try:
                os.rmdir(c)
                break
            except FileNotFoundError:
                break
            except OSError:
                import time

                time.sleep(0.05)
    for n in diff.get("netns", []):
        subprocess.run(["ip", "netns", "delete", n], capture_output=True)
    for link in diff.get("links", []):
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
