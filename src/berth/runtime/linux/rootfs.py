"""Build the container's root filesystem, inside its new mount namespace (runs in the init).

Order follows runc's prepareRootfs: make `/` private (or `rootfsPropagation`), bind the root onto
itself, perform the configured mounts through O_PATH fds, populate /dev, then pivot_root. After
the pivot: masked paths, read-only paths and a read-only root. Every destination is resolved with
secure_join so an image's symlinks cannot send a mount outside the root.
"""

from __future__ import annotations

import errno
import os
import stat

from berth.runtime.linux import mountopts
from berth.runtime.linux import syscalls as sc
from berth.runtime.linux.securejoin import secure_join, within

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from typing import Any

DEFAULT_DEVICES = [
    # path, type, major, minor, mode
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
]
DEV_SYMLINKS = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
]


class RootfsError(Exception):
    pass


def _open_in_root(root: str, path: str) -> int:
    """O_PATH fd of an existing path that is verifiably inside `root` (no swap between check and use)."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    real = os.readlink(f"/proc/self/fd/{fd}")
    if not within(root, real):
        os.close(fd)
        raise RootfsError(f"mount destination {path} escapes the rootfs ({real})")
    return fd


def _mkdir_all(root: str, path: str, mode: int = 0o755) -> None:
    rel = os.path.relpath(path, root)
    cur = root
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        cur = os.path.join(cur, part)
        try:
            os.mkdir(cur, mode)
        except FileExistsError:
            if not os.path.isdir(cur) or os.path.islink(cur):
                real = secure_join(root, os.path.relpath(cur, root))
                if not os.path.isdir(real):
                    raise RootfsError(f"mountpoint {path} is not a directory") from None


def _create_mountpoint(root: str, dest: str, want_file: bool) -> str:
    target = secure_join(root, dest)
    if os.path.lexists(target):
        return target
    _mkdir_all(root, os.path.dirname(target))
    target = secure_join(root, dest)
    if want_file:
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
        os.close(fd)
    else:
        try:
            os.mkdir(target, 0o755)
        except FileExistsError:
            pass
    return target


def _mount_at(root: str, target: str, source: str | None, fstype: str | None, flags: int, data: str | None) -> None:
    fd = _open_in_root(root, target)
    try:
        sc.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data or None)
    finally:
        os.close(fd)


def _remount_bind(target_proc: str, flags: int) -> None:
    # A bind mount ignores most flags on the first call; a remount applies them, and must keep the
    # locked flags (nosuid/nodev/noexec) the source mount already has, or the kernel refuses (EPERM).
    st = os.statvfs(target_proc)
    keep = 0
    if st.f_flag & os.ST_NOSUID:
        keep |= sc.MS_NOSUID
    if st.f_flag & os.ST_NODEV:
        keep |= sc.MS_NODEV
    if st.f_flag & os.ST_NOEXEC:
        keep |= sc.MS_NOEXEC
    sc.mount(None, target_proc, None, sc.MS_BIND | sc.MS_REMOUNT | flags | keep, None)


def _mount_one(root: str, m: dict[str, Any], cgroup_plan: list[tuple[str, str]], userns: bool) -> None:
    dest = m.get("destination", "")
    if not dest.startswith("/"):
        raise RootfsError(f"mount destination {dest!r} not absolute")
    mtype = m.get("type") or ""
    opts = mountopts.parse(m.get("options"))
    source = m.get("source")
    if mtype == "bind" or opts.is_bind:
        if not source or not os.path.exists(source):
            raise RootfsError(f"error mounting {source!r} to rootfs at {dest!r}: "
                              f"stat {source}: no such file or directory")
        target = _create_mountpoint(root, dest, want_file=not os.path.isdir(source))
        fd = _open_in_root(root, target)
        try:
            proc = f"/proc/self/fd/{fd}"
            sc.mount(source, proc, None, sc.MS_BIND | (opts.flags & sc.MS_REC), None)
            extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                fd2 = _open_in_root(root, target)  # the new mount is on top: reopen to reach it
                try:
                    _remount_bind(f"/proc/self/fd/{fd2}", extra)
                finally:
                    os.close(fd2)
            for p in opts.propagation:
                fd3 = _open_in_root(root, target)
                try:
                    sc.mount(None, f"/proc/self/fd/{fd3}", None, p, None)
                finally:
                    os.close(fd3)
        finally:
            os.close(fd)
        _set_tree_attrs(root, target, opts, dest)
        return
    if mtype in ("cgroup", "cgroup2"):
        _mount_cgroups(root, dest, opts, cgroup_plan)
        return
    target = _create_mountpoint(root, dest, want_file=False)
    flags = opts.flags
    data = opts.data
    if mtype == "mqueue" and userns:
        # mqueue belongs to the ipc namespace; in a user namespace without a new ipc ns it cannot be
        # mounted, runc falls back to a bind of the host's.
        pass
    try:
        _mount_at(root, target, source or mtype, mtype, flags & ~sc.MS_RDONLY if mtype == "sysfs" and userns else flags,
                  data)
    except OSError as e:
        if mtype == "sysfs" and e.errno == errno.EPERM and userns:
            # sysfs needs a network namespace owned by the user namespace; runc binds the host's.
            _mount_at(root, target, "/sys", None, sc.MS_BIND | sc.MS_REC, None)
            return
        raise RootfsError(f"error mounting {source!r} to rootfs at {dest!r}: {e.strerror}") from None
    for p in opts.propagation:
        _mount_at(root, target, None, None, p, None)
    _set_tree_attrs(root, target, opts, dest)


def _set_tree_attrs(root: str, target: str, opts: mountopts.MountOptions, dest: str) -> None:
    """The recursive options (rro, rnosuid, ...): one mount_setattr over the new mount and every
    mount under it, which a remount cannot reach (Docker's read-only binds use rro since v25)."""
    if not (opts.rec_set or opts.rec_clear):
        return
    fd = _open_in_root(root, target)  # opened after the mount: the fd is on the new mount's root
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, opts.rec_set, opts.rec_clear)
    except OSError as e:
        raise RootfsError(f"error mounting to rootfs at {dest!r}: mount_setattr: {e.strerror}") from None
    finally:
        os.close(fd)


def _mount_cgroups(root: str, dest: str, opts: mountopts.MountOptions, plan: list[tuple[str, str]]) -> None:
    """cgroup v1: a tmpfs with one bind per hierarchy (the container's own cgroup dir, as runc does);
    cgroup v2 alone: a bind of the container's cgroup dir. The tree is then made read-only (with
    nosuid, nodev, noexec) by one recursive mount_setattr rather than a remount per bind."""
    target = _create_mountpoint(root, dest, want_file=False)
    ro = opts.flags & sc.MS_RDONLY
    if len(plan) == 1 and plan[0][0] == "":
        _mount_at(root, target, plan[0][1], None, sc.MS_BIND | sc.MS_REC, None)
    else:
        _mount_at(root, target, "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
        # the tmpfs is ours alone and empty: work inside it through its fd, no per-entry resolution
        fd = _open_in_root(root, target)
        try:
            for name, host_dir in plan:
                os.mkdir(name, 0o755, dir_fd=fd)
                sc.mount(host_dir, f"/proc/self/fd/{fd}/{name}", None, sc.MS_BIND | sc.MS_REC, None)
        finally:
            os.close(fd)
    attrs = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC | (sc.MOUNT_ATTR_RDONLY if ro else 0)
    fd = _open_in_root(root, target)
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, attrs)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL):
            raise
        _remount_tree(target, plan, ro)
    finally:
        os.close(fd)


def _remount_tree(target: str, plan: list[tuple[str, str]], ro: int) -> None:
    """Kernels without mount_setattr: remount every bind, then the tmpfs."""
    base = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    for name, _host in plan:
        if name:
            _remount_bind(os.path.join(target, name), base | ro)
    if plan and plan[0][0] == "":
        _remount_bind(target, base | ro)
    elif ro:
        sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_RDONLY | base, "mode=755")


def cgroup_plan_from_proc() -> list[tuple[str, str]]:
    """(name under /sys/fs/cgroup, host dir of this process's cgroup) for each hierarchy.

    Read from /proc/self/cgroup after the parent placed us in the container's cgroup. A single
    entry named "" means a pure cgroup v2 host."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, ctrls, path = line.rstrip("\n").split(":", 2)
            paths[ctrls] = path
    plan: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, super_opts = fields[sep + 1], fields[sep + 3]
            mnt_root, mountpoint = fields[3], fields[4]
            if fstype == "cgroup":
                subs = [o for o in super_opts.split(",") if o not in ("rw", "ro") and not o.startswith("release_agent")]
                key = next((k for k in paths if k and set(k.split(",")) == set(subs)), None)
                if key is None:
                    continue
            elif fstype == "cgroup2":
                key = ""
                if key not in paths:
                    continue
            else:
                continue
            rel = os.path.relpath(paths[key], mnt_root) if paths[key].startswith(mnt_root) else paths[key]
            host_dir = os.path.normpath(os.path.join(mountpoint, rel))
            name = os.path.basename(mountpoint)
            if fstype == "cgroup2" and mountpoint == "/sys/fs/cgroup":
                return [("", host_dir)]
            plan.append((name, host_dir))
    return plan


def _setup_dev(root: str, devices: list[dict[str, Any]], userns: bool) -> None:
    """Populate the /dev tmpfs we just mounted: through its fd (it is empty and ours), in one pass."""
    dev = secure_join(root, "/dev")
    fd = _open_in_root(root, dev)
    try:
        if userns:
            for path, typ, major, minor, mode in DEFAULT_DEVICES:
                _make_device(root, {"path": path, "type": typ, "major": major, "minor": minor, "fileMode": mode},
                             userns)
        else:
            for path, _typ, major, minor, mode in DEFAULT_DEVICES:
                name = path[len("/dev/"):]
                os.mknod(name, stat.S_IFCHR | mode, os.makedev(major, minor), dir_fd=fd)
                os.chmod(name, mode, dir_fd=fd)  # the umask must not narrow the mode
        # the config's devices before the symlinks: a privileged container lists the host's /dev/ptmx,
        # which must not be created through the ptmx symlink into devpts (and the symlink wins)
        for d in devices:
            _make_device(root, d, userns)
        # (no contextlib here: it costs milliseconds of imports on every container start)
        links = [(src, link[len("/dev/"):]) for src, link in DEV_SYMLINKS]
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "core"))
        for src, name in links:
            try:
                os.symlink(src, name, dir_fd=fd)
            except FileExistsError:
                pass
        try:
            os.unlink("ptmx", dir_fd=fd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=fd)
    finally:
        os.close(fd)


def _make_device(root: str, d: dict[str, Any], userns: bool) -> None:
    path = d["path"]
    typ = d.get("type", "c")
    kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}.get(typ)
    if kind is None:
        raise RootfsError(f"{typ} is not a valid device type for device {path}")
    target = secure_join(root, path)
    _mkdir_all(root, os.path.dirname(target))
    if userns:
        # mknod is not allowed in a user namespace: bind the host's node, as runc does.
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
        _mount_at(root, target, path, None, sc.MS_BIND, None)
        return
    if os.path.lexists(target):
        os.unlink(target)
    mode = d.get("fileMode", 0o666)
    os.mknod(target, kind | (mode & 0o7777), os.makedev(d.get("major", 0), d.get("minor", 0)))
    os.chmod(target, mode & 0o7777)  # umask must not narrow the mode
    os.lchown(target, d.get("uid", 0), d.get("gid", 0))


def prepare(config: dict[str, Any], rootfs: str, *, userns: bool,
            cgroup_plan: list[tuple[str, str]] | None = None,
            defer_cgroups: bool = False) -> list[dict[str, Any]]:
    """Everything before pivot_root. `rootfs` is an absolute host path. With `defer_cgroups` the
    cgroup mounts (and any later mount nested under one, to keep their order) are not made but
    returned, for `mount_deferred` once the cgroup directories exist."""
    linux = config.get("linux") or {}
    prop = linux.get("rootfsPropagation")
    root_prop = mountopts.propagation_flag(prop) if prop else sc.MS_PRIVATE | sc.MS_REC
    # Our own view of the host tree must not propagate back (nor, by default, receive).
    sc.mount(None, "/", None, (root_prop if root_prop & (sc.MS_SLAVE | sc.MS_PRIVATE) else sc.MS_PRIVATE) | sc.MS_REC,
             None)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    plan = cgroup_plan
    has_dev_tmpfs = False
    deferred: list[dict[str, Any]] = []
    for m in config.get("mounts") or []:
        if defer_cgroups and (m.get("type") in ("cgroup", "cgroup2") or _nested_in(m, deferred)):
            deferred.append(m)
            continue
        if m.get("type") in ("cgroup", "cgroup2") and plan is None:
            plan = cgroup_plan_from_proc()
        if m.get("destination") == "/dev" and m.get("type") == "tmpfs":
            has_dev_tmpfs = True
        _mount_one(rootfs, m, plan or [], userns)
    if has_dev_tmpfs:
        _setup_dev(rootfs, linux.get("devices") or [], userns)
    else:
        for d in linux.get("devices") or []:
            _make_device(rootfs, d, userns)
    return deferred


def _nested_in(m: dict[str, Any], outer: list[dict[str, Any]]) -> bool:
    dest = os.path.normpath("/" + str(m.get("destination") or ""))
    for o in outer:
        top = os.path.normpath("/" + str(o.get("destination") or ""))
        if dest == top or dest.startswith(top.rstrip("/") + "/"):
            return True
    return False


def mount_deferred(rootfs: str, mounts: list[dict[str, Any]], plan: list[tuple[str, str]],
                   userns: bool) -> None:
    """The mounts `prepare` deferred, in their original order."""
    if mounts and not plan:
        plan = cgroup_plan_from_proc()
    for m in mounts:
        _mount_one(rootfs, m, plan, userns)


def pivot(rootfs: str, no_pivot: bool) -> None:
    os.chdir(rootfs)
    if no_pivot:
        sc.mount(rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
    else:
        sc.pivot_root(".", ".")
        # The old root is now stacked under "."; detach it without propagating the unmount back.
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def _dev_null_ok() -> bool:
    # CVE-2025-31133: never bind a /dev/null that is not the real null device.
    try:
        st = os.stat("/dev/null", follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def mask_paths(paths: list[str]) -> None:
    null_ok = None
    for p in paths:
        try:
            st = os.stat(p, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY, None)
        else:
            if null_ok is None:
                null_ok = _dev_null_ok()
            if not null_ok:
                raise RootfsError("/dev/null is not the null device: refusing to mask paths with it")
            sc.mount("/dev/null", p, None, sc.MS_BIND, None)


def readonly_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC, None)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            raise
        _remount_bind(p, sc.MS_RDONLY)


def readonly_root() -> None:
    _remount_bind("/", sc.MS_RDONLY)
