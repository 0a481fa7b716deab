"""Where a container's cgroup lives: runc's cgroupfs rules for `linux.cgroupsPath`.

runc (opencontainers/cgroups `internal/path`, `fs/paths.go`, `fs2/defaultpath.go`):
- the path is cleaned lexically; a *relative* path cannot climb out with "..";
- absent, it defaults to the container id, which is a relative path;
- absolute: under each hierarchy's mount point (v1) or the cgroup2 mount (v2);
- relative, v1: under the runtime's *own* cgroup in that hierarchy (read from /proc/self/cgroup,
  made relative to the mount's root for nested cases); the hybrid cgroup2 tree is the exception:
  runc puts relative paths straight under its mount point;
- relative, v2: under the *parent* of the runtime's own cgroup (its own usually holds processes,
  so controllers could not be enabled below it).
"""

from __future__ import annotations

import os
import posixpath

# Every v1 hierarchy runc joins, in runc's order; those not mounted are skipped (except devices:
# without it there is no device isolation, so it is required). "" is the hybrid cgroup2 tree.
V1_SUBSYSTEMS = (
    "cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb", "net_cls",
    "net_prio", "perf_event", "freezer", "rdma", "name=systemd", "misc", "",
)


class Mount:
    """One line of mountinfo, the fields we need."""

    __slots__ = ("fstype", "mountpoint", "options", "root")

    def __init__(self, mountpoint: str, root: str, fstype: str, options: tuple[str, ...]) -> None:
        self.mountpoint = mountpoint
        self.root = root  # the path inside the hierarchy that is mounted there ("/" unless nested)
        self.fstype = fstype  # "cgroup" or "cgroup2"
        self.options = options  # super options: the controllers for v1, e.g. ("rw", "cpu")


def clean_path(path: str) -> str:
    """runc's CleanPath: clean, and keep a relative path below its base ("../../x" -> "x")."""
    if not path:
        return ""
    if path.startswith("/"):
        return posixpath.normpath("/" + path.lstrip("/"))
    cleaned = posixpath.normpath("/" + path).lstrip("/")
    return cleaned or "."


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The path runc joins under each hierarchy: cgroupsPath, or the container id when absent."""
    inner = clean_path(cgroups_path or "")
    if not inner:
        inner = clean_path(container_id)
    if inner in ("", ".", "/"):
        raise ValueError("cgroup path resolves to the hierarchy root")
    return inner


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def all_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """Every mount, in mount order (a later mount on the same point hides the earlier one)."""
    with open(mountinfo) as f:
        data = f.read()
    mounts = []
    for line in data.splitlines():
        left, sep, right = line.partition(" - ")
        rfields = right.split()
        lfields = left.split()
        if not sep or len(rfields) < 3 or len(lfields) < 5:
            continue
        mounts.append(Mount(_unescape(lfields[4]), _unescape(lfields[3]), rfields[0], tuple(rfields[2].split(","))))
    return mounts


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """Every cgroup and cgroup2 mount, in mount order."""
    return [m for m in all_mounts(mountinfo) if m.fstype in ("cgroup", "cgroup2")]


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """Controller (or "name=x", or "" for cgroup2) -> this process's cgroup path in it."""
    out: dict[str, str] = {}
    with open(proc_cgroup) as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            for sub in parts[1].split(","):
                out[sub] = parts[2]
    return out


def v1_paths(inner: str, root: str, mounts: list[Mount], own: dict[str, str] | None = None) -> dict[str, str]:
    """Subsystem -> absolute cgroup directory, for every v1 hierarchy mounted under `root`.

    Co-mounted controllers (cpu,cpuacct) map to the same directory."""
    root = posixpath.normpath(root)
    under = [m for m in mounts if m.mountpoint.startswith(root + "/")]
    paths: dict[str, str] = {}
    for sub in V1_SUBSYSTEMS:
        if sub == "":
            mnt = next((m for m in under if m.fstype == "cgroup2"), None)
            if mnt is not None:
                paths[""] = posixpath.join(mnt.mountpoint, inner.lstrip("/"))
            continue
        mnt = next((m for m in under if m.fstype == "cgroup" and sub in m.options), None)
        if mnt is None:
            if sub == "devices":
                raise FileNotFoundError(f"mountpoint for {sub} not found")
            continue
        if inner.startswith("/"):
            paths[sub] = posixpath.join(root, posixpath.basename(mnt.mountpoint), inner.lstrip("/"))
            continue
        if own is None:
            own = own_cgroups()
        mine = own.get(sub, "/")
        # /proc/self/cgroup shows host paths; below a nested mount only the part under its root exists
        rel = posixpath.relpath(mine, mnt.root) if mnt.root != "/" else mine.lstrip("/")
        paths[sub] = posixpath.normpath(posixpath.join(mnt.mountpoint, rel, inner))
    return paths


def v2_path(inner: str, root: str, own: dict[str, str] | None = None) -> str:
    """The cgroup2 directory for `inner` under the cgroup2 mount `root`."""
    if inner.startswith("/"):
        return posixpath.join(root, inner.lstrip("/"))
    if own is None:
        own = own_cgroups()
    parent = posixpath.dirname(own.get("", "/")) or "/"
    return posixpath.normpath(posixpath.join(root, parent.lstrip("/"), inner))


def mount_fstype(path: str, mounts_file: str = "/proc/self/mountinfo") -> str | None:
    """The filesystem type mounted exactly at `path` (the last mount there wins), or None."""
    path = posixpath.normpath(os.path.abspath(path))
    found = None
    for m in all_mounts(mounts_file):
        if m.mountpoint == path:
            found = m.fstype
    return found
