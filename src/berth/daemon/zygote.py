"""The zygote: a single-threaded process forked from berthd before any thread exists, which forks
container monitors on request.

Forking the asyncio daemon itself is unsafe (threads hold locks), and starting a fresh interpreter
per container costs ~20 ms and 7+ MB. The zygote has berth's runtime, cgroup, seccomp and log code
imported and frozen (gc.freeze), so each monitor it forks starts in a millisecond or two and shares
that memory copy-on-write. Monitors are double-forked and setsid: they are not the zygote's
children and survive both the zygote and berthd (live-restore).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, NoReturn

from berth import fastjson


class SpawnError(Exception):
    pass


class Zygote:
    """berthd's handle on its zygote."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self._lock: asyncio.Lock | None = None

    @classmethod
    def start(cls) -> Zygote:
        """Fork the zygote. Call before starting any thread or event loop."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            parent.close()
            _serve(child)
        child.close()
        parent.setblocking(False)
        return cls(pid, parent)

    async def spawn(self, request: dict[str, Any]) -> int:
        """Fork a monitor for `request` (see berth.daemon.monitor); returns its pid."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        async with self._lock:
            await loop.sock_sendall(self.sock, fastjson.dumps(request).encode())
            data = await loop.sock_recv(self.sock, 65536)
        if not data:
            raise SpawnError("the zygote is gone")
        reply: dict[str, Any] = fastjson.loads(data)  # type: ignore[assignment]
        if "error" in reply:
            raise SpawnError(reply["error"])
        return int(reply["pid"])

    def close(self) -> None:
        self.sock.close()
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _preload() -> None:
    """Everything a monitor runs, imported once here so monitors share it."""
    import berth.daemon.monitor
    import berth.logs
    import berth.runtime.cgroups
    import berth.runtime.container
    import berth.runtime.hooks
    import berth.runtime.linux.init as init
    import berth.runtime.seccomp as seccomp
    import berth.store.mount  # noqa: F401

    init.preload_console()
    seccomp.load_bpf  # noqa: B018  (resolves the package's lazy parts)
    seccomp.compile_bpf  # noqa: B018


def _serve(sock: socket.socket) -> NoReturn:
    import gc
    import signal

    from berth.runtime.linux import syscalls as sc

    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # die with berthd; monitors do not
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setpgid(0, 0)  # a terminal's Ctrl-C to berthd must not reach us or the monitors
        _preload()
        gc.collect()
        gc.freeze()
        while True:
            data = sock.recv(65536)
            if not data:
                os._exit(0)
            reply: dict[str, Any]
            try:
                req = fastjson.loads(data)
                reply = {"pid": _fork_monitor(req, sock)}  # type: ignore[arg-type]
            except Exception as e:
                reply = {"error": f"{type(e).__name__}: {e}"}
            sock.send(fastjson.dumps(reply).encode())
    except BaseException:
        os._exit(1)


def _fork_monitor(req: dict[str, Any], sock: socket.socket) -> int:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        sock.close()
        grandchild = os.fork()
        if grandchild:
            os.write(w, str(grandchild).encode())
            os._exit(0)
        os.close(w)
        from berth.daemon.monitor import detach_and_run

        detach_and_run(req)
    os.close(w)
    data = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    if not data:
        raise SpawnError("monitor fork failed")
    return int(data)
