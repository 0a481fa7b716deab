"""ctypes binding to the few libseccomp.so.2 calls berth needs to compile a filter into BPF.

Why ctypes over the system library rather than a package: Debian's python3-seccomp only installs
for the system interpreter (not our venv), pyseccomp is itself a thin ctypes layer last released
in 2021, and we need eight functions. The library is opened on first use only, so importing this
module costs nothing on the container-start path, which loads ready BPF without libseccomp.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms on the start path
if TYPE_CHECKING:
    from typing import Any

# seccomp.h
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_ACT_ERRNO = 0x00050000
SCMP_ACT_TRACE = 0x7FF00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000

SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_LOG = 6
SCMP_FLTATR_CTL_SSB = 7
SCMP_FLTATR_CTL_OPTIMIZE = 8

SCMP_CMP = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
            "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
NR_SCMP_ERROR = -1


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp"""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class LibseccompError(OSError):
    pass


_lib: Any = None


def lib() -> Any:
    """The loaded library, with prototypes set (loaded once per process)."""
    global _lib
    if _lib is None:
        try:
            so = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise LibseccompError(f"seccomp: cannot load libseccomp.so.2 (install libseccomp2): {e}") from None
        ctx = ctypes.c_void_p
        so.seccomp_init.argtypes = [ctypes.c_uint32]
        so.seccomp_init.restype = ctx
        so.seccomp_release.argtypes = [ctx]
        so.seccomp_release.restype = None
        so.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        so.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        so.seccomp_arch_native.argtypes = []
        so.seccomp_arch_native.restype = ctypes.c_uint32
        so.seccomp_arch_add.argtypes = [ctx, ctypes.c_uint32]
        so.seccomp_arch_add.restype = ctypes.c_int
        so.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
        so.seccomp_attr_set.restype = ctypes.c_int
        so.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        so.seccomp_syscall_resolve_name.restype = ctypes.c_int
        so.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        so.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
        so.seccomp_rule_add_array.argtypes = [ctx, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                              ctypes.POINTER(ArgCmp)]
        so.seccomp_rule_add_array.restype = ctypes.c_int
        so.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]
        so.seccomp_export_bpf.restype = ctypes.c_int
        so.seccomp_version.argtypes = []
        so.seccomp_version.restype = ctypes.POINTER(_Version)
        _lib = so
    return _lib


def version() -> str:
    v = lib().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def check(rc: int, what: str) -> int:
    """libseccomp returns -errno on failure."""
    if rc < 0:
        raise LibseccompError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


def arch_token(oci_arch: str) -> int:
    """"SCMP_ARCH_X86_64" -> libseccomp's token; 0 if this libseccomp does not know it."""
    name = oci_arch.removeprefix("SCMP_ARCH_").lower()
    return int(lib().seccomp_arch_resolve_name(name.encode()))


def syscall_number(name: str) -> int:
    """Native syscall number (or libseccomp's negative pseudo-number); NR_SCMP_ERROR if unknown."""
    return int(lib().seccomp_syscall_resolve_name(name.encode()))
