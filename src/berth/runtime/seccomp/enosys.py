"""The -ENOSYS stub runc prepends to every deny-by-default filter (runc libcontainer/seccomp/patchbpf).

A syscall newer than anything the profile names (or newer than libseccomp's table, so that the
profile's rule for it was skipped) would otherwise get the default action, EPERM; glibc and others
treat EPERM as final but fall back to an older call on ENOSYS, which is what a kernel without the
call would answer. So for each architecture in the filter: if the syscall number is above the
highest number the profile names for it, return ENOSYS; otherwise continue into the filter.

Written here from the seccomp(2) BPF ABI (struct seccomp_data: nr at 0, arch at 4), not from runc's
code. The stub is generated once per profile and cached with the rest of the BPF.
"""

from __future__ import annotations

import struct

# Classic BPF opcodes (linux/filter.h)
LD_W_ABS = 0x20
JMP_JA = 0x05
JMP_JEQ_K = 0x15
JMP_JGT_K = 0x25
JMP_JSET_K = 0x45
RET_K = 0x06

SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016
X32_SYSCALL_BIT = 0x40000000
# libseccomp's SCMP_ARCH_X32 is a made-up token; the kernel reports x32 calls as x86_64 + the x32 bit.
SCMP_ARCH_X32 = 0x4000003E

_ENOSYS, _FILTER = "enosys", "filter"


def stub(largest: dict[int, int]) -> bytes:
    """BPF to prepend to a filter, from {libseccomp arch token: largest syscall number the profile names}."""
    # kernel audit arch -> {"native" | "x32": largest number}
    arches: dict[int, dict[str, int]] = {}
    for token, nr in largest.items():
        if nr <= 0:
            continue
        if token == SCMP_ARCH_X32:
            arches.setdefault(AUDIT_ARCH_X86_64, {})["x32"] = nr
        else:
            arches.setdefault(token, {})["native"] = nr
    if not arches:
        return b""

    # (code, jt, jf, k) where jt/jf/k may name a label; labels are resolved once the layout is known.
    prog: list[tuple[int, int | str, int | str, int | str]] = [(LD_W_ABS, 0, 0, 4)]
    labels: dict[str, int] = {}
    for audit in arches:
        prog.append((JMP_JEQ_K, f"arch{audit}", 0, audit))
    prog.append((JMP_JA, 0, 0, _FILTER))
    for audit, modes in arches.items():
        labels[f"arch{audit}"] = len(prog)
        prog.append((LD_W_ABS, 0, 0, 0))
        if audit == AUDIT_ARCH_X86_64:
            # x32 calls carry the x32 bit in their number; compare each ABI with its own table.
            prog.append((JMP_JSET_K, f"x32_{audit}", 0, X32_SYSCALL_BIT))
            prog.append(_above(modes.get("native")))
            labels[f"x32_{audit}"] = len(prog)
            prog.append(_above(modes.get("x32")))
            continue
        if audit in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            # s390 multiplexes unknown large numbers through syscall 0, which nothing else uses.
            prog.append((JMP_JEQ_K, _ENOSYS, 0, 0))
        prog.append(_above(modes.get("native")))
    labels[_ENOSYS] = len(prog)
    prog.append((RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS))
    labels[_FILTER] = len(prog)

    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(prog):
        rel = {field: labels[v] - i - 1 if isinstance(v, str) else v for field, v in (("jt", jt), ("jf", jf), ("k", k))}
        if not (0 <= rel["jt"] <= 255 and 0 <= rel["jf"] <= 255):
            raise ValueError("seccomp: ENOSYS stub jump out of range")
        out += struct.pack("=HBBI", code, rel["jt"], rel["jf"], rel["k"])
    return bytes(out)


def _above(nr: int | None) -> tuple[int, int | str, int | str, int | str]:
    """Above `nr` -> ENOSYS, else into the filter; without a number, straight into the filter."""
    if nr is None:
        return (JMP_JA, 0, 0, _FILTER)
    return (JMP_JGT_K, _ENOSYS, _FILTER, nr)
