"""Raw Linux system calls through ctypes: namespaces, mounts, prctl, clone.

Everything here raises OSError with the real errno. Nothing here decides policy; callers do.
Python 3.11 has no os.unshare/os.setns, no mount(2) and no pivot_root(2).
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
# The same libc, called without releasing the GIL: a fork must not let another thread take the GIL
# between our hooks and the system call (the child would wait for it forever), as os.fork holds it.
_libc_gil = ctypes.PyDLL(None, use_errno=True)

# clone(2) / unshare(2) flags
CLONE_NEWTIME = 0x00000080
CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each OCI namespace type
NAMESPACE_PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70  # the atime field: cleared whenever one of the next three is set
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# x86_64 syscall numbers for calls glibc 2.36 does not wrap (or wraps unhelpfully)
SYS_clone = 56
SYS_setgroups = 116
SYS_setresuid = 117
SYS_setresgid = 119
SYS_capget = 125
SYS_capset = 126
SYS_pivot_root = 155
SYS_seccomp = 317
SYS_pidfd_open = 434
SYS_close_range = 436
SYS_mount_setattr = 442
SIGCHLD = 17

_libc.syscall.restype = ctypes.c_long
_libc_gil.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}", target)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(SYS_pivot_root, _b(new_root), _b(put_old)), "pivot_root", new_root)


# glibc's set*id wrappers make every thread it knows of switch too (POSIX semantics) and wait for
# them. A child of our raw clone still has the parent's other threads in glibc's list, threads that
# do not exist in the child, so the wrappers would wait forever: the child calls the kernel directly
# (a single-threaded process, so the per-thread system calls are exactly what it needs).
def setresuid(uid: int) -> None:
    _check(_libc.syscall(SYS_setresuid, ctypes.c_uint(uid), ctypes.c_uint(uid), ctypes.c_uint(uid)), "setresuid")


def setresgid(gid: int) -> None:
    _check(_libc.syscall(SYS_setresgid, ctypes.c_uint(gid), ctypes.c_uint(gid), ctypes.c_uint(gid)), "setresgid")


def setgroups(gids: list[int]) -> None:
    arr = (ctypes.c_uint * max(len(gids), 1))(*gids)
    _check(_libc.syscall(SYS_setgroups, ctypes.c_size_t(len(gids)), arr), "setgroups")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), "setdomainname")


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_libc.syscall(SYS_close_range, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)),
           "close_range")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
    """mount_setattr(2) (Linux 5.12): with AT_RECURSIVE, one call changes a whole mount tree."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(_libc.syscall(SYS_mount_setattr, ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr", path)


def raw_syscall(nr: int, *args: object) -> int:
    """For the few calls other modules wrap themselves (capset, seccomp)."""
    return _check(_libc.syscall(nr, *args), f"syscall {nr}")


_pyapi = ctypes.pythonapi


def clone(flags: int) -> int:
    """fork(2) that also creates new namespaces in the child, in one system call.

    Saves the second fork that unshare(CLONE_NEWPID) would need. Like os.fork it runs Python's
    before/after-fork hooks and keeps the GIL across the call, so other threads may exist as long
    as they hold no other lock the child needs (the runtime's only do blocking cgroup writes), and
    the child avoids glibc's process-wide set*id wrappers (see setresuid).
    Returns 0 in the child, the child's pid (in the caller's pid namespace) in the parent.
    """
    _pyapi.PyOS_BeforeFork()
    pid = _libc_gil.syscall(SYS_clone, ctypes.c_ulong(flags | SIGCHLD), None, None, None, None)
    if pid == 0:
        _pyapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _pyapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return int(pid)
