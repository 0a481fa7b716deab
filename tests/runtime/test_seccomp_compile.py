"""compile_bpf: the policy inside the BPF (read by a small classic-BPF interpreter), errors, and the cache.

The interpreter is a test-only model of the kernel's seccomp BPF machine, used to check every
syscall of the profile on every architecture quickly; test_seccomp_kernel.py proves the same
filters on the real kernel.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from typing import Any

import pytest

from berth.errors import InvalidArgument
from berth.runtime import caps
from berth.runtime.seccomp import cache, compile_bpf, default_oci, default_profile, enosys, to_oci
from berth.runtime.seccomp import compile as compile_mod
from berth.runtime.seccomp import libseccomp as scmp

AUDIT_X86_64, AUDIT_I386, AUDIT_AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
TOKENS = {"x86_64": 0xC000003E, "x86": 0x40000003, "x32": 0x4000003E}
RET_ALLOW, RET_ENOSYS, RET_EPERM = 0x7FFF0000, 0x00050000 | 38, 0x00050001


def run_bpf(bpf: bytes, nr: int, arch: int, args: tuple[int, ...] = (0,) * 6) -> int:
    """Evaluate a seccomp classic-BPF program on struct seccomp_data; returns the SECCOMP_RET_* value."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    prog = [struct.unpack_from("=HBBI", bpf, i) for i in range(0, len(bpf), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:  # ld #k
            a = k
        elif code == 0x60:  # ld M[k]
            a = mem[k]
        elif code == 0x61:  # ldx M[k]
            x = mem[k]
        elif code == 0x02:  # st M[k]
            mem[k] = a
        elif code == 0x03:  # stx M[k]
            mem[k] = x
        elif code == 0x07:  # tax
            x = a
        elif code == 0x87:  # txa
            a = x
        elif cls == 0x04:  # alu
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: a + src, 0x10: a - src, 0x50: a & src, 0x40: a | src, 0xA0: a ^ src,
                 0x60: a << src, 0x70: a >> src}[op] & 0xFFFFFFFF
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:
            src = x if code & 0x08 else k
            op = code & 0xF0
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if cond else jf
        elif code == 0x06:  # ret #k
            return k
        elif code == 0x16:  # ret a
            return a
        else:
            raise AssertionError(f"opcode {code:#x} not modelled")


@pytest.fixture(autouse=True)
def _fresh_memory_cache() -> None:
    cache.clear_memory()


def _resolved_action(oci: dict[str, Any], name: str, args: tuple[int, ...]) -> int:
    """What the OCI object says for `name` called with `args`: the first matching rule's action."""
    def ret(action: str, errno_ret: int | None) -> int:
        base = {"SCMP_ACT_ALLOW": RET_ALLOW, "SCMP_ACT_ERRNO": 0x00050000}[action]
        return base | (1 if errno_ret is None else errno_ret) if action == "SCMP_ACT_ERRNO" else base

    def holds(a: dict[str, Any]) -> bool:
        v = args[a["index"]]
        return {"SCMP_CMP_EQ": v == a["value"], "SCMP_CMP_NE": v != a["value"], "SCMP_CMP_LT": v < a["value"],
                "SCMP_CMP_GT": v > a["value"], "SCMP_CMP_MASKED_EQ": v & a["value"] == a.get("valueTwo", 0)}[a["op"]]

    for rule in oci["syscalls"]:
        if name in rule["names"] and all(holds(a) for a in rule.get("args", [])):
            return ret(rule["action"], rule.get("errnoRet"))
    return ret(oci["defaultAction"], oci.get("defaultErrnoRet"))


@pytest.mark.parametrize("capset", [list(caps.DOCKER_DEFAULT), [*caps.DOCKER_DEFAULT, "CAP_SYS_ADMIN"]])
@pytest.mark.parametrize("abi", ["x86_64", "x86", "x32"])
def test_bpf_matches_policy_for_every_profile_syscall(capset: list[str], abi: str) -> None:
    oci = to_oci(default_profile(), capset, arch="x86_64", kernel=(6, 18))
    bpf = compile_bpf(oci, cache_dir="")
    audit = AUDIT_I386 if abi == "x86" else AUDIT_X86_64
    names = {n for call in default_profile()["syscalls"] for n in call["names"]}
    checked = 0
    for name in sorted(names):
        nr = scmp.lib().seccomp_syscall_resolve_name_arch(TOKENS[abi], name.encode())
        if nr < 0:
            continue  # not a syscall on this ABI (or unknown to libseccomp: the stub's business below)
        for args in [(0,) * 6, (0xFFFFFFFF,) + (0,) * 5, (38,) + (0,) * 5, (0x10000000,) + (0,) * 5]:
            if name == "socket" and abi == "x86":
                continue  # i386 socket is multiplexed through socketcall; libseccomp handles both forms
            assert run_bpf(bpf, nr, audit, args) == _resolved_action(oci, name, args), (name, abi, args)
        checked += 1
    assert checked > 300


def test_enosys_stub_boundaries() -> None:
    oci = default_oci(caps.DOCKER_DEFAULT)
    bpf = compile_bpf(oci, cache_dir="")
    names = {n for r in oci["syscalls"] for n in r["names"]}
    for abi, audit in [("x86_64", AUDIT_X86_64), ("x86", AUDIT_I386), ("x32", AUDIT_X86_64)]:
        top = max(scmp.lib().seccomp_syscall_resolve_name_arch(TOKENS[abi], n.encode()) for n in names)
        assert run_bpf(bpf, top + 1, audit) == RET_ENOSYS, abi
        assert run_bpf(bpf, top + 100, audit) == RET_ENOSYS, abi
        assert run_bpf(bpf, top, audit) != RET_ENOSYS, abi
    # holes below the top still get the default action, as in runc
    assert run_bpf(bpf, 168, AUDIT_X86_64) == RET_EPERM  # swapoff
    # x86_64 numbers with the x32 bit are judged by the x32 table, not the x86_64 one
    assert run_bpf(bpf, 0x40000000 | 272, AUDIT_X86_64) == RET_EPERM  # x32 unshare
    assert run_bpf(bpf, 0x40000000 | 39, AUDIT_X86_64) == RET_ALLOW  # x32 getpid


def test_no_stub_when_default_allows_or_is_enosys() -> None:
    allow = compile_bpf({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}, cache_dir="")
    assert run_bpf(allow, 1000, AUDIT_X86_64) == RET_ALLOW
    oci = default_oci(caps.DOCKER_DEFAULT)
    oci["defaultErrnoRet"] = 38
    enosys_default = compile_bpf(oci, cache_dir="")
    assert run_bpf(enosys_default, 1000, AUDIT_X86_64) == RET_ENOSYS
    assert run_bpf(enosys_default, 168, AUDIT_X86_64) == RET_ENOSYS  # default action, not a stub


def test_stub_alone() -> None:
    assert enosys.stub({}) == b""
    tail = struct.pack("=HBBI", 0x06, 0, 0, RET_ALLOW)  # "the filter": allow
    s390 = enosys.stub({0x80000016: 400}) + tail
    assert run_bpf(s390, 0, 0x80000016) == RET_ENOSYS  # s390 multiplexer for unknown numbers
    assert run_bpf(s390, 401, 0x80000016) == RET_ENOSYS
    assert run_bpf(s390, 400, 0x80000016) == RET_ALLOW
    assert run_bpf(s390, 9999, AUDIT_X86_64) == RET_ALLOW  # other architectures go to the filter
    only_x32 = enosys.stub({TOKENS["x32"]: 0x40000000 | 300}) + tail
    assert run_bpf(only_x32, 9999, AUDIT_X86_64) == RET_ALLOW  # native calls: no table, to the filter
    assert run_bpf(only_x32, 0x40000000 | 301, AUDIT_X86_64) == RET_ENOSYS


def test_other_architectures_compile() -> None:
    """A spec may name foreign architectures; libseccomp compiles them (aarch64 here)."""
    oci = to_oci(default_profile(), caps.DOCKER_DEFAULT, arch="aarch64", kernel=(6, 18))
    assert oci["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    bpf = compile_bpf(oci, cache_dir="")
    nr_unshare = scmp.lib().seccomp_syscall_resolve_name_arch(scmp.arch_token("SCMP_ARCH_AARCH64"), b"unshare")
    nr_read = scmp.lib().seccomp_syscall_resolve_name_arch(scmp.arch_token("SCMP_ARCH_AARCH64"), b"read")
    assert run_bpf(bpf, nr_unshare, AUDIT_AARCH64) == RET_EPERM
    assert run_bpf(bpf, nr_read, AUDIT_AARCH64) == RET_ALLOW


@pytest.mark.parametrize(("oci", "message"), [
    ({}, "defaultAction is required"),
    ({"defaultAction": "SCMP_ACT_FOO"}, "string SCMP_ACT_FOO is not a valid action for seccomp"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     "SCMP_ACT_NOTIFY is not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "X"}]}]},
     "string X is not a valid operator for seccomp"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "invalid argument index 6"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     "invalid argument value -1"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}, "invalid errnoRet 70000"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}, "has no names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "error validating Seccomp architecture: SCMP_ARCH_VAX"),
])
def test_invalid_specs(oci: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        compile_bpf(oci, cache_dir="")


def test_redundant_rules_are_skipped() -> None:
    """A rule with the default action adds nothing (and libseccomp would refuse it); runc skips it."""
    a = compile_bpf({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
        cache_dir="")
    b = compile_bpf({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}, cache_dir="")
    assert a == b


# --- cache ------------------------------------------------------------------------------------

SMALL = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}


def _files(d: str) -> list[str]:
    return sorted(os.listdir(d))


def test_disk_cache_written_atomically_and_reused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    d = str(tmp_path / "cache")
    bpf = compile_bpf(SMALL, cache_dir=d)
    (name,) = _files(d)
    assert name.endswith(".bpf") and len(name) == 64 + 4
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    with open(os.path.join(d, name), "rb") as f:
        assert f.read()[32:] == bpf

    def no_compiler(oci: dict[str, Any]) -> bytes:
        raise AssertionError("compiled despite the cache")

    monkeypatch.setattr(compile_mod, "_compile", no_compiler)
    cache.clear_memory()
    assert compile_bpf(SMALL, cache_dir=d) == bpf  # a new process would find it on disk
    with pytest.raises(AssertionError, match="compiled despite"):
        compile_bpf({**SMALL, "defaultErrnoRet": 3}, cache_dir=d)  # another object, another key


def test_memory_cache_needs_no_disk(tmp_path: Any) -> None:
    d = str(tmp_path / "cache")
    bpf = compile_bpf(SMALL, cache_dir=d)
    for f in _files(d):
        os.unlink(os.path.join(d, f))
    assert compile_bpf(SMALL, cache_dir=d) is bpf
    assert _files(d) == []


def test_corrupt_cache_file_is_ignored_and_replaced(tmp_path: Any) -> None:
    d = str(tmp_path / "cache")
    bpf = compile_bpf(SMALL, cache_dir=d)
    (name,) = _files(d)
    path = os.path.join(d, name)
    allow_all = struct.pack("=HBBI", 0x06, 0, 0, RET_ALLOW)
    with open(path, "r+b") as f:  # a planted "allow everything" program without the right digest
        f.seek(32)
        f.write(allow_all)
        f.truncate()
    cache.clear_memory()
    assert compile_bpf(SMALL, cache_dir=d) == bpf
    with open(path, "rb") as f:
        assert f.read()[32:] == bpf


def test_untrusted_cache_dir_is_not_used(tmp_path: Any) -> None:
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    bpf = compile_bpf(SMALL, cache_dir=str(d))
    assert _files(str(d)) == []
    # nor read: a valid-looking file planted in a world-writable directory is not trusted
    good = tmp_path / "good"
    cache.clear_memory()
    compile_bpf(SMALL, cache_dir=str(good))
    (key_file,) = _files(str(good))
    allow_all = struct.pack("=HBBI", 0x06, 0, 0, RET_ALLOW)
    (d / key_file).write_bytes(hashlib.sha256(allow_all).digest() + allow_all)
    cache.clear_memory()
    assert compile_bpf(SMALL, cache_dir=str(d)) == bpf


def test_env_and_disabled_disk_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "from-env"
    monkeypatch.setenv("BERTH_SECCOMP_CACHE", str(d))
    compile_bpf(SMALL)
    assert len(_files(str(d))) == 1
    monkeypatch.setenv("BERTH_SECCOMP_CACHE", "")
    cache.clear_memory()
    compile_bpf({**SMALL, "defaultErrnoRet": 9})
    assert len(_files(str(d))) == 1


def test_unwritable_cache_still_compiles(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert compile_bpf(SMALL, cache_dir=str(blocker / "sub"))


def test_concurrent_writers_leave_one_whole_file(tmp_path: Any) -> None:
    d = str(tmp_path / "cache")
    oci = default_oci(caps.DOCKER_DEFAULT)
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                cache.clear_memory()
                compile_bpf(oci, cache_dir=d)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    (name,) = _files(d)  # no temporary files left behind
    cache.clear_memory()
    with open(os.path.join(d, name), "rb") as f:
        assert f.read()[32:] == compile_bpf(oci, cache_dir="")
