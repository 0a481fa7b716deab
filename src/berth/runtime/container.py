"""The OCI runtime as a library: create, start, state, kill, delete, pause, resume, exec.

`berth-runtime` (runc's command line) and berthd's per-container monitor both call this. The
caller's process becomes the parent of the container's init (one clone(2) with every new
namespace), so a long-lived caller such as the monitor can wait for it directly.
"""

from __future__ import annotations

import _socket
import errno
import os
import select
import time

from berth.runtime import bgthread, cgroups
from berth.runtime import config as cfgmod
from berth.runtime.errors import ConfigError, ContainerExists, ContainerNotFound, StartError, StateError
from berth.runtime.linux import syscalls as sc
from berth.runtime.linux.init import InitContext, child_main, preload_console, recv, send
from berth.runtime.state import OCI_VERSION, State, StateDir, alive, list_ids, proc_start_time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SIGKILL = 9  # numbers rather than `import signal`, which costs milliseconds on the start path

DEFAULT_ROOT = "/run/berth-runtime"

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def _rmtree(path: str) -> None:
    """Remove a state directory (flat: state.json, exec.fifo). Not shutil: it costs ~25 ms to import."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except IsADirectoryError:
            _rmtree(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _unix_socket() -> _socket.socket:
    return _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)



def _prepare_child_imports(config: dict[str, Any], ctx: InitContext) -> None:
    """Import what the child will need after pivot_root (the seccomp filter itself is compiled by the
    parent while the child sets up, and sent with "go")."""
    seccomp = (config.get("linux") or {}).get("seccomp")
    if seccomp:
        from berth.runtime import seccomp as sec

        ctx.load_seccomp = sec.load_bpf
    if config.get("hooks"):
        import berth.runtime.hooks  # noqa: F401
    if (config.get("process") or {}).get("terminal"):
        preload_console()


def _compile_seccomp(config: dict[str, Any]) -> bytes | None:
    seccomp = (config.get("linux") or {}).get("seccomp")
    if not seccomp:
        return None
    from berth.runtime import seccomp as sec

    return sec.compile_bpf(seccomp)


def _write_file_atomic(path: str, data: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


class Runtime:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)

    def get(self, cid: str) -> Container:
        sd = StateDir(self.root, cid)
        return Container(self, sd, sd.load())

    def containers(self) -> list[Container]:
        out = []
        for cid in list_ids(self.root):
            try:
                out.append(self.get(cid))
            except ContainerNotFound:
                continue
        return out

    def create(
        self,
        cid: str,
        bundle: str,
        *,
        console_socket: str | None = None,
        console: _socket.socket | None = None,
        pid_file: str | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        config: dict[str, Any] | None = None,
        stdio: tuple[int, int, int] | None = None,
        clone_parent: bool = False,
    ) -> Container:
        """Set everything up and leave the init blocked before execve (status "created").

        With `clone_parent` the init becomes a child of our parent, not of us (CLONE_PARENT): berthd's
        monitor does the heavy setup in a short-lived helper so that it keeps no trace of it.

        `console` is an already connected socket that receives the pty master (berthd's monitor and
        `run` use a socketpair); `console_socket` is a path, as runc's --console-socket.
        """
        bundle = os.path.abspath(bundle)
        sd = StateDir(self.root, cid)
        if config is None:
            config = cfgmod.load_bundle(bundle)
        else:
            cfgmod.validate(config, bundle)
        rootfs = cfgmod.rootfs_path(config, bundle)
        os.makedirs(self.root, 0o711, exist_ok=True)
        try:
            os.mkdir(sd.path, 0o711)
        except FileExistsError:
            raise ContainerExists() from None
        st = State(id=cid, bundle=bundle, rootfs=rootfs, created=_now(), config=config)
        cleanup: list[Callable[[], None]] = [lambda: _rmtree(sd.path)]
        try:
            return self._create(sd, st, config, console_socket, console, pid_file, no_pivot, preserve_fds, stdio,
                                cleanup, sc.CLONE_PARENT if clone_parent else 0)
        except BaseException:
            for fn in reversed(cleanup):
                try:
                    fn()
                except Exception:
                    pass
            raise

    def _create(
        self,
        sd: StateDir,
        st: State,
        config: dict[str, Any],
        console_socket: str | None,
        console: _socket.socket | None,
        pid_file: str | None,
        no_pivot: bool,
        preserve_fds: int,
        stdio: tuple[int, int, int] | None,
        cleanup: list[Callable[[], None]],
        extra_flags: int = 0,
    ) -> Container:
        linux = config.get("linux") or {}
        process = config["process"]
        os.mkfifo(sd.fifo, 0o622)
        os.chmod(sd.fifo, 0o622)  # not narrowed by the umask: the container's root must be able to write it
        root_uid, root_gid = _host_root(linux)
        if root_uid or root_gid:
            os.chown(sd.fifo, root_uid, root_gid)
        fifo_fd = os.open(sd.fifo, os.O_PATH | os.O_CLOEXEC)
        cleanup.append(lambda: os.close(fifo_fd))

        cg = cgroups.manager_for(linux.get("cgroupsPath"), st.id)
        cleanup.append(cg.destroy)  # registered before the child's kill: cleanup runs last-first
        # keep the resolved directories: a relative cgroupsPath would resolve elsewhere later
        st.cgroup_paths, st.cgroup_version, st.cgroup_root = dict(cg.paths), cg.version, cg.root

        if process.get("terminal") and console is None:
            if not console_socket:
                raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
            console = _unix_socket()
            try:
                console.connect(console_socket)
            except OSError as e:
                raise ConfigError(f"failed to connect to console socket {console_socket}: {e.strerror}") from None
            cleanup.append(console.close)
        elif not process.get("terminal"):
            console = None

        flags, joins, pid_join, userns = _namespaces(linux)
        cleanup.append(lambda: _close_all(fd for fd, _ in joins if fd >= 0))
        parent_sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        cleanup.append(parent_sock.close)
        ctx = InitContext(config=config, rootfs=st.rootfs, sync=child_sock, fifo_fd=fifo_fd, console=console,
                          no_pivot=no_pivot, userns=userns, join_fds=joins, preserve_fds=preserve_fds,
                          container_id=st.id, bundle=st.bundle, stdio=stdio)
        _prepare_child_imports(config, ctx)
        ctx.cgroup_plan = _cgroup_plan(cg)
        pid = _spawn(ctx, flags | extra_flags, pid_join)
        child_sock.close()
        cleanup.append(lambda: _kill_and_reap(pid))
        # The child builds its root filesystem meanwhile (see init._run). It needs the cgroup
        # directories for its cgroup mounts ("cgroups"), and its join, limits and filter only before
        # its own cgroup namespace and execve ("go"): a cgroup v1 join can wait an RCU grace period.
        cg.create()
        try:
            send(parent_sock, {"type": "cgroups"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child already failed: see below
        resources = linux.get("resources") or {}
        if os.geteuid() == 0:  # rootless containers get no device rules, as with runc
            resources = cgroups.with_runc_defaults(resources, linux.get("devices"))
        cg.apply(resources)  # before the join: the child must never see a half-written device list
        # the join can block an RCU grace period (cgroup v1, ~10 ms): compile the filter meanwhile
        joined = bgthread.start(lambda: cg.add_pid(pid))
        bpf = _compile_seccomp(config)
        joined()
        self._parent_setup(pid, config, userns)
        try:
            send(parent_sock, {"type": "go", "seccomp": len(bpf) if bpf else 0})
            if bpf:
                parent_sock.send(bpf)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child already failed: its error message is waiting to be read below
        st.pid = pid
        st.start_time = proc_start_time(pid) or 0
        while True:
            try:
                msg = recv(parent_sock)
            except (EOFError, ConnectionResetError):
                raise StartError("unable to start container process: container init exited prematurely") from None
            if msg["type"] == "hooks":
                self._run_hooks(st, config, ("prestart", "createRuntime"), "creating")
                send(parent_sock, {"type": "hooks-done"})
            elif msg["type"] == "ready":
                break
            else:
                raise StartError(f"unable to start container process: {msg.get('message', 'unknown error')}")
        if console_socket and console is not None:
            console.close()
        sd.save(st)
        if pid_file:
            _write_file_atomic(pid_file, str(pid))
        os.close(fifo_fd)
        parent_sock.close()
        return Container(self, sd, st)

    def _parent_setup(self, pid: int, config: dict[str, Any], userns: bool) -> None:
        """What runc's parent does before releasing the child, besides the cgroup join: maps,
        rlimits, oom score."""
        linux = config.get("linux") or {}
        process = config["process"]
        if userns:
            _write_id_map(pid, "uid_map", linux.get("uidMappings") or [])
            _write_id_map(pid, "gid_map", linux.get("gidMappings") or [])
        if process.get("oomScoreAdj") is not None:
            try:
                with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                    f.write(str(int(process["oomScoreAdj"])))
            except OSError as e:
                raise StartError(f"unable to start container process: failed to update oom_score_adj: "
                                 f"{os.strerror(e.errno or errno.EACCES)}") from None
        if process.get("rlimits"):
            import resource

            for rl in process["rlimits"]:
                typ = rl.get("type")
                if typ not in RLIMITS:
                    raise ConfigError(f"rlimit {typ!r} is not valid")
                try:
                    resource.prlimit(pid, RLIMITS[typ], (int(rl["soft"]), int(rl["hard"])))
                except (OSError, ValueError) as e:
                    err = os.strerror(e.errno).lower() if isinstance(e, OSError) and e.errno else str(e)
                    raise StartError("unable to start container process: error during container init: error "
                                     f"setting rlimits for ready process: error setting rlimit type "
                                     f"{RLIMITS[typ]}: {err}") from None

    def _run_hooks(self, st: State, config: dict[str, Any], names: tuple[str, ...], status: str,
                   warn: Callable[[str], None] | None = None) -> None:
        hooks = config.get("hooks") or {}
        if not any(hooks.get(n) for n in names):
            return
        from berth.runtime.hooks import run_hooks

        state = {"ociVersion": OCI_VERSION, "id": st.id, "status": status, "pid": st.pid, "bundle": st.bundle,
                 "annotations": config.get("annotations") or {}}
        for n in names:
            run_hooks(hooks.get(n) or [], state, n, warn)


def _namespaces(linux: dict[str, Any]) -> tuple[int, list[tuple[int, int]], int | None, bool]:
    """clone flags for new namespaces, fds to join, a pid-namespace fd to join, and whether a user ns is new."""
    flags = 0
    joins: list[tuple[int, int]] = []
    pid_join = None
    userns = False
    for ns in linux.get("namespaces") or []:
        t = ns["type"]
        flag = sc.NAMESPACE_FLAGS[t]
        if ns.get("path"):
            fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            if t == "pid":
                pid_join = fd
            elif t == "user":
                os.close(fd)
                raise ConfigError("joining an existing user namespace is not supported")
            else:
                joins.append((fd, flag))
        elif t == "time":
            raise ConfigError("time namespaces are not supported")
        elif t == "cgroup":
            # unshared by the init once it is inside its cgroup, so that cgroup becomes the ns root
            joins.append((-1, flag))
        else:
            flags |= flag
            userns = userns or t == "user"
    # a new cgroup namespace is created by the child itself (see init), after the joins
    joins = [j for j in joins if j[0] >= 0] + [j for j in joins if j[0] < 0]
    if pid_join is not None:
        joins.append((pid_join, -2))  # marker: consumed by _spawn, not the child
    return flags, joins, pid_join, userns


def _spawn(ctx: InitContext, flags: int, pid_join: int | None) -> int:
    ctx.join_fds = [(fd, t) for fd, t in (ctx.join_fds or []) if t != -2]
    saved = None
    if pid_join is not None:
        # setns(CLONE_NEWPID) changes only where our *children* go; restore it right after.
        saved = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
        sc.setns(pid_join, sc.CLONE_NEWPID)
    try:
        pid = sc.clone(flags)
        if pid == 0:
            child_main(ctx)  # never returns: the child must not run the parent's cleanup below
    finally:
        if saved is not None:
            sc.setns(saved, sc.CLONE_NEWPID)
            os.close(saved)
    return pid


def _cgroup_plan(cg: Any) -> list[tuple[str, str]]:
    """What the init binds under /sys/fs/cgroup: (name, host dir) per hierarchy of our cgroup. Known
    before the child is in the cgroup, so it can mount while we join it (see init._run)."""
    root = cg.root.rstrip("/")
    plan: list[tuple[str, str]] = []
    seen = set()
    for path in cg.paths.values():
        if path in seen:
            continue
        seen.add(path)
        rel = os.path.relpath(path, root)
        if cg.version == "v2" and not rel.startswith(".."):
            return [("", path)]
        plan.append((rel.split("/", 1)[0], path))
    return plan


def _host_root(linux: dict[str, Any]) -> tuple[int, int]:
    """The host uid/gid that the container's root maps to (0, 0 without a user namespace)."""

    def lookup(maps: list[dict[str, int]]) -> int:
        for m in maps:
            if m["containerID"] <= 0 < m["containerID"] + m["size"] or m["containerID"] == 0:
                return int(m["hostID"]) - int(m["containerID"])
        return 0

    return lookup(linux.get("uidMappings") or []), lookup(linux.get("gidMappings") or [])


def _close_all(fds: Any) -> None:
    for fd in fds:
        os.close(fd)


def _write_id_map(pid: int, name: str, mappings: list[dict[str, int]]) -> None:
    data = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)
    if not data:
        return
    try:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(data)
    except OSError as e:
        raise StartError(f"unable to start container process: failed to write {name}: {e.strerror}") from None


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class Container:
    def __init__(self, runtime: Runtime, sd: StateDir, st: State) -> None:
        self.runtime = runtime
        self.sd = sd
        self.st = st

    @property
    def id(self) -> str:
        return self.st.id

    @property
    def pid(self) -> int:
        return self.st.pid

    def cgroup(self) -> Any:
        return cgroups.manager_from_paths(self.st.cgroup_paths, version=self.st.cgroup_version,
                                          root=self.st.cgroup_root)

    def status(self) -> str:
        if not alive(self.st):
            return "stopped"
        if os.path.exists(self.sd.fifo):
            return "created"
        try:
            if self.cgroup().is_frozen():
                return "paused"
        except OSError:
            pass
        return "running"

    def oci_state(self) -> dict[str, Any]:
        status = self.status()
        return {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.st.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.st.bundle,
            "rootfs": self.st.rootfs,
            "created": self.st.created,
            "owner": self.st.owner,
            "annotations": self.st.config.get("annotations") or {},
        }

    def start(self) -> None:
        status = self.status()
        if status == "stopped":
            raise StateError("cannot start a container that has stopped")
        if status != "created":
            raise StateError("cannot start an already running container")
        try:
            fd = os.open(self.sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError("cannot start an already running container") from None
        try:
            pidfd = os.pidfd_open(self.st.pid)
        except OSError:
            os.close(fd)
            raise StateError("cannot start a container that has stopped") from None
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if fd in events and os.read(fd, 1) == b"0":
                    break
                if pidfd in events and not data_ready(fd):
                    raise StateError("cannot start a container that has stopped")
        finally:
            os.close(fd)
            os.close(pidfd)
        try:
            os.unlink(self.sd.fifo)
        except FileNotFoundError:
            pass
        self.st.started = True
        self.runtime._run_hooks(self.st, self.st.config, ("poststart",), "running")

    def kill(self, sig: int, all_processes: bool = False) -> None:
        status = self.status()
        if status == "stopped" and not all_processes:
            raise StateError("container not running")
        if all_processes:
            cg = self.cgroup()
            cg.kill_all(sig)
            if status == "paused" and sig == SIGKILL:
                cg.thaw()
            return
        os.kill(self.st.pid, sig)
        if status == "paused" and sig == SIGKILL:
            # a frozen task does not die until thawed (cgroup v1)
            self.cgroup().thaw()

    def delete(self, force: bool = False, warn: Callable[[str], None] | None = None) -> None:
        status = self.status()
        if status in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {self.id} that is not stopped: {status}")
        cg = self.cgroup()
        if status != "stopped":
            try:
                cg.kill_all(SIGKILL)
            except OSError:
                pass
            if status == "paused":
                cg.thaw()
            _wait_gone(self.st)
        # processes left in a shared pid namespace die with the cgroup
        try:
            if cg.pids():
                cg.kill_all(SIGKILL)
        except OSError:
            pass
        cg.destroy()
        self.runtime._run_hooks(self.st, self.st.config, ("poststop",), "stopped", warn)
        _rmtree(self.sd.path)

    def pause(self) -> None:
        status = self.status()
        if status not in ("running", "created"):
            raise StateError("container not running")
        self.cgroup().freeze()

    def resume(self) -> None:
        if self.status() != "paused":
            raise StateError("container not paused")
        self.cgroup().thaw()

    def processes(self) -> list[int]:
        return sorted(self.cgroup().pids())

    def update(self, resources: dict[str, Any]) -> None:
        self.cgroup().apply(resources)

    def exec(
        self,
        process: dict[str, Any],
        *,
        console_socket: str | None = None,
        console: _socket.socket | None = None,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        ignore_paused: bool = False,
        stdio: tuple[int, int, int] | None = None,
        clone_parent: bool = False,
    ) -> int:
        """Start `process` inside the running container; the caller becomes its parent. Returns its pid."""
        status = self.status()
        if status == "stopped":
            raise StateError("cannot exec in a stopped container")
        if status == "paused" and not ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        config = dict(self.st.config)
        config["process"] = process
        if not process.get("args"):
            raise ConfigError("args must not be empty")
        if process.get("terminal") and console is None:
            if not console_socket:
                raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
            console = _unix_socket()
            console.connect(console_socket)
        joins: list[tuple[int, int]] = []
        pid_fd = None
        try:
            for name, flag in (("user", sc.CLONE_NEWUSER), ("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS),
                               ("net", sc.CLONE_NEWNET), ("cgroup", sc.CLONE_NEWCGROUP), ("mnt", sc.CLONE_NEWNS),
                               ("pid", sc.CLONE_NEWPID)):
                target = f"/proc/{self.st.pid}/ns/{name}"
                try:
                    if os.stat(target).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                        continue
                except FileNotFoundError:
                    continue
                fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
                if name == "pid":
                    pid_fd = fd
                else:
                    joins.append((fd, flag))
            userns = any(flag == sc.CLONE_NEWUSER for _, flag in joins)
            parent_sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            ctx = InitContext(config=config, rootfs=self.st.rootfs, sync=child_sock, console=console,
                              userns=userns, join_fds=joins, preserve_fds=preserve_fds, exec_mode=True,
                              container_id=self.id, bundle=self.st.bundle, stdio=stdio)
            _prepare_child_imports(config, ctx)
            pid = _spawn(ctx, sc.CLONE_PARENT if clone_parent else 0, pid_fd)
            child_sock.close()
        finally:
            for fd, _ in joins:
                os.close(fd)
            if pid_fd is not None:
                os.close(pid_fd)
        try:
            cg = self.cgroup()
            joined = bgthread.start(lambda: cg.add_pid(pid))
            bpf = _compile_seccomp(config)
            joined()
            if process.get("rlimits"):
                self.runtime._parent_setup(pid, {"process": {"rlimits": process["rlimits"]}}, userns=False)
            send(parent_sock, {"type": "go", "seccomp": len(bpf) if bpf else 0})
            if bpf:
                parent_sock.send(bpf)
            try:
                msg = recv(parent_sock)
            except (EOFError, ConnectionResetError):
                raise StartError("exec failed: unable to start container process: process exited prematurely") from None
            if msg["type"] != "ready":
                raise StartError(f"exec failed: unable to start container process: {msg.get('message')}")
        except BaseException:
            _kill_and_reap(pid)
            raise
        finally:
            parent_sock.close()
            if console_socket and console is not None:
                console.close()
        if pid_file:
            _write_file_atomic(pid_file, str(pid))
        return pid


def data_ready(fd: int) -> bool:
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


def _wait_gone(st: State, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(st) and time.monotonic() < deadline:
        try:
            os.waitpid(st.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.005)


def exit_status(wait_status: int) -> int:
    """The container's exit code, or 128+signal when killed (runc's convention)."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)

