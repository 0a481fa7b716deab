"""Mounts as data (`Mount`, the OCI runtime spec's shape without a destination) and the two helpers
that perform them: `mount(mounts, target)` and `unmount(target)`.

The runtime may perform these itself from the spec; berth's image code uses them for export, diff and
tests. An overlay whose options don't fit in one page (many layers under a long data root) is mounted
through the new mount API, one `lowerdir+` per layer (Linux ≥ 6.8), instead of failing.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MNT_DETACH = 2
PAGE = 4096

# new mount API (x86_64 and the generic table agree on these numbers)
_SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 429, 430, 431, 432
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC, _MOVE_MOUNT_F_EMPTY_PATH = 1, 1, 4
_MOUNT_ATTR_RDONLY = 1


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, "options": list(self.options)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mount:
        return cls(str(d["type"]), str(d["source"]), [str(x) for x in d.get("options") or []])


def _err(what: str, target: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what} {target}: {os.strerror(e)}")


def _sys_mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                   data.encode() if data else None) != 0:
        raise _err("mount", target)


def _split(options: list[str]) -> tuple[int, list[str]]:
    flags, data = 0, []
    for o in options:
        if o == "ro":
            flags |= MS_RDONLY
        elif o in ("rw", "bind", "rbind"):
            continue
        else:
            data.append(o)
    return flags, data


def _mount_new_api(m: Mount, target: str, readonly: bool, data: list[str]) -> None:
    fs = _libc.syscall(_SYS_FSOPEN, m.type.encode(), _FSOPEN_CLOEXEC)
    if fs < 0:
        raise _err("fsopen", target)
    mnt = -1
    try:
        for opt in data:
            key, eq, value = opt.partition("=")
            if key == "lowerdir" and eq:
                for layer in value.split(":"):  # one layer per call: no page-size limit
                    if _libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_STRING, b"lowerdir+", layer.encode(), 0) < 0:
                        raise _err("fsconfig lowerdir+", target)
            elif eq:
                if _libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_STRING, key.encode(), value.encode(), 0) < 0:
                    raise _err(f"fsconfig {key}", target)
            elif _libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_FLAG, key.encode(), None, 0) < 0:
                raise _err(f"fsconfig {key}", target)
        if _libc.syscall(_SYS_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            raise _err("fsconfig create", target)
        mnt = _libc.syscall(_SYS_FSMOUNT, fs, _FSMOUNT_CLOEXEC, _MOUNT_ATTR_RDONLY if readonly else 0)
        if mnt < 0:
            raise _err("fsmount", target)
        if _libc.syscall(_SYS_MOVE_MOUNT, mnt, b"", -100, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH) < 0:
            raise _err("move_mount", target)
    finally:
        os.close(fs)
        if mnt >= 0:
            os.close(mnt)


def mount(mounts: list[Mount], target: str) -> None:
    """Perform `mounts` on `target`, in order (berth's snapshots return exactly one)."""
    for m in mounts:
        flags, data = _split(m.options)
        if m.type == "bind" or "bind" in m.options or "rbind" in m.options:
            bflags = MS_BIND | (MS_REC if "rbind" in m.options else 0)
            _sys_mount(m.source, target, None, bflags, None)
            if flags & MS_RDONLY:
                try:
                    _sys_mount("", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | bflags, None)
                except OSError:
                    unmount(target)
                    raise
            continue
        text = ",".join(data)
        if len(text) >= PAGE and m.type == "overlay":
            _mount_new_api(m, target, bool(flags & MS_RDONLY), data)
        else:
            _sys_mount(m.source, target, m.type, flags, text or None)


def unmount(target: str, lazy_fallback: bool = True) -> None:
    """Unmount `target` (all mounts stacked on it); a busy mount is detached lazily."""
    while True:
        if _libc.umount2(target.encode(), 0) == 0:
            continue
        e = ctypes.get_errno()
        if e == 22:  # EINVAL: not a mount point (any more)
            return
        if e == 16 and lazy_fallback and _libc.umount2(target.encode(), MNT_DETACH) == 0:  # EBUSY
            continue
        raise OSError(e, f"umount {target}: {os.strerror(e)}")
