"""cgroup v2 device rules: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup.

cgroup v2 has no devices.allow/deny files. The kernel instead runs the programs attached to a
cgroup (and to its ancestors) on every open and mknod of a device node; each gets
{access_type, major, minor} and returns 1 to allow, 0 to deny. Without one, a container with
CAP_MKNOD (Docker's default) could make and open any host device, a disk included.

The rules go through the same model as v1 (devices.DeviceState: a default and exceptions, the
kernel's own semantics), and the program checks the exceptions in order:

- deny by default: allowed if one exception matches the device and covers all the access asked;
- allow by default: denied if one exception matches the device and shares any of the access asked.

Changing the rules (`update`) attaches the new program before detaching the old one, so there is
no moment without a filter.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from .devices import DeviceState
from .fs import CgroupError

# bpf(2): commands, program and attach types, flags (uapi/linux/bpf.h)
_SYS_BPF = 321  # x86_64
_PROG_LOAD, _PROG_ATTACH, _PROG_DETACH, _PROG_GET_FD_BY_ID, _PROG_QUERY = 5, 8, 9, 13, 16
_PROG_TYPE_CGROUP_DEVICE = 15
_CGROUP_DEVICE = 6  # attach type
_F_ALLOW_MULTI = 2
_CGROUP2_SUPER_MAGIC = 0x63677270

# what the program sees: access_type = (access << 16) | type
_DEV_BLOCK, _DEV_CHAR = 1, 2
_ACC_MKNOD, _ACC_READ, _ACC_WRITE = 1, 2, 4
_TYPES = {"b": _DEV_BLOCK, "c": _DEV_CHAR}

# eBPF opcodes used here
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_MOV_X = 0xBF  # dst = src (64-bit)
_MOV_K = 0xB7  # dst = imm
_AND_K = 0x54  # dst &= imm (32-bit)
_RSH_K = 0x74  # dst >>= imm (32-bit)
_JNE_K = 0x55  # if dst != imm: pc += off
_JEQ_K = 0x15  # if dst == imm: pc += off
_EXIT = 0x95

_R0, _R1, _R2, _R3, _R4, _R5 = 0, 1, 2, 3, 4, 5


def _insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def _access_bits(v1_bits: int) -> int:
    """devices.DeviceState's r=1 w=2 m=4 as the program's READ/WRITE/MKNOD."""
    return (_ACC_READ if v1_bits & 1 else 0) | (_ACC_WRITE if v1_bits & 2 else 0) | (_ACC_MKNOD if v1_bits & 4 else 0)


def program(state: DeviceState) -> bytes:
    """The eBPF instructions that decide as the v1 devices cgroup would with `state`."""
    out = [
        _insn(_LDX_W, _R2, _R1, 0),  # r2 = access_type
        _insn(_MOV_X, _R3, _R2),
        _insn(_AND_K, _R3, imm=0xFFFF),  # r3 = device type
        _insn(_RSH_K, _R2, imm=16),  # r2 = access asked
        _insn(_LDX_W, _R4, _R1, 4),  # r4 = major
        _insn(_LDX_W, _R5, _R1, 8),  # r5 = minor
    ]
    verdict = 0 if state.default_allow else 1  # what a matching exception decides
    for (kind, major, minor), bits in state.exceptions.items():
        block: list[tuple[int, int, int, int]] = []  # (op, dst, src, imm); jumps go to the block's end
        block.append((_JNE_K, _R3, 0, _TYPES[kind]))
        if major >= 0:
            block.append((_JNE_K, _R4, 0, major))
        if minor >= 0:
            block.append((_JNE_K, _R5, 0, minor))
        acc = _access_bits(bits)
        block.append((_MOV_X, _R1, _R2, 0))  # r1 = access asked (the context pointer is no longer needed)
        if state.default_allow:
            block.append((_AND_K, _R1, 0, acc))
            block.append((_JEQ_K, _R1, 0, 0))  # shares nothing with the denied access: next
        else:
            block.append((_AND_K, _R1, 0, ~acc & 0x7))
            block.append((_JNE_K, _R1, 0, 0))  # asks for more than allowed: next
        tail = [_insn(_MOV_K, _R0, imm=verdict), _insn(_EXIT)]
        n = len(block) + len(tail)
        for i, (op, dst, src, imm) in enumerate(block):
            jump = op in (_JNE_K, _JEQ_K)
            out.append(_insn(op, dst, src, n - i - 1 if jump else 0, imm))
        out.extend(tail)
    out += [_insn(_MOV_K, _R0, imm=1 if state.default_allow else 0), _insn(_EXIT)]
    return b"".join(out)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    ret = _libc.syscall(_SYS_BPF, ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def _load(insns: bytes) -> int:
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("<IIQQIIQ", attr, 0, _PROG_TYPE_CGROUP_DEVICE, len(insns) // 8, ctypes.addressof(code),
                         ctypes.addressof(license_), 1 if log else 0, len(log) if log else 0,
                         ctypes.addressof(log) if log else 0)
        struct.pack_into("<I", attr, 68, _CGROUP_DEVICE)  # expected_attach_type
        return _bpf(_PROG_LOAD, attr)

    try:
        return attempt(None)
    except OSError as e:
        log = ctypes.create_string_buffer(1 << 20)  # again, with the verifier's log, to say why
        try:
            return attempt(log)
        except OSError:
            pass
        detail = log.value.decode(errors="replace").strip().splitlines()
        raise CgroupError(f"failed to load the device filter: {e.strerror}"
                          + (f" ({detail[-1]})" if detail else "")) from None


def _attached(cgroup_fd: int) -> list[int]:
    """IDs of the device programs attached to this cgroup itself."""
    room = 64
    while True:
        ids = (ctypes.c_uint32 * room)()
        attr = ctypes.create_string_buffer(40)
        struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, _CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), room)
        try:
            _bpf(_PROG_QUERY, attr)
        except OSError as e:
            count = struct.unpack_from("<I", attr, 24)[0]
            if e.errno == errno.ENOSPC and count > room:  # more than we made room for: again, bigger
                room = count
                continue
            raise
        count = struct.unpack_from("<I", attr, 24)[0]
        return list(ids[:count])


def _attach_args(cgroup_fd: int, prog_fd: int, flags: int) -> ctypes.Array[ctypes.c_char]:
    attr = ctypes.create_string_buffer(24)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, _CGROUP_DEVICE, flags)
    return attr


def is_cgroup2(directory: str) -> bool:
    """Whether `directory` is on a real cgroup2 mount (a program cannot attach elsewhere)."""
    buf = ctypes.create_string_buffer(120)  # struct statfs; f_type comes first
    _libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    if _libc.statfs(os.fsencode(directory), buf) != 0:
        return False
    return bool(struct.unpack_from("<q", buf, 0)[0] == _CGROUP2_SUPER_MAGIC)


def apply(directory: str, state: DeviceState) -> None:
    """Put the filter for `state` on the cgroup `directory`, replacing the ones berth put there."""
    prog = _load(program(state))
    try:
        cg = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        os.close(prog)
        raise
    try:
        try:
            old = _attached(cg)
            _bpf(_PROG_ATTACH, _attach_args(cg, prog, _F_ALLOW_MULTI))
        except OSError as e:
            raise CgroupError(f"failed to attach the device filter to {directory}: {e.strerror}") from None
        for prog_id in old:
            id_attr = ctypes.create_string_buffer(16)
            struct.pack_into("<I", id_attr, 0, prog_id)
            try:
                old_fd = _bpf(_PROG_GET_FD_BY_ID, id_attr)
            except OSError:
                continue  # already gone
            try:
                _bpf(_PROG_DETACH, _attach_args(cg, old_fd, 0))
            except OSError:
                pass
            finally:
                os.close(old_fd)
    finally:
        os.close(cg)
        os.close(prog)  # the attachment keeps the program alive for the cgroup's lifetime
