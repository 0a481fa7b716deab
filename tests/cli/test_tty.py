"""Interactive use on a real pseudo-terminal: raw mode (and its restoration), the initial size and
SIGWINCH resizes, the detach keys, and signal proxying without a TTY."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator

import pytest

from tests.cli.conftest import BERTH
from tests.dockerd import Dockerd

pytestmark = pytest.mark.root


class Term:
    """berth on the slave side of a pty (as its controlling terminal); the test types on the master."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 40, cols: int = 120) -> None:
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.saved = termios.tcgetattr(self.slave)

        def become_tty_owner() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, env=env, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True, preexec_fn=become_tty_owner)
        self.out = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 15) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {needle!r}; got {self.out!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        assert needle in self.out, f"{needle!r} not in {self.out!r}"
        return self.out

    def wait(self, timeout: float = 20) -> int:
        rc = self.proc.wait(timeout)
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def term(oracle: Dockerd) -> Iterator[object]:
    terms: list[Term] = []

    def make(args: list[str], **kw: int) -> Term:
        t = Term([*BERTH, *args], oracle.env, **kw)
        terms.append(t)
        return t

    yield make
    for t in terms:
        t.close()


def test_run_it_raw_mode_size_and_restore(term, oracle: Dockerd) -> None:  # type: ignore[no-untyped-def]
    t = term(["run", "-it", "--rm", "--network", "none", "busybox", "sh", "-c",
              # the resize follows the start (API 1.41 ignores ConsoleSize): give it a moment
              "sleep 0.5; stty size; read line; echo \"got:$line\"; exit 3"], rows=40, cols=120)
    t.expect(b"40 120")
    # raw mode: the line discipline on our side must not echo or cook; the container's tty does
    assert not termios.tcgetattr(t.slave)[3] & termios.ECHO
    t.write(b"hello\r")
    t.expect(b"got:hello")
    assert t.wait() == 3
    assert termios.tcgetattr(t.slave) == t.saved, "the terminal was not restored"


def test_sigwinch_resizes_the_container_tty(term, oracle: Dockerd) -> None:  # type: ignore[no-untyped-def]
    # each line typed makes the container print its tty size (no line editor to answer)
    t = term(["run", "-it", "--rm", "--network", "none", "busybox", "sh", "-c",
              "while read l; do [ \"$l\" = q ] && exit 0; stty size; done"], rows=30, cols=100)
    deadline = time.monotonic() + 10
    while b"30 100" not in t.out:
        assert time.monotonic() < deadline, t.out
        t.write(b"\r")
        try:
            t.expect(b"30 100", timeout=0.5)
        except AssertionError:
            pass
    t.resize(50, 132)
    os.killpg(t.proc.pid, signal.SIGWINCH)  # what the kernel sends the foreground group on a real resize
    deadline = time.monotonic() + 10
    while b"50 132" not in t.out:
        assert time.monotonic() < deadline, t.out
        t.write(b"\r")
        try:
            t.expect(b"50 132", timeout=0.5)
        except AssertionError:
            pass
    t.write(b"q\r")
    assert t.wait() == 0


def test_detach_keys_leave_the_container_running(term, oracle: Dockerd) -> None:  # type: ignore[no-untyped-def]
    t = term(["run", "-it", "--name", "detachme", "--network", "none", "busybox", "sh"])
    t.expect(b"# ")
    t.write(b"\x10\x11")  # ctrl-p ctrl-q
    assert t.wait() == 0
    assert termios.tcgetattr(t.slave) == t.saved
    assert oracle.docker("inspect", "-f", "{{.State.Running}}", "detachme").stdout.strip() == "true"
    # custom keys through attach
    t2 = term(["attach", "--detach-keys", "ctrl-x,x", "detachme"])
    t2.write(b"echo still-here\r")
    t2.expect(b"still-here")
    t2.write(b"\x18x")
    assert t2.wait() == 0
    assert oracle.docker("inspect", "-f", "{{.State.Running}}", "detachme").stdout.strip() == "true"


def test_exec_it_gets_the_terminal_size(term, oracle: Dockerd) -> None:  # type: ignore[no-untyped-def]
    oracle.docker("run", "-d", "--name", "ex", "--network", "none", "busybox", "sleep", "60")
    t = term(["exec", "-it", "ex", "sh", "-c", "sleep 0.5; stty size; exit 6"], rows=33, cols=77)
    t.expect(b"33 77")
    assert t.wait() == 6
    assert termios.tcgetattr(t.slave) == t.saved


def test_signals_are_proxied_without_a_tty(oracle: Dockerd) -> None:
    script = 'trap "echo got-int; exit 7" INT; trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
    p = subprocess.Popen([*BERTH, "run", "--rm", "--network", "none", "busybox", "sh", "-c", script],
                         env=oracle.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.stdout.readline() == b"got-usr1\n"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        assert out == b"got-int\n", err
        assert p.returncode == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_without_sig_proxy_ctrl_c_ends_only_the_client(oracle: Dockerd) -> None:
    p = subprocess.Popen([*BERTH, "run", "--sig-proxy=false", "--name", "keeps", "--network", "none", "busybox", "sh",
                          "-c", "echo ready; sleep 60"], env=oracle.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGINT)
        p.wait(10)
        assert p.returncode != 0
        assert oracle.docker("inspect", "-f", "{{.State.Running}}", "keeps").stdout.strip() == "true"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
