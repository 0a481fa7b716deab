"""Install a ready BPF program as this process's seccomp filter: seccomp(2), no libseccomp.

This is the part the container init runs on every start, just before execve, so it is ctypes and
one system call: the BPF was compiled (and cached) earlier by `compile_bpf`.
"""

from __future__ import annotations

import ctypes
import errno
import os

from berth.errors import InvalidArgument
from berth.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: this module runs in every container's init
if TYPE_CHECKING:
    from collections.abc import Iterable

SECCOMP_SET_MODE_FILTER = 1
# linux/seccomp.h; the OCI spec's `linux.seccomp.flags` names. runc knows these three.
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
# What runc loads with when the spec has no `flags` key at all (not even an empty list).
DEFAULT_FLAGS = ("SECCOMP_FILTER_FLAG_SPEC_ALLOW",)
BPF_MAXINSNS = 4096
SOCK_FILTER_SIZE = 8  # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def flag_bits(flags: Iterable[str]) -> int:
    bits = 0
    for flag in flags:
        try:
            bits |= FLAGS[flag]
        except KeyError:
            raise InvalidArgument(f"seccomp flag {flag} is not known to berth") from None
    return bits


def load_bpf(bpf: bytes, flags: list[str] | None = None) -> None:
    """Install `bpf` (a struct sock_filter array) with seccomp(SECCOMP_SET_MODE_FILTER, flags).

    `flags` None means runc's default (SPEC_ALLOW, dropped if this kernel predates it); [] means none.
    Needs CAP_SYS_ADMIN or no_new_privs already set, as the kernel requires.
    """
    n, rest = divmod(len(bpf), SOCK_FILTER_SIZE)
    if rest or not 0 < n <= BPF_MAXINSNS:
        raise InvalidArgument(f"seccomp: invalid BPF program of {len(bpf)} bytes")
    bits = flag_bits(DEFAULT_FLAGS if flags is None else flags)
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(n, ctypes.addressof(buf))
    try:
        sc.raw_syscall(sc.SYS_seccomp, SECCOMP_SET_MODE_FILTER, bits, ctypes.byref(prog))
    except OSError as e:
        if flags is None and bits and e.errno == errno.EINVAL:
            sc.raw_syscall(sc.SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(prog))
            return
        err = e.errno or errno.EINVAL
        raise OSError(err, f"error loading seccomp filter into kernel: {os.strerror(err)}") from None
