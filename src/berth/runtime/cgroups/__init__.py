"""cgroups v1 and v2 for berth's OCI runtime (cgroupfs driver only, as runc's `fs` and `fs2`).

The OCI runtime process imports this on every container start: stdlib only, nothing heavy.

    m = manager_for(linux.get("cgroupsPath"), container_id)
    m.create()
    m.apply(with_runc_defaults(linux.get("resources") or {}, linux.get("devices")))  # as runc, not rootless
    m.add_pid(init_pid)       # or the init writes itself into m.procs_files(), opened early
    ... m.apply(resources)    # `update`: only the fields given change
    state: m.paths, m.version, m.root -> manager_from_paths(...) in later commands

Errors: a value the kernel refuses raises `CgroupWriteError` (an InvalidArgument) worded as runc's
("failed to write \"99\": write /sys/fs/cgroup/cpuset/x/cpuset.cpus: invalid argument") and the
whole `apply` is undone; filesystem failures the user did not cause raise `CgroupError` (500)."""

from __future__ import annotations

import os

from berth.errors import InvalidArgument

from .devices import with_runc_defaults
from .fs import CgroupError, CgroupWriteError
from .paths import cgroup_mounts, inner_path, mount_fstype, v1_paths, v2_path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per container start
if TYPE_CHECKING:
    from .api import CgroupManager


def __getattr__(name: str) -> object:
    # the Protocol lives in .api so that importing this package never imports typing
    if name == "CgroupManager":
        from .api import CgroupManager

        return CgroupManager
    raise AttributeError(name)


def detect(root: str = "/sys/fs/cgroup") -> str:
    """ "v2" if `root` is a cgroup2 mount, else "v1" (a hybrid host counts as v1)."""
    return "v2" if mount_fstype(root) == "cgroup2" else "v1"


def manager_for(
    cgroups_path: str | None,
    container_id: str,
    *,
    root: str = "/sys/fs/cgroup",
    version: str | None = None,
) -> CgroupManager:
    """The manager for a container's cgroup, resolving `cgroupsPath` as runc's cgroupfs driver:
    absolute paths under the hierarchy roots, relative ones under the runtime's own cgroup (v1) or
    its parent (v2), and the container id (relative) when the path is absent."""
    version = version or detect(root)
    try:
        inner = inner_path(cgroups_path, container_id)
    except ValueError as e:
        raise InvalidArgument(f"invalid cgroupsPath {cgroups_path!r}: {e}") from None
    if version == "v2":
        from .v2 import V2Manager

        return V2Manager(v2_path(inner, root), root)
    if version == "v1":
        mounts = cgroup_mounts()
        try:
            paths = v1_paths(inner, root, mounts)
        except FileNotFoundError as e:
            raise CgroupError(str(e)) from None
        return _v1(paths, root, mounts)
    raise InvalidArgument(f"unknown cgroup version {version!r}")


def manager_from_paths(paths: dict[str, str], *, version: str, root: str = "/sys/fs/cgroup") -> CgroupManager:
    """The manager for cgroup directories resolved earlier (`m.paths`, kept in the container's
    state as runc keeps cgroup_paths): a later command may run from another cgroup, where a
    relative cgroupsPath would resolve elsewhere."""
    if version == "v2":
        from .v2 import V2Manager

        return V2Manager(paths[""], root)
    if version == "v1":
        return _v1(dict(paths), root, cgroup_mounts())
    raise InvalidArgument(f"unknown cgroup version {version!r}")


def _v1(paths: dict[str, str], root: str, mounts: list) -> CgroupManager:
    from .v1 import V1Manager

    mountpoints: dict[str, str] = {}
    under = os.path.normpath(root) + "/"
    for m in mounts:
        if m.mountpoint.startswith(under):
            for opt in m.options:
                mountpoints.setdefault(opt, m.mountpoint)
    return V1Manager(paths, mountpoints, root)


__all__ = ["CgroupError", "CgroupManager", "CgroupWriteError", "detect", "manager_for", "manager_from_paths",
           "with_runc_defaults"]
