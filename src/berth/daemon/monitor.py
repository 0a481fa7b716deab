"""A container's monitor: the small process that owns its stdio, logs and exit (containerd-shim's role).

One per running container, forked from berthd's zygote (so it shares the zygote's imported code,
frozen by gc.freeze) and detached (setsid, re-parented away from berthd), so the container outlives
the daemon. It drives berth's runtime as a library: it is the parent of the container's init and of
every exec'd process, a child subreaper for the rest. Everything runs in one poll() loop: no
threads, no asyncio.

Files in its directory (`<exec-root>/<id>/`): `monitor.sock` (berthd connects here: see monproto),
`monitor.pid`, and `exit.json` written when the container has exited and been cleaned up, so a
berthd that was down at the time still learns the exit code.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import time
from typing import Any, NoReturn

from berth import fastjson
from berth.daemon.monproto import CONTROL, STDERR, STDIN, STDOUT, FrameReader, frame, short_path
from berth.runtime.container import Runtime, exit_status

MAX_CLIENT_BUFFER = 16 << 20
READ_SIZE = 65536


def _nonblock(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _atomic_write(path: str, data: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _control(msg: dict[str, Any]) -> bytes:
    return frame(CONTROL, fastjson.dumps(msg, compact=True).encode())


def _runtime_error(log: str) -> str:
    """The last error an external runtime logged (runc's --log-format json)."""
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = fastjson.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return ""


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Client:
    """A connection from berthd: the container's main stream, or one exec session."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self.out = bytearray()
        self.subscribed = False  # receives the container's output
        self.exec: Process | None = None

    def send(self, data: bytes) -> bool:
        """Queue bytes; False if this client has fallen too far behind (it gets dropped)."""
        if len(self.out) > MAX_CLIENT_BUFFER:
            return False
        self.out += data
        return True


class Process:
    """The container's init or an exec'd process: its pid and the fds carrying its stdio."""

    def __init__(self, pid: int, tty: bool) -> None:
        self.pid = pid
        self.tty = tty
        self.outputs: dict[int, int] = {}  # fd -> stream (1 or 2)
        self.stdin: int | None = None  # pipe write end, or the pty master
        self.stdin_buf = bytearray()
        self.close_stdin_pending = False
        self.master: int | None = None
        self.status: int | None = None


class Monitor:
    def __init__(self, req: dict[str, Any], log_writer: Any) -> None:
        self.req = req
        self.id: str = req["id"]
        self.dir: str = req["dir"]
        self.runtime = Runtime(req["runtime_root"])
        self.log = log_writer
        self.clients: dict[int, Client] = {}
        self.poll = select.poll()
        self.fd_kind: dict[int, tuple[str, Any]] = {}  # fd -> (what it is, its object)
        self.init: Process | None = None
        self.execs: dict[int, tuple[Process, Client]] = {}  # pid -> (process, its client)
        self.early_stdin = bytearray()  # stdin that arrived before the container started
        self.early_close = False
        self.listener = self._listen()
        self.sig_r, self.sig_w = os.pipe()
        _nonblock(self.sig_r)
        _nonblock(self.sig_w)
        signal.set_wakeup_fd(self.sig_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._watch(self.sig_r, "signal", None)

    # -- plumbing ---------------------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        path = os.path.join(self.dir, "monitor.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with short_path(path) as p:
            s.bind(p)
        os.chmod(path, 0o600)
        s.listen(16)
        s.setblocking(False)
        self._watch(s.fileno(), "listen", s)
        return s

    def _watch(self, fd: int, kind: str, obj: Any, events: int = select.POLLIN) -> None:
        self.fd_kind[fd] = (kind, obj)
        self.poll.register(fd, events)

    def _unwatch(self, fd: int) -> None:
        if self.fd_kind.pop(fd, None) is not None:
            try:
                self.poll.unregister(fd)
            except KeyError:
                pass

    def _client_events(self, c: Client) -> None:
        self.poll.modify(c.sock.fileno(), select.POLLIN | (select.POLLOUT if c.out else 0))

    def _send(self, c: Client, data: bytes) -> None:
        if not c.send(data):
            self._drop(c)
            return
        self._flush(c)

    def _flush(self, c: Client) -> None:
        try:
            while c.out:
                n = c.sock.send(c.out)
                del c.out[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(c)
            return
        if c.sock.fileno() in self.fd_kind:
            self._client_events(c)

    def _drop(self, c: Client) -> None:
        fd = c.sock.fileno()
        if fd < 0:
            return
        self._unwatch(fd)
        self.clients.pop(fd, None)
        c.sock.close()

    def _broadcast(self, kind: int, data: bytes) -> None:
        f = frame(kind, data)
        for c in list(self.clients.values()):
            if c.subscribed:
                self._send(c, f)

    # -- processes ----------------------------------------------------------------------------------
    def _stdio(self, tty: bool, open_stdin: bool) -> tuple[Process, Any, tuple[int, int, int] | None, list[int]]:
        """Pipes (or a console socketpair) for a new process; returns what runtime.create/exec take."""
        proc = Process(0, tty)
        if tty:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            return proc, (ours, theirs), None, []
        child_fds = []
        if open_stdin:
            r, w = os.pipe()
            proc.stdin = w
            child_fds.append(r)
            stdin_fd = r
        else:
            stdin_fd = os.open("/dev/null", os.O_RDONLY)
            child_fds.append(stdin_fd)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_fds += [out_w, err_w]
        proc.outputs = {out_r: STDOUT, err_r: STDERR}
        return proc, None, (stdin_fd, out_w, err_w), child_fds

    def _attach_process(self, proc: Process, console: Any, owner: Client | None) -> None:
        if console is not None:
            ours, theirs = console
            if theirs.fileno() >= 0:
                theirs.close()
            _msg, fds, _flags, _addr = socket.recv_fds(ours, 1024, 1)
            ours.close()
            proc.master = fds[0]
            proc.outputs = {proc.master: STDOUT}
            proc.stdin = proc.master
        for fd in proc.outputs:
            _nonblock(fd)
            self._watch(fd, "output", (proc, owner))
        if proc.stdin is not None and proc.stdin != proc.master:
            _nonblock(proc.stdin)

    def _in_helper(self, fn: Any) -> dict[str, Any]:
        """Run `fn() -> dict` in a short-lived fork and return its result. The runtime's create and
        exec touch (and so copy) megabytes of the zygote's shared memory; doing them in a helper
        that exits keeps this long-lived monitor small. Their processes are still our children:
        the runtime clones them with CLONE_PARENT."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                result = fn()
            except BaseException as e:
                result = {"type": "error", "message": str(e) or type(e).__name__}
            os.write(w, fastjson.dumps(result).encode())
            os._exit(0)
        os.close(w)
        chunks = []
        while True:
            try:
                data = os.read(r, 65536)
            except InterruptedError:
                continue
            if not data:
                break
            chunks.append(data)
        os.close(r)
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        if not chunks:
            return {"type": "error", "message": "the runtime helper died"}
        return fastjson.loads(b"".join(chunks))  # type: ignore[return-value]

    # -- external runtimes (runc's command line) ---------------------------------------------------
    def _external(self) -> list[str] | None:
        rt = self.req.get("runtime") or {}
        return None if rt.get("name", "berth") == "berth" else list(rt["command"])

    def _external_run(self, args: list[str], stdio: tuple[int, int, int] | None, tty: bool) -> dict[str, Any]:
        """Run `<runtime> … args`; with a tty, receive the pty master over a console socket."""
        import subprocess

        base = self._external()
        assert base is not None
        log = os.path.join(self.dir, "runtime.log")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(log)
        listener = None
        extra: list[str] = []
        if tty:
            path = os.path.join(self.dir, "console.sock")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with short_path(path) as p:
                listener.bind(p)
            listener.listen(1)
            listener.settimeout(60)
            extra = ["--console-socket", path]
        argv = [*base, "--log", log, "--log-format", "json", args[0], *extra, *args[1:]]
        null = subprocess.DEVNULL
        fds: dict[str, Any] = ({"stdin": stdio[0], "stdout": stdio[1], "stderr": stdio[2]} if stdio else
                               {"stdin": null, "stdout": null, "stderr": null})
        child = subprocess.Popen(argv, **fds)
        master = None
        try:
            if listener is not None:
                try:
                    conn, _ = listener.accept()
                    _msg, got, _f, _a = socket.recv_fds(conn, 1024, 1)
                    conn.close()
                    master = got[0] if got else None
                except OSError:
                    pass
            code = child.wait()
        finally:
            if listener is not None:
                listener.close()
        if code != 0:
            if master is not None:
                os.close(master)
            return {"type": "error", "message": _runtime_error(log) or f"runtime exited with status {code}"}
        return {"type": "ok", "master": master}

    def _external_start(self, proc: Process, stdio: tuple[int, int, int] | None, tty: bool) -> dict[str, Any]:
        pidfile = os.path.join(self.dir, "init.pid")
        r = self._external_run(["create", "--bundle", self.req["bundle"], "--pid-file", pidfile, self.id],
                               stdio, tty)
        if r["type"] != "ok":
            return r
        if r["master"] is not None:
            proc.master = r["master"]
            proc.outputs = {proc.master: STDOUT}
            proc.stdin = proc.master
        with open(pidfile) as f:
            pid = int(f.read().strip())
        s = self._external_run(["start", self.id], None, False)
        if s["type"] != "ok":
            self._external_run(["delete", "--force", self.id], None, False)
            return s
        return {"type": "started", "pid": pid}

    def start_container(self) -> dict[str, Any]:
        req = self.req
        if self._external() is not None:
            return self._start_external()
        proc, console, stdio, child_fds = self._stdio(req.get("tty", False), req.get("open_stdin", False))

        def create_and_start() -> dict[str, Any]:
            c = self.runtime.create(self.id, req["bundle"], console=console[1] if console else None, stdio=stdio,
                                    clone_parent=True)
            if console:
                # the pty master must be ours before the process runs: size it, then start
                console[1].close()
            try:
                c.start()
            except BaseException:
                c.delete(force=True)
                raise
            return {"type": "started", "pid": c.pid}

        result = self._in_helper(create_and_start)
        for fd in child_fds:
            os.close(fd)
        if result.get("type") != "started":
            if console:
                console[0].close()
                console[1].close()
            return result
        return self._started(proc, console, int(result["pid"]))

    def _started(self, proc: Process, console: Any, pid: int) -> dict[str, Any]:
        """The container runs: wire its stdio into the loop, hand it what stdin came early, watch it."""
        self._attach_process(proc, console, None)
        size = self.req.get("console_size")
        if proc.master is not None and size:
            set_winsize(proc.master, size[0], size[1])
        proc.pid = pid
        if self.early_stdin or self.early_close:
            proc.close_stdin_pending = self.early_close
            self._stdin(proc, bytes(self.early_stdin))
            self.early_stdin.clear()
        self.init = proc
        self.init_pidfd = os.pidfd_open(proc.pid)
        self._watch(self.init_pidfd, "init-exit", None)
        with open(os.path.join(self.dir, "monitor.pid"), "w") as f:
            f.write(str(os.getpid()))
        return {"type": "started", "pid": proc.pid}

    def _start_external(self) -> dict[str, Any]:
        req = self.req
        tty = bool(req.get("tty"))
        proc, _console, stdio, child_fds = self._stdio(False, req.get("open_stdin", False)) if not tty else \
            (Process(0, True), None, None, [])
        result = self._external_start(proc, stdio, tty)
        for fd in child_fds:
            os.close(fd)
        if result.get("type") != "started":
            for fd in list(proc.outputs):
                os.close(fd)
            return result
        return self._started(proc, None, int(result["pid"]))

    def start_exec(self, client: Client, msg: dict[str, Any]) -> None:
        process = msg["process"]
        tty = bool(process.get("terminal"))
        if self._external() is not None:
            self._exec_external(client, msg, process, tty)
            return
        proc, console, stdio, child_fds = self._stdio(tty, bool(msg.get("stdin")))

        def do_exec() -> dict[str, Any]:
            pid = self.runtime.get(self.id).exec(process, console=console[1] if console else None, stdio=stdio,
                                                 clone_parent=True)
            return {"type": "started", "pid": pid}

        result = self._in_helper(do_exec)
        for fd in child_fds:
            os.close(fd)
        if console:
            console[1].close()
        if result.get("type") != "started":
            if console:
                console[0].close()
            self._send(client, _control(result))
            return
        pid = int(result["pid"])
        proc.pid = pid
        self._attach_process(proc, console, client)
        size = msg.get("console_size")
        if proc.master is not None and size:
            set_winsize(proc.master, size[0], size[1])
        client.exec = proc
        self.execs[pid] = (proc, client)
        self._send(client, _control({"type": "started", "pid": pid}))

    def _exec_external(self, client: Client, msg: dict[str, Any], process: dict[str, Any], tty: bool) -> None:
        proc, _c, stdio, child_fds = self._stdio(False, bool(msg.get("stdin"))) if not tty else \
            (Process(0, True), None, None, [])
        spec = os.path.join(self.dir, f"exec-{os.getpid()}-{time.monotonic_ns()}.json")
        with open(spec, "w") as f:
            f.write(fastjson.dumps(process))
        pidfile = spec + ".pid"
        r = self._external_run(["exec", "--detach", "--pid-file", pidfile, "--process", spec, self.id], stdio, tty)
        for fd in child_fds:
            os.close(fd)
        os.unlink(spec)
        if r["type"] != "ok":
            for fd in list(proc.outputs):
                os.close(fd)
            self._send(client, _control(r))
            return
        if r["master"] is not None:
            proc.master = r["master"]
            proc.outputs = {proc.master: STDOUT}
            proc.stdin = proc.master
        with open(pidfile) as f:
            proc.pid = int(f.read().strip())
        os.unlink(pidfile)
        self._attach_process(proc, None, client)
        size = msg.get("console_size")
        if proc.master is not None and size:
            set_winsize(proc.master, size[0], size[1])
        client.exec = proc
        self.execs[proc.pid] = (proc, client)
        self._send(client, _control({"type": "started", "pid": proc.pid}))

    # -- events -------------------------------------------------------------------------------------
    def on_accept(self) -> None:
        while True:
            try:
                s, _ = self.listener.accept()
            except BlockingIOError:
                return
            s.setblocking(False)
            c = Client(s)
            self.clients[s.fileno()] = c
            self._watch(s.fileno(), "client", c)

    def on_client(self, c: Client, ev: int) -> None:
        if ev & select.POLLOUT:
            self._flush(c)
        if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        try:
            data = c.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        try:
            frames = c.reader.feed(data)
        except ValueError:
            self._drop(c)
            return
        for kind, payload in frames:
            if kind == STDIN:
                if c.exec is None and self.init is None:
                    self.early_stdin += payload
                else:
                    self._stdin(c.exec or self.init, payload)
            elif kind == CONTROL:
                self.on_control(c, fastjson.loads(payload))  # type: ignore[arg-type]

    def on_control(self, c: Client, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "start":
            c.subscribed = True
            reply = self.start_container() if self.init is None else {"type": "started", "pid": self.init.pid}
            self._send(c, _control(reply))
            if reply["type"] == "error":
                self.finish_failed(str(reply["message"]))
        elif op == "hello":
            c.subscribed = bool(msg.get("subscribe", True))
            self._send(c, _control({"type": "state", "pid": self.init.pid if self.init else 0,
                                    "running": self.init is not None and self.init.status is None}))
        elif op == "exec":
            self.start_exec(c, msg)
        elif op == "resize":
            proc = c.exec or self.init
            if proc is not None and proc.master is not None:
                try:
                    set_winsize(proc.master, int(msg["height"]), int(msg["width"]))
                except OSError:
                    pass
        elif op == "close-stdin":
            proc = c.exec or self.init
            if proc is None:
                self.early_close = True
            else:
                proc.close_stdin_pending = True
                self._stdin(proc, b"")

    def _stdin(self, proc: Process | None, data: bytes) -> None:
        if proc is None or proc.stdin is None:
            return
        proc.stdin_buf += data
        try:
            while proc.stdin_buf:
                n = os.write(proc.stdin, proc.stdin_buf)
                del proc.stdin_buf[:n]
        except BlockingIOError:
            return  # the rest goes when the pipe drains (it is retried with the next input)
        except OSError:
            proc.stdin_buf.clear()
        if proc.close_stdin_pending and not proc.stdin_buf and proc.stdin != proc.master:
            os.close(proc.stdin)
            proc.stdin = None

    def on_output(self, fd: int, proc: Process, owner: Client | None) -> bool:
        """Relay what a process wrote; False at EOF."""
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: a pty whose last slave closed
                raise
            data = b""
        if not data:
            self._unwatch(fd)
            os.close(fd)
            del proc.outputs[fd]
            if proc.master == fd:
                proc.master = None
                proc.stdin = None
            return False
        stream = proc.outputs[fd]
        if owner is None:
            self.log.write("stdout" if stream == STDOUT else "stderr", data)
            self._broadcast(stream, data)
        else:
            self._send(owner, frame(stream, data))
        return True

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.init is not None and pid == self.init.pid:
                self.init.status = status
            elif pid in self.execs:
                proc, client = self.execs.pop(pid)
                proc.status = status
                self._finish_exec(proc, client)

    def _drain(self, proc: Process, owner: Client | None, deadline: float) -> None:
        while proc.outputs and time.monotonic() < deadline:
            ready = select.select(list(proc.outputs), [], [], max(0.0, deadline - time.monotonic()))[0]
            if not ready:
                break
            for fd in ready:
                self.on_output(fd, proc, owner)
        for fd in list(proc.outputs):
            self._unwatch(fd)
            os.close(fd)
        proc.outputs.clear()

    def _finish_exec(self, proc: Process, client: Client) -> None:
        self._drain(proc, client, time.monotonic() + 2)
        if proc.stdin is not None and proc.stdin != proc.master:
            os.close(proc.stdin)
        code = exit_status(proc.status or 0)
        self._send(client, _control({"type": "exit", "code": code}))
        client.exec = None

    def finish(self) -> NoReturn:
        """The init exited: collect output, clean up, record the exit, and go."""
        proc = self.init
        assert proc is not None
        self._drain(proc, None, time.monotonic() + 5)
        status = proc.status if proc.status is not None else 0
        code = exit_status(status)
        oom = False
        error = ""
        try:
            if self._external() is not None:
                oom = self._external_oom()
                r = self._external_run(["delete", "--force", self.id], None, False)
                if r["type"] != "ok":
                    error = f"cleanup: {r['message']}"
            else:
                container = self.runtime.get(self.id)
                try:
                    oom = container.cgroup().oom_kill_count() > 0
                except Exception:
                    pass
                container.delete(force=True)
        except Exception as e:
            error = f"cleanup: {e}"
        self._finish_common({"type": "exited", "code": code, "oom_killed": oom, "error": error,
                             "finished_ns": time.time_ns()})

    def _external_oom(self) -> bool:
        try:
            from berth.runtime import cgroups

            with open(os.path.join(self.req["bundle"], "config.json")) as f:
                spec: dict[str, Any] = fastjson.loads(f.read())  # type: ignore[assignment]
            path = (spec.get("linux") or {}).get("cgroupsPath")
            return bool(cgroups.manager_for(path, self.id).oom_kill_count() > 0)
        except Exception:
            return False

    def finish_failed(self, message: str) -> NoReturn:
        self._finish_common({"type": "exited", "code": -1, "start_error": message, "oom_killed": False,
                             "error": message, "finished_ns": time.time_ns()})

    def _finish_common(self, result: dict[str, Any]) -> NoReturn:
        target = self.req.get("rootfs_target")
        if target and self.req.get("unmount_rootfs", True):
            from berth.store.mount import unmount

            try:
                unmount(target)
            except Exception:
                pass
        try:
            self.log.close()
        except Exception:
            pass
        _atomic_write(os.path.join(self.dir, "exit.json"), fastjson.dumps(result))
        msg = _control(result)
        for c in list(self.clients.values()):
            if c.subscribed:
                c.send(msg)
            try:
                c.sock.setblocking(True)
                c.sock.settimeout(2)
                c.sock.sendall(c.out)
            except OSError:
                pass
            c.sock.close()
        try:
            os.unlink(os.path.join(self.dir, "monitor.sock"))
        except FileNotFoundError:
            pass
        os._exit(0)

    # -- the loop -----------------------------------------------------------------------------------
    def serve(self, start_timeout: float = 60.0) -> NoReturn:
        started_by = time.monotonic() + start_timeout
        while True:
            timeout = None if self.init is not None else max(0, started_by - time.monotonic()) * 1000
            events = self.poll.poll(timeout)
            if not events and self.init is None:
                # nobody asked us to start the container: give up (berthd died before it could)
                self.finish_failed("berthd never started the container")
            for fd, ev in events:
                kind, obj = self.fd_kind.get(fd, ("", None))
                if kind == "listen":
                    self.on_accept()
                elif kind == "client":
                    self.on_client(obj, ev)
                elif kind == "output":
                    proc, owner = obj
                    self.on_output(fd, proc, owner)
                elif kind == "signal":
                    try:
                        while os.read(self.sig_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()
                elif kind == "init-exit":
                    self._unwatch(fd)
                    os.close(fd)
                    self.reap()
            for c in list(self.clients.values()):
                for proc in (c.exec, self.init):
                    if proc is not None and proc.stdin_buf:
                        self._stdin(proc, b"")
            if self.init is not None and self.init.status is not None:
                self.finish()


def detach_and_run(req: dict[str, Any]) -> NoReturn:
    """In a freshly forked child of the zygote: become a detached daemon process and serve."""
    try:
        os.setsid()
        from berth.runtime.linux import syscalls as sc

        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        sc.prctl(sc.PR_SET_PDEATHSIG, 0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(s, signal.SIG_IGN)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.closerange(3, 65536)
        os.chdir("/")
        from berth.logs import JSONFileWriter

        opts = req.get("log_opts") or {}
        writer = JSONFileWriter(req["log_path"], max_size=opts.get("max_size"), max_file=opts.get("max_file", 1),
                                compress=bool(opts.get("compress")))
        Monitor(req, writer).serve(req.get("start_timeout", 60.0))
    except BaseException:
        import traceback

        try:
            with open(os.path.join(req["dir"], "monitor.err"), "a") as f:
                traceback.print_exc(file=f)
        except OSError:
            pass
    os._exit(1)
