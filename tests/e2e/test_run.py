"""`docker run` and friends, through the real docker CLI against a real berthd."""

from __future__ import annotations

from tests.e2e.daemon import Berthd


def test_run_rm_echo(berthd: Berthd) -> None:
    r = berthd.docker("run", "--rm", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    assert berthd.docker("ps", "-aq").stdout == ""


def test_run_exit_code(berthd: Berthd) -> None:
    r = berthd.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == "out\n" and r.stderr == "err\n"
