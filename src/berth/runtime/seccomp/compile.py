"""Compile an OCI `linux.seccomp` object into a BPF program, as runc does, with libseccomp; cached.

runc's semantics (libcontainer/seccomp): SCMP_ACT_KILL means kill the thread; ERRNO and TRACE
without errnoRet return EPERM; a rule whose action equals the default action is redundant and
skipped; a syscall name this libseccomp does not know is skipped (the kernel probably lacks it);
conditions on the same argument more than once become one rule per condition (OR), otherwise one
rule with all of them (AND); binary-tree optimisation above 32 syscalls; and the -ENOSYS stub in
front of deny-by-default filters (see enosys.py).
"""

from __future__ import annotations

import _json
import errno
import os

from berth.errors import InvalidArgument
from berth.runtime.seccomp import cache
from berth.runtime.seccomp import libseccomp as scmp
from berth.runtime.seccomp.load import flag_bits

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: this module is on the container-start path
if TYPE_CHECKING:
    from typing import Any

_FORMAT = 1  # bump when the BPF berth produces for the same input changes


def compile_bpf(oci_seccomp: dict[str, Any], *, cache_dir: str | None = None) -> bytes:
    """OCI `linux.seccomp` -> raw BPF (struct sock_filter array), ready for `load_bpf`.

    Cached in memory and on disk (`cache_dir`, else $BERTH_SECCOMP_CACHE, else /var/cache/berth/seccomp;
    "" for no disk cache) under the sha256 of the canonical JSON of the object plus what else shapes
    the output (libseccomp's version, the native architecture, berth's format).
    """
    _validate(oci_seccomp)
    ident = {"format": _FORMAT, "libseccomp": scmp.version(), "native": scmp.lib().seccomp_arch_native(),
             "seccomp": oci_seccomp}
    key = cache.sha256(_canonical(ident).encode()).hexdigest()
    where = cache.directory(cache_dir)
    bpf = cache.get(key, where)
    if bpf is None:
        bpf = _compile(oci_seccomp)
        cache.put(key, bpf, where)
    return bpf


def _no_default(o: object) -> object:
    raise InvalidArgument(f"seccomp: {type(o).__name__} is not a JSON value")


# json.dumps(sort_keys=True, separators=(",", ":")) without importing json (which pulls in re and enum):
# the same C encoder the stdlib uses.
_encoder = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ":", ",", True, False, True)


def _canonical(obj: object) -> str:
    return "".join(_encoder(obj, 0))


def _validate(oci: dict[str, Any]) -> None:
    if not oci.get("defaultAction"):
        raise InvalidArgument("seccomp: defaultAction is required")
    flag_bits(oci.get("flags") or ())
    _action(oci["defaultAction"], oci.get("defaultErrnoRet"))
    for call in oci.get("syscalls") or []:
        _action(call.get("action", ""), call.get("errnoRet"))
        if not call.get("names"):
            raise InvalidArgument("seccomp: a syscall rule has no names")
        for arg in call.get("args") or []:
            _condition(arg)


def _action(name: str, errno_ret: int | None) -> int:
    ret = errno.EPERM if errno_ret is None else errno_ret
    if not isinstance(ret, int) or not 0 <= ret <= 0xFFFF:
        raise InvalidArgument(f"seccomp: invalid errnoRet {errno_ret!r}")
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return scmp.SCMP_ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return scmp.SCMP_ACT_KILL_PROCESS
    if name == "SCMP_ACT_ERRNO":
        return scmp.SCMP_ACT_ERRNO | ret
    if name == "SCMP_ACT_TRACE":
        return scmp.SCMP_ACT_TRACE | ret
    if name == "SCMP_ACT_TRAP":
        return scmp.SCMP_ACT_TRAP
    if name == "SCMP_ACT_LOG":
        return scmp.SCMP_ACT_LOG
    if name == "SCMP_ACT_ALLOW":
        return scmp.SCMP_ACT_ALLOW
    if name == "SCMP_ACT_NOTIFY":
        raise InvalidArgument("seccomp: SCMP_ACT_NOTIFY is not supported by berth")
    raise InvalidArgument(f"string {name} is not a valid action for seccomp")


def _condition(arg: dict[str, Any]) -> scmp.ArgCmp:
    op = scmp.SCMP_CMP.get(arg.get("op", ""))
    if op is None:
        raise InvalidArgument(f"string {arg.get('op')} is not a valid operator for seccomp")
    index, value, two = arg.get("index"), arg.get("value", 0), arg.get("valueTwo", 0)
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise InvalidArgument(f"seccomp: invalid argument index {index!r}")
    for v in (value, two):
        if not isinstance(v, int) or not 0 <= v < 1 << 64:
            raise InvalidArgument(f"seccomp: invalid argument value {v!r}")
    return scmp.ArgCmp(index, op, value, two)


def _compile(oci: dict[str, Any]) -> bytes:
    lib = scmp.lib()
    default = _action(oci["defaultAction"], oci.get("defaultErrnoRet"))
    calls = oci.get("syscalls") or []
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgument("error creating filter: seccomp_init failed")
    try:
        tokens = [lib.seccomp_arch_native()]
        for arch in oci.get("architectures") or []:
            token = scmp.arch_token(arch)
            if not token:
                raise InvalidArgument(f"error validating Seccomp architecture: {arch} is not supported "
                                      f"by libseccomp {scmp.version()}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno.EEXIST:
                scmp.check(rc, "error adding architecture to seccomp filter")
            if token not in tokens:
                tokens.append(token)
        scmp.check(lib.seccomp_attr_set(ctx, scmp.SCMP_FLTATR_CTL_NNP, 0), "seccomp: no_new_privs attribute")
        if sum(len(c["names"]) for c in calls) > 32:
            lib.seccomp_attr_set(ctx, scmp.SCMP_FLTATR_CTL_OPTIMIZE, 2)  # older libseccomp: not fatal
        for call in calls:
            _add_rules(lib, ctx, call, default)
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    if _wants_enosys_stub(oci):
        from berth.runtime.seccomp import enosys  # only when compiling, not on a cache hit

        program = enosys.stub(_largest_syscalls(lib, tokens, calls)) + program
    return program


def _add_rules(lib: Any, ctx: int, call: dict[str, Any], default: int) -> None:
    action = _action(call["action"], call.get("errnoRet"))
    if action == default:
        return
    conds = [_condition(a) for a in call.get("args") or []]
    indexes = [c.arg for c in conds]
    # libseccomp ANDs a rule's conditions but cannot compare one argument twice: then OR them, as runc does.
    groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
    for name in call["names"]:
        nr = scmp.syscall_number(name)
        if nr == scmp.NR_SCMP_ERROR:
            continue
        for group in groups:
            arr = (scmp.ArgCmp * len(group))(*group) if group else None
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), arr)
            scmp.check(rc, f"error adding seccomp filter rule for syscall {name}")


def _export(lib: Any, ctx: int) -> bytes:
    fd = os.memfd_create("berth-seccomp-bpf", os.MFD_CLOEXEC)
    try:
        scmp.check(lib.seccomp_export_bpf(ctx, fd), "error exporting seccomp filter")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _wants_enosys_stub(oci: dict[str, Any]) -> bool:
    """runc: only for filters that deny by default, and not when the default already is ENOSYS."""
    if oci.get("defaultErrnoRet") == errno.ENOSYS:
        return False
    return oci["defaultAction"] not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def _largest_syscalls(lib: Any, tokens: list[int], calls: list[dict[str, Any]]) -> dict[int, int]:
    names = {n for c in calls for n in c["names"]}
    return {t: max((lib.seccomp_syscall_resolve_name_arch(t, n.encode()) for n in names), default=0)
            for t in tokens}

