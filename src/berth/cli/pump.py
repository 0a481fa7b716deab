"""Pumps a hijacked attach/exec stream: stdin to the daemon, output to the terminal, while watching a
pending `wait` response and proxying signals. One thread, one select loop: no threading import on the
`run` path, and no race between the output and the exit status.

The ending follows docker's hijackedIOStreamer and runContainer: the output stream's end is the end
(then the exit status is read); an exit status that arrives first ends the loop only when no output is
attached; stdin EOF half-closes the connection and output keeps flowing; the detach keys end it early."""

from __future__ import annotations

import errno
import os
import select
import signal

from berth.cli.terminal import EscapeProxy, RawMode
from berth.client.http import Hijacked, Response
from berth.client.stdcopy import STDERR, Demuxer, StreamError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Signals the CLI proxies to the container (docker catches all; these are the ones a user can send).
PROXY_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM", "SIGTSTP", "SIGTTIN",
                 "SIGTTOU", "SIGWINCH", "SIGCONT", "SIGPWR", "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGXFSZ", "SIGIO")


class PumpResult:
    __slots__ = ("detached", "error", "output_done", "status")

    def __init__(self) -> None:
        self.detached = False
        self.output_done = False
        self.status: int | None = None
        self.error: str | None = None


def write_all(fd: int, data: bytes) -> bool:
    """Write everything; False if the reader went away (EPIPE)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except BrokenPipeError:
            return False
        view = view[n:]
    return True


def read_wait_status(resp: Response, log: Callable[[str], None] | None = None) -> int:
    """The exit code from a `POST /containers/{id}/wait` body (125 if the wait itself failed)."""
    import json

    try:
        body = json.loads(resp.read() or b"{}")
    except (OSError, ValueError) as e:
        if log:
            log(f"error waiting for container: {e}")
        return 125
    err = body.get("Error") if isinstance(body, dict) else None
    if err and err.get("Message"):
        if log:
            log(f"Error waiting for container: {err['Message']}")
        return 125
    return int(body.get("StatusCode", 0)) if isinstance(body, dict) else 0


class SignalQueue:
    """Catch signals into a queue and wake the select loop through a pipe; restore on close."""

    def __init__(self, names: tuple[str, ...] | list[str]) -> None:
        self.pending: list[int] = []
        self.rfd, self.wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old: dict[int, object] = {}
        self._old_wakeup = -1
        for name in names:
            num = getattr(signal, name, None)
            if num is None:
                continue
            try:
                self._old[num] = signal.signal(num, self._handler)
            except (OSError, ValueError):
                pass
        try:
            self._old_wakeup = signal.set_wakeup_fd(self.wfd, warn_on_full_buffer=False)
        except ValueError:
            self._old_wakeup = -1

    def _handler(self, signum: int, frame: object) -> None:
        self.pending.append(signum)

    def drain(self) -> list[int]:
        try:
            while os.read(self.rfd, 512):
                pass
        except OSError:
            pass
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        for num, old in self._old.items():
            try:
                signal.signal(num, old)  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                pass
        try:
            signal.set_wakeup_fd(self._old_wakeup)
        except ValueError:
            pass
        os.close(self.rfd)
        os.close(self.wfd)


def signal_name(num: int) -> str:
    """Docker's names: without the SIG prefix ("INT", "TERM", "RTMIN+3")."""
    try:
        name = signal.Signals(num).name
    except ValueError:
        return str(num)
    return name[3:] if name.startswith("SIG") else name


def pump(conn: Hijacked, *, tty: bool, stdin_fd: int | None, stdout_fd: int | None, stderr_fd: int | None,
         detach_keys: bytes | None = None, waiter: Response | None = None, signals: SignalQueue | None = None,
         on_signal: Callable[[int], None] | None = None, raw_terminal: bool = False,
         log: Callable[[str], None] | None = None) -> PumpResult:
    """Run the streams until the output ends (or detach); see the module docstring for the rules."""
    res = PumpResult()
    demux = None if tty else Demuxer()
    escape = EscapeProxy(detach_keys) if (tty and stdin_fd is not None and detach_keys is not None) else None
    output_attached = stdout_fd is not None or stderr_fd is not None
    stdin_open = stdin_fd is not None
    outbuf = bytearray()  # stdin read but not yet accepted by the socket
    stdin_eof = False
    raw = RawMode(stdin_fd) if (raw_terminal and stdin_fd is not None) else None
    if raw is not None:
        raw.__enter__()
    if not stdin_open:
        # docker half-closes at once when stdin is not attached
        conn.close_write()
    try:
        while True:
            rlist: list[int] = []
            if not res.output_done:
                rlist.append(conn.fileno())
            if stdin_open and len(outbuf) < 1 << 16:
                rlist.append(stdin_fd)  # type: ignore[arg-type]
            wlist = [conn.fileno()] if outbuf else []
            if waiter is not None and res.status is None:
                rlist.append(waiter.conn.sock.fileno())
            if signals is not None:
                rlist.append(signals.rfd)
            waiter_buffered = waiter is not None and res.status is None and bool(waiter.conn.buf)
            writable: list[int] = []
            if (not res.output_done and conn.pending()) or waiter_buffered:
                ready: list[int] = []
                if not res.output_done and conn.pending():
                    ready.append(conn.fileno())
                if waiter_buffered:
                    ready.append(waiter.conn.sock.fileno())  # type: ignore[union-attr]
            else:
                try:
                    ready, writable, _ = select.select(rlist, wlist, [])
                except InterruptedError:
                    continue
            if signals is not None and (signals.rfd in ready or signals.pending):
                for num in signals.drain():
                    if on_signal is not None:
                        on_signal(num)
            if stdin_open and stdin_fd in ready:
                try:
                    data = os.read(stdin_fd, 32768)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EINTR):
                        continue
                    data = b""
                if escape is not None and data:
                    data, detach = escape.feed(data)
                    if detach:
                        res.detached = True
                        return res
                if data:
                    outbuf += data
                else:
                    stdin_open = False
                    stdin_eof = True
                    if raw is not None:
                        raw.restore()
            if outbuf and conn.fileno() in writable:
                try:
                    del outbuf[:conn.send_some(outbuf)]
                except OSError:
                    outbuf.clear()
                    stdin_open = False
                    stdin_eof = True
            if stdin_eof and not outbuf:
                stdin_eof = False
                conn.close_write()
                if not output_attached:
                    # input done and nothing to show: docker's stream() returns here
                    break
            if not res.output_done and conn.fileno() in ready:
                data = conn.recv()
                if not data:
                    res.output_done = True
                    if raw is not None:
                        raw.restore()
                    if waiter is None or res.status is not None:
                        break
                    continue
                if demux is None:
                    if stdout_fd is not None and not write_all(stdout_fd, data):
                        res.output_done = True
                else:
                    try:
                        frames = demux.feed(data)
                    except StreamError as e:
                        res.error = str(e)
                        res.output_done = True
                        frames = []
                    for stream, payload in frames:
                        fd = stderr_fd if stream == STDERR else stdout_fd
                        if fd is not None:
                            write_all(fd, payload)
                    if res.output_done:
                        break
            if waiter is not None and res.status is None and waiter.conn.sock.fileno() in ready:
                res.status = read_wait_status(waiter, log)
                if not output_attached:
                    break
            if res.output_done and (waiter is None or res.status is not None):
                break
        if waiter is not None and res.status is None and not res.detached:
            res.status = read_wait_status(waiter, log)
        return res
    finally:
        if raw is not None:
            raw.restore()
