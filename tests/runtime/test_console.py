"""Terminals: the pty master handed over --console-socket (SCM_RIGHTS, as runc), and foreground runs."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import pytest

from tests import leaks
from tests.runtime.rt import RUNTIME, Bundle, make_bundle

pytestmark = pytest.mark.root


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_console_socket_receives_the_pty_master(b: Bundle, tmp_path: str) -> None:
    sock_path = os.path.join(str(tmp_path), "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    cid = leaks.name("c")
    b.write(b.config(["sh"], process__terminal=True, process__consoleSize={"height": 30, "width": 100}))
    r = b.cli("run", "-d", "--console-socket", sock_path, cid)
    try:
        assert r.returncode == 0, r.stderr
        conn, _ = server.accept()
        _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
        conn.close()
        assert len(fds) == 1
        master = fds[0]
        os.write(master, b"tty; stty size; ls /dev/pts; echo done-$((40+2))\n")
        out = _read_until(master, b"done-42")
        assert b"/dev/pts/0" in out and b"30 100" in out and b"done-42" in out, out
        assert b"\r\n" in out  # a real terminal turns \n into \r\n
        os.write(master, b"exit 3\n")
        os.close(master)
    finally:
        server.close()
        b.cli("delete", "-f", cid)


def test_terminal_without_console_socket_when_detached_fails(b: Bundle) -> None:
    b.write(b.config(["sh"], process__terminal=True))
    r = b.cli("run", "-d", leaks.name("c"))
    assert r.returncode == 1 and "cannot allocate tty" in r.stderr


def test_foreground_run_with_terminal_relays(b: Bundle) -> None:
    b.write(b.config(["sh", "-c", "tty; echo fg-ok; exit 5"], process__terminal=True))
    master, slave = os.openpty()
    p = subprocess.Popen([RUNTIME, "--root", b.state_root, "run", leaks.name("c")], cwd=b.path,
                         stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        out = _read_until(master, b"fg-ok")
        assert p.wait(timeout=20) == 5
        assert b"/dev/pts/0" in out and b"fg-ok" in out, out
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
