"""OCI mount options -> mount(2) flags, propagation flags and the data string."""

from __future__ import annotations

from berth.runtime.linux import syscalls as sc

# option -> (clear?, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "suid": (True, sc.MS_NOSUID),
    "nosuid": (False, sc.MS_NOSUID),
    "dev": (True, sc.MS_NODEV),
    "nodev": (False, sc.MS_NODEV),
    "exec": (True, sc.MS_NOEXEC),
    "noexec": (False, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME),
    "nolazytime": (True, sc.MS_LAZYTIME),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "symfollow": (True, sc.MS_NOSYMFOLLOW),
}
_PROPAGATION = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Options runtimes accept but that need no mount(2) flag here.
_IGNORED = {"tmpcopyup", "rro", "rrw", "idmap", "ridmap", "z", "Z"}


class MountOptions:
    __slots__ = ("data", "flags", "propagation")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data = ""

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)

    @property
    def recursive_bind(self) -> bool:
        return bool(self.flags & sc.MS_REC)


def parse(options: list[str] | None) -> MountOptions:
    out = MountOptions()
    data: list[str] = []
    for opt in options or []:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            out.flags = out.flags & ~flag if clear else out.flags | flag
        elif opt in _PROPAGATION:
            out.propagation.append(_PROPAGATION[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    out.data = ",".join(data)
    return out


def propagation_flag(name: str) -> int:
    """For `linux.rootfsPropagation`."""
    if name not in _PROPAGATION:
        raise ValueError(f"invalid rootfs propagation {name!r}")
    return _PROPAGATION[name]
