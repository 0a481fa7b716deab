"""berth against berthd itself (the daemon it is for): the everyday commands end to end."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.cli.conftest import run_berth

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def berthd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    try:
        from tests.e2e.daemon import Berthd, preload_busybox
    except ImportError:
        pytest.skip("tests/e2e/daemon.py (the berthd test helper) is not in this tree")
    base = str(tmp_path_factory.mktemp("berthd-cli"))
    leaks.add_scope(base)
    d = Berthd(base)
    preload_busybox(d, str(tmp_path_factory.mktemp("bbcache")))
    d.start()
    env = {k: v for k, v in d.env().items() if k != "DOCKER_HOST"}  # berth finds it through BERTH_HOST
    try:
        yield env
    finally:
        d.cleanup()


def test_run_variants(berthd: dict[str, str]) -> None:
    p = run_berth(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"],
                  berthd)
    assert (p.stdout, p.stderr, p.returncode) == ("out\n", "err\n", 3), p
    p = run_berth(["run", "-i", "--rm", "--network", "none", "busybox", "cat"], berthd, input="through stdin\n")
    assert (p.stdout, p.returncode) == ("through stdin\n", 0), p.stderr
    p = run_berth(["run", "--rm", "--network", "none", "busybox", "nosuch"], berthd)
    assert p.returncode == 127 and "executable file not found" in p.stderr


def test_detached_lifecycle(berthd: dict[str, str]) -> None:
    p = run_berth(["run", "-d", "--name", "cli-web", "--network", "none", "busybox", "sh", "-c",
                   "echo hello; sleep 60"], berthd)
    assert p.returncode == 0 and len(p.stdout.strip()) == 64, p.stderr
    try:
        out = run_berth(["ps", "--format", "{{.Names}} {{.State}} {{.Command}}"], berthd).stdout
        assert out.startswith('cli-web running "sh -c ')
        deadline = time.monotonic() + 30
        while run_berth(["logs", "cli-web"], berthd).stdout != "hello\n":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        p = run_berth(["exec", "cli-web", "sh", "-c", "echo in-exec; exit 4"], berthd)
        assert (p.stdout, p.returncode) == ("in-exec\n", 4)
        p = run_berth(["inspect", "-f", "{{.State.Running}} {{.Name}}", "cli-web"], berthd)
        assert p.stdout == "true /cli-web\n"
        assert run_berth(["stop", "-t", "1", "cli-web"], berthd).stdout == "cli-web\n"
        assert run_berth(["wait", "cli-web"], berthd).stdout == "137\n"
    finally:
        assert run_berth(["rm", "-f", "cli-web"], berthd).returncode == 0
    assert "busybox" in run_berth(["images"], berthd).stdout
    assert os.environ.get("DOCKER_HOST") != berthd.get("BERTH_HOST")
