"""Linux capabilities for the container init: names, masks, and applying OCI `process.capabilities`.

Pure ctypes (through `berth.runtime.linux.syscalls`): the init calls `apply` on the hot path of every
container start, just before execve. Everything is validated before the first change, so a bad
request (unknown name, a capability this process cannot grant) fails without touching any set.

Order, as runc does it (init_linux.go `finalizeNamespace`): the init turns keep-caps on
(`prepare_user_switch`), switches uid/gid, turns it off (`finish_user_switch`), then calls `apply`.
Keep-caps is what lets the permitted set survive setresuid to a non-zero uid; the effective set is
emptied by that switch, which is why `apply` re-raises it from permitted before it drops bounding
capabilities (PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set).
"""

from __future__ import annotations

import ctypes

from berth.errors import InvalidArgument
from berth.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: this module is imported by every container's init
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# Bit numbers from linux/capability.h.
CAPS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
_NAMES = {bit: name for name, bit in CAPS.items()}

# moby daemon/pkg/oci/caps/defaults.go, in moby's order; mask 0xa80425fb.
DOCKER_DEFAULT: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAP_AMBIENT_IS_SET = 1
_last_cap: int | None = None


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def last_cap() -> int:
    """The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap); read once per process."""
    global _last_cap
    if _last_cap is None:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            _last_cap = int(f.read())
    return _last_cap


def to_mask(names: Iterable[str]) -> int:
    """Bit mask of capability names ("CAP_CHOWN", …); an unknown name is an error, in runc's wording."""
    mask = 0
    for name in names:
        bit = CAPS.get(name)
        if bit is None:
            raise InvalidArgument(f'unknown capability "{name}"')
        mask |= 1 << bit
    return mask


def from_mask(mask: int) -> list[str]:
    """Names of the bits set in `mask`, lowest bit first. Bits berth has no name for are an error."""
    if mask < 0 or mask >> (max(_NAMES) + 1):
        raise ValueError(f"capability mask {mask:#x} has bits berth does not know")
    return [_NAMES[bit] for bit in range(max(_NAMES) + 1) if mask >> bit & 1]


def _bounding_mask() -> int:
    mask = 0
    for bit in range(min(last_cap(), max(_NAMES)) + 1):
        if sc.prctl(sc.PR_CAPBSET_READ, bit) == 1:
            mask |= 1 << bit
    return mask


def host_bounding() -> list[str]:
    """This process's bounding set, by name (what a privileged container gets, as moby does)."""
    return from_mask(_bounding_mask())


def _capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of this thread."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    sc.raw_syscall(sc.SYS_capget, ctypes.byref(hdr), data)
    lo, hi = data[0], data[1]
    return (lo.effective | hi.effective << 32, lo.permitted | hi.permitted << 32,
            lo.inheritable | hi.inheritable << 32)


def _capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = effective >> shift & 0xFFFFFFFF
        data[i].permitted = permitted >> shift & 0xFFFFFFFF
        data[i].inheritable = inheritable >> shift & 0xFFFFFFFF
    sc.raw_syscall(sc.SYS_capset, ctypes.byref(hdr), data)


def current() -> dict[str, int]:
    """This thread's five sets as masks (for diagnostics and tests)."""
    eff, prm, inh = _capget()
    amb = 0
    for bit in range(min(last_cap(), max(_NAMES)) + 1):
        if sc.prctl(sc.PR_CAP_AMBIENT, _PR_CAP_AMBIENT_IS_SET, bit) == 1:
            amb |= 1 << bit
    return {"bounding": _bounding_mask(), "effective": eff, "inheritable": inh, "permitted": prm, "ambient": amb}


def _unavailable(what: str, missing: int) -> InvalidArgument:
    return InvalidArgument(f"can't apply capabilities: {what}: {', '.join(from_mask(missing))}")


def apply(capabilities: Mapping[str, Iterable[str] | None] | None) -> None:
    """Make this process's capability sets those of OCI `process.capabilities`.

    None leaves everything as it is (as runc does); a missing set means an empty one. Raises
    InvalidArgument, before changing anything, for an unknown name or a capability this process
    cannot grant (one outside its bounding set or its permitted set: the kernel would refuse it).
    """
    if capabilities is None:
        return
    want = {s: to_mask(capabilities.get(s) or ()) for s in SETS}
    supported = (1 << (last_cap() + 1)) - 1
    for s in SETS:
        if want[s] & ~supported:
            raise InvalidArgument(f"can't apply capabilities: not supported by this kernel: "
                                  f"{', '.join(from_mask(want[s] & ~supported))}")

    eff, prm, inh = _capget()
    bounding = _bounding_mask()
    # The kernel never grants outside the bounding set, nor permitted beyond what we hold now.
    asked = want["bounding"] | want["effective"] | want["inheritable"] | want["permitted"] | want["ambient"]
    if asked & ~bounding:
        raise _unavailable("not in the runtime's bounding set", asked & ~bounding)
    if want["permitted"] & ~prm:
        raise _unavailable("not in the runtime's permitted set", want["permitted"] & ~prm)
    if want["effective"] & ~want["permitted"]:
        raise _unavailable("effective capabilities must also be permitted", want["effective"] & ~want["permitted"])
    amb_missing = want["ambient"] & ~(want["permitted"] & want["inheritable"])
    if amb_missing:
        raise _unavailable("ambient capabilities must also be permitted and inheritable", amb_missing)
    # capset(2) caps a new inheritable set by the old one plus the (already reduced) bounding set.
    inh_missing = want["inheritable"] & ~(inh | want["bounding"])
    if inh_missing:
        raise _unavailable("inheritable capabilities must also be in the bounding set", inh_missing)
    drop = bounding & ~want["bounding"]
    setpcap = 1 << CAPS["CAP_SETPCAP"]
    # Dropping from bounding, or adding inheritable capabilities we do not hold, needs CAP_SETPCAP.
    needs_setpcap = bool(drop or want["inheritable"] & ~(inh | prm))
    if needs_setpcap and not prm & setpcap:
        raise _unavailable("the runtime lacks", setpcap)

    if needs_setpcap and not eff & setpcap:
        # setresuid to a non-root uid emptied the effective set; take back what is permitted.
        _capset(prm, prm, inh)
    for bit in range(min(last_cap(), max(_NAMES)) + 1):
        if drop >> bit & 1:
            sc.prctl(sc.PR_CAPBSET_DROP, bit)
    _capset(want["effective"], want["permitted"], want["inheritable"])
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for bit in range(max(_NAMES) + 1):
        if want["ambient"] >> bit & 1:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, bit)


def prepare_user_switch() -> None:
    """Keep the permitted set across the coming setresuid to a non-root uid (PR_SET_KEEPCAPS)."""
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)


def finish_user_switch() -> None:
    """Turn keep-caps off again once the uid switch is done, so later uid changes drop caps as usual."""
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
