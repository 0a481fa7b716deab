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
# Recursive variants (runc's, OCI runtime-spec 1.1): the attribute goes to the whole mount tree by
# mount_setattr(AT_RECURSIVE) after the mount. option -> (attributes to clear, attributes to set).
# The atime attributes are one field, not bits: setting one must clear the whole field (the kernel
# refuses a partial clear), so each atime option names its value.
_REC_ATTRS: dict[str, tuple[int, int]] = {
    "rro": (0, sc.MOUNT_ATTR_RDONLY),
    "rrw": (sc.MOUNT_ATTR_RDONLY, 0),
    "rnosuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rsuid": (sc.MOUNT_ATTR_NOSUID, 0),
    "rnodev": (0, sc.MOUNT_ATTR_NODEV),
    "rdev": (sc.MOUNT_ATTR_NODEV, 0),
    "rnoexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rexec": (sc.MOUNT_ATTR_NOEXEC, 0),
    "rnodiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (sc.MOUNT_ATTR_NODIRATIME, 0),
    "rrelatime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_RELATIME),
    "rnorelatime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_STRICTATIME),  # neither relatime nor noatime
    "rnoatime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_NOATIME),
    "ratime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_RELATIME),  # the kernel's default
    "rstrictatime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (sc.MOUNT_ATTR__ATIME, sc.MOUNT_ATTR_RELATIME),
    "rnosymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0),
}
# Options runtimes accept but that need no mount(2) flag here.
_IGNORED = {"tmpcopyup", "idmap", "ridmap", "z", "Z"}


class MountOptions:
    __slots__ = ("data", "flags", "propagation", "rec_clear", "rec_set")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data = ""
        self.rec_set = 0  # mount_setattr attributes for the whole tree (the r* options)
        self.rec_clear = 0

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
        elif opt in _REC_ATTRS:
            unset, set_ = _REC_ATTRS[opt]
            if unset == sc.MOUNT_ATTR__ATIME:  # the last atime option wins
                out.rec_clear |= unset
                out.rec_set = (out.rec_set & ~unset) | set_
            else:  # the last of rro/rrw (etc.) wins
                out.rec_clear, out.rec_set = (out.rec_clear | unset) & ~set_, (out.rec_set & ~unset) | set_
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
