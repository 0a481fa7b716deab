"""The container's first process: runs in the child right after clone(2), in the new namespaces.

It never returns: it either execve()s the user's program or reports an error to the parent over
the sync socket and exits. Steps follow runc's standard init (notes/runtime.md §1.2): wait for
the parent (uid maps, cgroup, rlimits), mounts and pivot_root, hostname, sysctls, console,
executable lookup (so a missing binary fails `create`, as in runc), "ready", block on the exec
fifo until `start`, then drop to the user, apply capabilities, no_new_privs and seccomp, execve.
"""

from __future__ import annotations

import _socket
import os
import stat

from berth import fastjson

# Everything the init uses must be imported before clone(2): after pivot_root the host's Python
# files are out of reach, so a lazy import in the child fails. Modules needed only sometimes (the
# console, hooks, seccomp) are imported by the parent through preload().
from berth.runtime import caps as capmod
from berth.runtime.linux import rootfs as rfs
from berth.runtime.linux import syscalls as sc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from typing import Any, NoReturn

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class InitError(Exception):
    pass


class InitContext:
    """Everything the child needs, prepared by the parent before clone (the child is its copy)."""

    def __init__(self, config: dict[str, Any], rootfs: str, sync: _socket.socket, *, fifo_fd: int = -1,
                 console: _socket.socket | None = None, no_pivot: bool = False, userns: bool = False,
                 join_fds: list[tuple[int, int]] | None = None, preserve_fds: int = 0, exec_mode: bool = False,
                 container_id: str = "", bundle: str = "", stdio: tuple[int, int, int] | None = None) -> None:
        self.config = config
        self.rootfs = rootfs
        self.sync = sync
        self.fifo_fd = fifo_fd            # O_PATH fd of exec.fifo (create only)
        self.console = console            # receives the pty master
        self.no_pivot = no_pivot
        self.userns = userns
        self.join_fds = join_fds          # (fd, nstype) to setns into after "go"; fd -1: unshare
        self.preserve_fds = preserve_fds
        self.exec_mode = exec_mode        # an `exec` into a running container: no rootfs work
        self.container_id = container_id
        self.bundle = bundle
        self.seccomp_bpf: bytes | None = None  # compiled by the parent (cached there), loaded here
        self.load_seccomp: Any = None     # berth.runtime.seccomp.load_bpf, imported by the parent
        self.ready_sent = False
        self.cgroups_ready = False  # the parent said the cgroup directories exist
        self.stdio = stdio                # fds to become the process's 0, 1, 2 (default: inherit ours)
        self.cgroup_plan: list[tuple[str, str]] | None = None  # cgroup dirs to bind at /sys/fs/cgroup


_console_mods: dict[str, Any] = {}


def preload_console() -> None:
    """Import what _setup_console needs; the parent calls it before clone when a tty is asked for."""
    import fcntl
    import socket
    import struct
    import termios

    _console_mods.update(fcntl=fcntl, socket=socket, struct=struct, termios=termios)


def send(sock: _socket.socket, msg: dict[str, Any]) -> None:
    sock.send(fastjson.dumps(msg).encode())


def recv(sock: _socket.socket) -> dict[str, Any]:
    data = sock.recv(65536)
    if not data:
        raise EOFError("parent went away")
    return fastjson.loads(data)  # type: ignore[return-value]


def child_main(ctx: InitContext) -> NoReturn:
    """Entry point in the child. Never returns."""
    code = 1
    try:
        _run(ctx)
    except BaseException as e:  # report everything: the parent turns it into runc's message
        msg = str(e) if isinstance(e, InitError) else _describe(e)
        try:
            if ctx.ready_sent:
                raise OSError("parent no longer listens")
            send(ctx.sync, {"type": "error", "message": msg})
        except OSError:
            # after "ready" the parent no longer listens: stderr is all we have, as for runc's init
            try:
                os.write(2, f"berth-runtime init: {msg}\n".encode())
            except OSError:
                pass
        if isinstance(e, SystemExit) and isinstance(e.code, int):
            code = e.code
    os._exit(code)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}".strip()
    return f"{type(e).__name__}: {e}"


def _run(ctx: InitContext) -> None:
    if ctx.stdio is not None:
        for target, fd in enumerate(ctx.stdio):
            os.dup2(fd, target)
    sc.prctl(sc.PR_SET_PDEATHSIG, 9)
    # Hide this (host) interpreter from the container until execve: CVE-2016-9962 / CVE-2019-5736.
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    os.setsid()
    config = ctx.config
    process = config.get("process") or {}
    # The parent joins us to the cgroup meanwhile: a cgroup v1 migration can wait a whole RCU grace
    # period (~10 ms), so we build the root filesystem in parallel and wait for "go" only before what
    # needs it. A user namespace needs its maps first; hooks and exec keep the simple order.
    early = ctx.userns or ctx.exec_mode or bool(config.get("hooks"))
    if early:
        _wait_go(ctx)
    for fd, nstype in ctx.join_fds or []:
        if fd >= 0:
            sc.setns(fd, nstype)
            os.close(fd)
    if ctx.userns:
        sc.setresgid(0)
        sc.setresuid(0)
    if ctx.exec_mode:
        os.chdir("/")
    else:
        _setup_container(ctx, config, early)
    for fd, nstype in ctx.join_fds or []:
        if fd < 0:
            sc.unshare(nstype)  # a new cgroup ns, rooted at the cgroup the parent put us in
    if process.get("terminal"):
        _setup_console(ctx, process)
    os.umask(int((process.get("user") or {}).get("umask", 0o022)))
    env = _env(process)
    cwd = process.get("cwd") or "/"
    _chdir(cwd, create=not ctx.exec_mode)
    argv = process.get("args") or []
    if not argv:
        raise InitError("args must not be empty")
    exe = lookpath(argv[0], env.get("PATH"))
    # From here the parent may exit (create, exec -d): we must outlive it.
    sc.prctl(sc.PR_SET_PDEATHSIG, 0)
    send(ctx.sync, {"type": "ready"})
    ctx.ready_sent = True
    if not ctx.exec_mode:
        _wait_start(ctx.fifo_fd)
        _hooks(ctx, "startContainer")
    _finalize(ctx, process)
    _reset_signals()
    os.execve(exe, argv, env)


def _wait_go(ctx: InitContext) -> None:
    msg = recv(ctx.sync)
    if msg.get("type") == "cgroups" and not ctx.cgroups_ready:
        msg = recv(ctx.sync)
    if msg.get("type") != "go":
        raise InitError("unexpected message from parent")
    if msg.get("seccomp"):
        ctx.seccomp_bpf = ctx.sync.recv(int(msg["seccomp"]))


def _setup_container(ctx: InitContext, config: dict[str, Any], early: bool) -> None:
    linux = config.get("linux") or {}
    # Without "go" yet, the cgroup directories may not exist: their bind mounts wait for the
    # parent's "cgroups", the rest of the root filesystem does not. The cgroup join can take an RCU
    # grace period: we wait for it ("go") only once the whole filesystem is done.
    deferred = rfs.prepare(config, ctx.rootfs, userns=ctx.userns, cgroup_plan=ctx.cgroup_plan,
                           defer_cgroups=not early)
    if not early:
        if recv(ctx.sync).get("type") != "cgroups":
            raise InitError("unexpected message from parent")
        ctx.cgroups_ready = True
        rfs.mount_deferred(ctx.rootfs, deferred, ctx.cgroup_plan or [], ctx.userns)
    hooks = config.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime"):
        send(ctx.sync, {"type": "hooks"})
        if recv(ctx.sync).get("type") != "hooks-done":
            raise InitError("hooks failed")
    _hooks(ctx, "createContainer")
    rfs.pivot(ctx.rootfs, ctx.no_pivot)
    if config.get("hostname"):
        _socket.sethostname(config["hostname"])
    if config.get("domainname"):
        sc.setdomainname(config["domainname"])
    for key, value in (linux.get("sysctl") or {}).items():
        _write_sysctl(key, value)
    rfs.mask_paths(linux.get("maskedPaths") or [])
    rfs.readonly_paths(linux.get("readonlyPaths") or [])
    if (config.get("root") or {}).get("readonly"):
        rfs.readonly_root()
    if not early:
        _wait_go(ctx)


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    if ".." in key.split("."):
        raise InitError(f"sysctl {key!r} is not valid")
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        raise InitError(f"write sysctl key {key}: {e.strerror}") from None


def _setup_console(ctx: InitContext, process: dict[str, Any]) -> None:
    """A pty from the container's own devpts; the master goes to the caller over the console socket."""
    fcntl, socket, struct, termios = (_console_mods[k] for k in ("fcntl", "socket", "struct", "termios"))
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    size = process.get("consoleSize") or {}
    if size.get("height") or size.get("width"):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    if not ctx.exec_mode and (os.path.exists("/dev/console") or _make_console()):
        sc.mount(slave_path, "/dev/console", None, sc.MS_BIND, None)
    if ctx.console is None:
        raise InitError("terminal requested but no console socket")
    socket.send_fds(ctx.console, [b"/dev/ptmx"], [master])
    os.close(master)
    ctx.console.close()
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _make_console() -> bool:
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        return True
    except OSError:
        return False


def _env(process: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    if not env.get("HOME"):
        # as runc: the user's home from the container's /etc/passwd, "/" without an entry
        env["HOME"] = _home_of(int((process.get("user") or {}).get("uid", 0)))
    return env


def _home_of(uid: int) -> str:
    """Read here, after pivot_root, so the path cannot leave the container. Only a regular file is
    read (a fifo or device there must not hang or flood us); anything odd means "/" as for runc."""
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        text = os.read(fd, 16 << 20).decode("utf-8", errors="surrogateescape")
    except OSError:
        return "/"
    finally:
        os.close(fd)
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) >= 6 and parts[2].strip().isdigit() and int(parts[2]) == uid:
            return parts[5] or "/"
    return "/"


def _chdir(cwd: str, create: bool) -> None:
    if not cwd.startswith("/"):
        raise InitError(f"cwd {cwd!r} must be an absolute path")
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        if not create:
            raise InitError(f"chdir to cwd ({cwd!r}) set in config.json failed: no such file or directory") from None
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    # CVE-2024-21626: a cwd reached through a leaked fd is outside our root.
    try:
        here = os.getcwd()
    except OSError:
        raise InitError("current working directory is outside of container mount namespace root -- "
                        "possible container breakout detected") from None
    if not here.startswith("/"):
        raise InitError("current working directory is outside of container mount namespace root -- "
                        "possible container breakout detected")


def lookpath(name: str, path: str | None) -> str:
    """Go's exec.LookPath, with runc's wording in the errors."""
    if "/" in name:
        err = _check_exec(name)
        if err:
            raise InitError(f'exec: "{name}": {err}')
        return name
    for d in (path if path is not None else "").split(":"):
        cand = os.path.join(d or ".", name)
        if _check_exec(cand) is None:
            return cand
    raise InitError(f'exec: "{name}": executable file not found in $PATH')


def _check_exec(path: str) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"stat {path}: no such file or directory"
    except NotADirectoryError:
        return f"stat {path}: not a directory"
    except PermissionError:
        return "permission denied"
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


def _wait_start(fifo_fd: int) -> None:
    """Block until `start` opens the fifo for reading; then tell it we are going."""
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _hooks(ctx: InitContext, name: str) -> None:
    hooks = (ctx.config.get("hooks") or {}).get(name) or []
    if not hooks:
        return
    from berth.runtime.hooks import run_hooks  # imported by the parent when the config has hooks

    state = {"ociVersion": ctx.config.get("ociVersion", ""), "id": ctx.container_id, "status": "created",
             "pid": os.getpid(), "bundle": ctx.bundle,
             "annotations": ctx.config.get("annotations") or {}}
    run_hooks(hooks, state, name)


def _finalize(ctx: InitContext, process: dict[str, Any]) -> None:
    """Close stray fds, switch user, capabilities, no_new_privs, seccomp: the last steps before execve."""
    # Mark everything above stdio (+ preserved fds) close-on-exec: no host fd reaches the program.
    sc.close_range(3 + ctx.preserve_fds, 0xFFFFFFFF, 4)  # CLOSE_RANGE_CLOEXEC
    caps_cfg = process.get("capabilities")
    nnp = bool(process.get("noNewPrivileges"))
    sec_flags = ((ctx.config.get("linux") or {}).get("seccomp") or {}).get("flags")
    if ctx.seccomp_bpf is not None and not nnp:
        ctx.load_seccomp(ctx.seccomp_bpf, sec_flags)
    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    if not ctx.userns or _setgroups_allowed():
        sc.setgroups([int(g) for g in user.get("additionalGids") or []])
    sc.setresgid(gid)
    sc.setresuid(uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    capmod.apply(caps_cfg)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if ctx.seccomp_bpf is not None:
            ctx.load_seccomp(ctx.seccomp_bpf, sec_flags)


def _reset_signals() -> None:
    """Default dispositions and an empty mask for the program: ignored signals survive execve, and
    Python ignores SIGPIPE (and a monitor ignores SIGTERM): a shell as pid 1 could then never trap
    TERM, and `yes | head` would never end."""
    import _signal

    for sig in range(1, _signal.NSIG):
        if sig in (_signal.SIGKILL, _signal.SIGSTOP):
            continue
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True
