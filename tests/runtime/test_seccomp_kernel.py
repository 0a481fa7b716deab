"""Real-kernel proof: load compiled filters in forked children and watch what the kernel answers.

Every probe is run twice where it matters, with and without the filter, so an errno that the
filter did not cause (EPERM from something else, ENOSYS from a missing kernel feature) cannot make
a test pass. Children report over a pipe; the test process itself never loads a filter.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import pickle
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from berth.errors import InvalidArgument
from berth.runtime import caps
from berth.runtime.seccomp import compile_bpf, default_oci, default_profile, load_bpf, to_oci

pytestmark = pytest.mark.root

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 numbers
NR = {"getppid": 110, "unshare": 272, "mount": 165, "keyctl": 250, "add_key": 248, "io_uring_setup": 425,
      "bpf": 321, "clone3": 435, "clone": 56, "personality": 135, "swapoff": 168, "mseal": 462, "getpid": 39}
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000
AF_ALG, AF_VSOCK = 38, 40


def syscall(nr: int, *args: int | bytes | None) -> int:
    """Raw syscall; returns the result, or -errno."""
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *conv)
    return -ctypes.get_errno() if r == -1 else int(r)


def in_child(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run `fn` in a forked child: (its result or exception, its wait status). None if it died first."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                data = pickle.dumps((True, fn()))
            except BaseException as e:
                data = pickle.dumps((False, e))
            os.write(w, data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return None, status
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value, status


def status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(name + ":"))


def _sock(family: int, kind: int) -> int:
    try:
        socket.socket(family, kind).close()
        return 0
    except OSError as e:
        return -(e.errno or 0)


def _clone_flags(flags: int) -> int:
    """clone(2) with `flags`; a child that got created exits at once and is reaped."""
    pid = syscall(NR["clone"], flags | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        return 0
    return pid


def _thread_runs() -> bool:
    box: list[int] = []
    t = threading.Thread(target=lambda: box.append(os.getpid()))
    t.start()
    t.join(5)
    return box == [os.getpid()]


def probe(tmp: str) -> dict[str, Any]:
    """What this process may do. Only calls whose answer without a filter is not EPERM/ENOSYS."""
    path = os.path.join(tmp, f"probe-{os.getpid()}")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    wrote = os.write(fd, b"hello")
    os.close(fd)
    with open(path, "rb") as f:
        content = f.read()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return {
        "unshare": syscall(NR["unshare"], CLONE_NEWUTS),
        "mount": syscall(NR["mount"], b"none", b"/nonexistent-berth-probe", b"tmpfs", 0, None),
        "keyctl": syscall(NR["keyctl"], 0, -2, 0),  # KEYCTL_GET_KEYRING_ID, process keyring, don't create
        "add_key": syscall(NR["add_key"], None, None, None, 0, 0),
        "io_uring_setup": syscall(NR["io_uring_setup"], 1, None),
        "bpf": syscall(NR["bpf"], 5, None, 0),  # BPF_PROG_LOAD with no attributes
        "clone3": syscall(NR["clone3"], None, 0),
        "swapoff": syscall(NR["swapoff"], None),
        "mseal": syscall(NR["mseal"], 0, 0, 0),
        "vsock": _sock(AF_VSOCK, socket.SOCK_STREAM),
        "alg": _sock(AF_ALG, socket.SOCK_SEQPACKET),
        "inet": _sock(socket.AF_INET, socket.SOCK_STREAM),
        "personality_query": syscall(NR["personality"], 0xFFFFFFFF),
        "personality_norandom": syscall(NR["personality"], 0x0040000),
        "clone_newuser": _clone_flags(CLONE_NEWUSER),
        "clone_plain": _clone_flags(0),
        "getpid": int(syscall(NR["getpid"]) == os.getpid()),
        "io": int(wrote == 5 and content == b"hello"),
        "fork": forked,
        "thread": int(_thread_runs()),
        "seccomp": status_field("Seccomp"),
    }


@pytest.fixture(scope="module")
def default_bpf() -> bytes:
    return compile_bpf(default_oci(caps.DOCKER_DEFAULT), cache_dir="")


def test_control_without_filter(tmp_path: Any) -> None:
    """Without a filter none of these calls is refused with EPERM or ENOSYS (so the next test means something)."""
    got, _ = in_child(lambda: probe(str(tmp_path)))
    assert got["seccomp"] == "0"
    assert got["unshare"] == 0
    assert got["clone_newuser"] == 0
    assert got["personality_norandom"] >= 0
    for name in ("mount", "keyctl", "add_key", "io_uring_setup", "bpf", "clone3", "swapoff", "vsock", "alg"):
        assert got[name] not in (-errno.EPERM, -errno.ENOSYS), (name, got[name])
    assert got["mseal"] != -errno.ENOSYS  # this kernel has mseal (6.10+)


def test_docker_default_filter(tmp_path: Any, default_bpf: bytes) -> None:
    def child() -> dict[str, Any]:
        load_bpf(default_bpf)
        return probe(str(tmp_path))

    got, status = in_child(child)
    assert os.waitstatus_to_exitcode(status) == 0
    assert got["seccomp"] == "2"
    for name in ("unshare", "mount", "keyctl", "add_key", "io_uring_setup", "bpf", "swapoff",
                 "vsock", "alg", "personality_norandom", "clone_newuser"):
        assert got[name] == -errno.EPERM, name
    assert got["clone3"] == -errno.ENOSYS  # the profile's own rule, so glibc falls back to clone
    assert got["mseal"] == -errno.ENOSYS  # newer than libseccomp 2.5.4 knows: runc's -ENOSYS stub
    assert got["inet"] == 0
    assert got["personality_query"] >= 0
    assert got["clone_plain"] == 0
    assert got["getpid"] == got["io"] == got["thread"] == 1  # threads: clone3 ENOSYS -> clone fallback
    assert got["fork"] == 7


def test_sys_admin_opens_unshare_and_clone(tmp_path: Any) -> None:
    bpf = compile_bpf(default_oci([*caps.DOCKER_DEFAULT, "CAP_SYS_ADMIN"]), cache_dir="")

    def child() -> dict[str, Any]:
        load_bpf(bpf)
        return probe(str(tmp_path))

    got, _ = in_child(child)
    assert got["seccomp"] == "2"
    assert got["unshare"] == 0
    assert got["clone_newuser"] == 0
    assert got["mount"] == -errno.ENOENT  # past the filter; the kernel answers
    assert got["clone3"] not in (-errno.ENOSYS, -errno.EPERM)
    assert got["keyctl"] == -errno.EPERM  # still not in the profile for any capability


def test_filter_survives_execve(default_bpf: bytes) -> None:
    """What matters for a container: the filter stays on across execve, into the user's program."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            os.dup2(w, 2)
            load_bpf(default_bpf)
            os.execv("/bin/busybox", ["busybox", "sh", "-c",
                                      "grep Seccomp: /proc/self/status; busybox unshare -u true; echo rc=$?"])
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    assert "Seccomp:\t2" in out
    assert "Operation not permitted" in out and "rc=1" in out


# --- 32-bit (int 0x80) and x32 system calls go through the same filter -------------------------

def _int80(nr: int, ebx: int = 0) -> int:
    """Make an i386 system call from this 64-bit process: push rbx; mov ebx,imm; mov eax,imm; int 0x80; pop rbx; ret."""
    code = b"\x53\xbb" + ebx.to_bytes(4, "little") + b"\xb8" + nr.to_bytes(4, "little") + b"\xcd\x80\x5b\xc3"
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    fn = ctypes.CFUNCTYPE(ctypes.c_int)(addr)
    return int(fn())


I386 = {"getpid": 20, "unshare": 310, "clone3": 435}


def test_i386_calls_are_filtered(default_bpf: bytes) -> None:
    def child() -> dict[str, int]:
        before = _int80(I386["unshare"], CLONE_NEWUTS)
        load_bpf(default_bpf)
        return {"before": before, "pid": os.getpid(), "getpid": _int80(I386["getpid"]),
                "unshare": _int80(I386["unshare"], CLONE_NEWUTS), "clone3": _int80(I386["clone3"])}

    got, _ = in_child(child)
    assert got["before"] == 0
    assert got["getpid"] == got["pid"]
    assert got["unshare"] == -errno.EPERM
    assert got["clone3"] == -errno.ENOSYS


def test_arch_not_listed_is_killed() -> None:
    """A filter for x86_64 alone treats an i386 call as a foreign architecture and kills the caller."""
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}
    bpf = compile_bpf(oci, cache_dir="")

    def child() -> int:
        load_bpf(bpf)
        return _int80(I386["getpid"])

    got, status = in_child(child)
    assert got is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_x32_calls_are_filtered(default_bpf: bytes) -> None:
    """This kernel has no x32 ABI, but the filter still sees x32 numbers first (and refuses unshare)."""
    def child() -> dict[str, int]:
        load_bpf(default_bpf)
        return {"getpid": syscall(X32_BIT | NR["getpid"]), "unshare": syscall(X32_BIT | NR["unshare"], CLONE_NEWUTS)}

    got, _ = in_child(child)
    assert got["getpid"] == -errno.ENOSYS  # allowed by the filter, then the kernel has no x32
    assert got["unshare"] == -errno.EPERM  # refused by the filter before that


# --- actions, errnoRet, args, flags, names ----------------------------------------------------

def _one_rule(action: str, errno_ret: int | None = None, args: list[dict[str, Any]] | None = None,
              names: tuple[str, ...] = ("getppid",), default: str = "SCMP_ACT_ALLOW") -> bytes:
    rule: dict[str, Any] = {"names": list(names), "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    if args:
        rule["args"] = args
    return compile_bpf({"defaultAction": default, "syscalls": [rule]}, cache_dir="")


@pytest.mark.parametrize(("action", "errno_ret", "want"), [
    ("SCMP_ACT_ERRNO", None, -errno.EPERM),
    ("SCMP_ACT_ERRNO", 77, -77),
    ("SCMP_ACT_TRACE", None, -errno.ENOSYS),  # no tracer attached: the kernel answers ENOSYS
    ("SCMP_ACT_LOG", None, "ppid"),
])
def test_returning_actions(action: str, errno_ret: int | None, want: int | str) -> None:
    bpf = _one_rule(action, errno_ret)

    def child() -> tuple[int, int]:
        load_bpf(bpf)
        return syscall(NR["getppid"]), syscall(NR["getpid"])

    (ppid, pid), _ = in_child(child)
    assert ppid == (os.getpid() if want == "ppid" else want)
    assert pid > 0


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"])
def test_kill_actions_single_thread(action: str) -> None:
    bpf = _one_rule(action)

    def child() -> int:
        load_bpf(bpf)
        return syscall(NR["getppid"])

    got, status = in_child(child)
    assert got is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def _kill_from_thread(bpf: bytes) -> str:
    load_bpf(bpf)  # TSYNC is not needed: the thread is created after the filter, and inherits it
    t = threading.Thread(target=lambda: syscall(NR["getppid"]), daemon=True)  # ctypes drops the GIL
    t.start()
    deadline = time.monotonic() + 5
    while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    return f"main thread alive, tasks={len(os.listdir('/proc/self/task'))}"


def test_kill_thread_kills_only_the_thread() -> None:
    got, status = in_child(lambda: _kill_from_thread(_one_rule("SCMP_ACT_KILL_THREAD")))
    assert got == "main thread alive, tasks=1"
    assert os.waitstatus_to_exitcode(status) == 0


def test_kill_process_kills_every_thread() -> None:
    got, status = in_child(lambda: _kill_from_thread(_one_rule("SCMP_ACT_KILL_PROCESS")))
    assert got is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_trap_sends_sigsys_to_a_handler() -> None:
    bpf = _one_rule("SCMP_ACT_TRAP")

    def child() -> list[int]:
        seen: list[int] = []
        signal.signal(signal.SIGSYS, lambda signum, frame: seen.append(signum))
        load_bpf(bpf)
        syscall(NR["getppid"])
        return seen

    got, status = in_child(child)
    assert got == [signal.SIGSYS] and os.waitstatus_to_exitcode(status) == 0


def test_allow_rules_under_a_deny_default() -> None:
    """defaultAction ERRNO with defaultErrnoRet, and ALLOW rules for what the child still needs."""
    needed = ["write", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "madvise", "futex",
              "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "getppid", "close", "fstat", "newfstatat"]
    bpf = compile_bpf({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95,
                       "syscalls": [{"names": needed, "action": "SCMP_ACT_ALLOW"}]}, cache_dir="")

    def child() -> tuple[int, int, int]:
        load_bpf(bpf)
        return syscall(NR["getppid"]), syscall(NR["getpid"]), syscall(NR["mseal"], 0, 0, 0)

    (ppid, pid, mseal), _ = in_child(child)
    assert ppid == os.getpid()
    assert pid == -95
    assert mseal == -errno.ENOSYS  # above every number the profile names: the stub


def test_default_errno_ret_on_the_docker_profile() -> None:
    oci = default_oci(caps.DOCKER_DEFAULT)
    oci["defaultErrnoRet"] = 95
    bpf = compile_bpf(oci, cache_dir="")

    def child() -> int:
        load_bpf(bpf)
        return syscall(NR["unshare"], CLONE_NEWUTS)

    assert in_child(child)[0] == -95


U64 = 1 << 64


@pytest.mark.parametrize(("op", "value", "value_two", "matches", "misses"), [
    ("SCMP_CMP_EQ", 5, 0, [5], [4, 6, 5 | 1 << 32]),
    ("SCMP_CMP_NE", 5, 0, [4, 6, 1 << 40], [5]),
    ("SCMP_CMP_LT", 5, 0, [0, 4], [5, 6, 1 << 33]),
    ("SCMP_CMP_LE", 5, 0, [0, 5], [6, 1 << 33]),
    ("SCMP_CMP_GT", 5, 0, [6, 1 << 33], [0, 5]),
    ("SCMP_CMP_GE", 5, 0, [5, 1 << 33], [0, 4]),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, [0x30, 0x3F, 0x1234_0035], [0x40, 0x00, 0x20]),
    ("SCMP_CMP_EQ", 1 << 40 | 7, 0, [1 << 40 | 7], [7, 1 << 40]),  # both 32-bit halves compared
])
def test_arg_operators(op: str, value: int, value_two: int, matches: list[int], misses: list[int]) -> None:
    """getppid ignores its arguments, but the filter sees the registers: a clean probe for each operator."""
    bpf = _one_rule("SCMP_ACT_ERRNO", 77, [{"index": 0, "value": value, "valueTwo": value_two, "op": op}])

    def child() -> dict[int, int]:
        load_bpf(bpf)
        return {v: syscall(NR["getppid"], v) for v in [*matches, *misses]}

    got, _ = in_child(child)
    assert {v for v, r in got.items() if r == -77} == set(matches)
    assert all(got[v] == os.getpid() for v in misses)


def test_conditions_on_two_args_are_anded_and_on_one_arg_ored() -> None:
    both = _one_rule("SCMP_ACT_ERRNO", 77, [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                            {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}])
    either = _one_rule("SCMP_ACT_ERRNO", 77, [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                              {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}])

    def run(bpf: bytes) -> dict[tuple[int, int], bool]:
        def child() -> dict[tuple[int, int], bool]:
            load_bpf(bpf)
            return {(a, b): syscall(NR["getppid"], a, b) == -77 for a, b in [(1, 2), (1, 0), (0, 2), (2, 0)]}
        return in_child(child)[0]

    assert run(both) == {(1, 2): True, (1, 0): False, (0, 2): False, (2, 0): False}
    assert run(either) == {(1, 2): True, (1, 0): True, (0, 2): False, (2, 0): True}


def test_unknown_syscall_names_are_skipped() -> None:
    bpf = _one_rule("SCMP_ACT_ERRNO", 77, names=("berth_no_such_syscall", "getppid"))

    def child() -> int:
        load_bpf(bpf)
        return syscall(NR["getppid"])

    assert in_child(child)[0] == -77


@pytest.mark.parametrize("flags", [None, [], ["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]])
def test_flags_load(flags: list[str] | None) -> None:
    bpf = _one_rule("SCMP_ACT_ERRNO", 77)

    def child() -> tuple[int, str]:
        load_bpf(bpf, flags)
        return syscall(NR["getppid"]), status_field("Seccomp_filters")

    assert in_child(child)[0] == (-77, "1")


def test_unknown_flag_fails_before_loading() -> None:
    bpf = _one_rule("SCMP_ACT_ERRNO", 77)

    def child() -> tuple[str, str]:
        try:
            load_bpf(bpf, ["SECCOMP_FILTER_FLAG_BOGUS"])
        except InvalidArgument as e:
            return str(e), status_field("Seccomp")
        return "loaded", status_field("Seccomp")

    assert in_child(child)[0] == ("seccomp flag SECCOMP_FILTER_FLAG_BOGUS is not known to berth", "0")
    with pytest.raises(InvalidArgument, match="not known"):
        compile_bpf({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, cache_dir="")


def test_filter_needs_privilege_or_no_new_privs() -> None:
    """Without CAP_SYS_ADMIN the kernel refuses a filter unless no_new_privs is set (as in the init)."""
    bpf = _one_rule("SCMP_ACT_ERRNO", 77)

    def child() -> tuple[int | None, int]:
        caps.apply({})  # no capabilities at all
        try:
            load_bpf(bpf)
            refused = None
        except OSError as e:
            refused = e.errno
        _libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        load_bpf(bpf)
        return refused, syscall(NR["getppid"])

    assert in_child(child)[0] == (errno.EACCES, -77)


def test_profile_edits_take_effect() -> None:
    """A profile that allows personality(ADDR_NO_RANDOMIZE) (as `setarch -R` needs) really allows it."""
    prof = default_profile()
    prof["syscalls"].append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"}]})
    bpf = compile_bpf(to_oci(prof, caps.DOCKER_DEFAULT, arch="x86_64"), cache_dir="")

    def child() -> int:
        load_bpf(bpf)
        return syscall(NR["personality"], 0x0040000)

    assert in_child(child)[0] >= 0
