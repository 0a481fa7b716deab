"""`--add-runtime`: runc and crun (Debian's) run berthd's containers too, through their command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.e2e.daemon import Berthd, preload_busybox

PEERS = [name for name in ("runc", "crun") if shutil.which(name)]


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, image_cache: str) -> Iterator[Berthd]:
    base = str(tmp_path_factory.mktemp("berthd-rt"))
    leaks.add_scope(base)
    extra = [f"--add-runtime={n}={shutil.which(n)}" for n in PEERS]
    extra.append(f"--add-runtime=berth-cli={shutil.which('berth-runtime') or 'berth-runtime'}")
    d = Berthd(base, *extra)
    preload_busybox(d, image_cache)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.mark.parametrize("runtime", [*PEERS, "berth-cli"])
def test_run_with_runtime(multi: Berthd, runtime: str) -> None:
    d = multi.docker
    r = d("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "echo $$ on $(hostname); exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith("1 on "), r.stdout
    cid = d("run", "-d", "--runtime", runtime, "busybox", "sleep", "60").stdout.strip()
    try:
        assert json.loads(d("inspect", cid).stdout)[0]["HostConfig"]["Runtime"] == runtime
        r = d("exec", cid, "sh", "-c", "echo exec ok")
        assert r.stdout == "exec ok\n", r.stderr
        assert d("pause", cid).returncode == 0
        assert d("unpause", cid).returncode == 0
        assert d("stop", "-t", "1", cid).returncode == 0
        assert json.loads(d("inspect", cid).stdout)[0]["State"]["ExitCode"] == 137
    finally:
        d("rm", "-f", cid)


def test_unknown_runtime(multi: Berthd) -> None:
    r = multi.docker("run", "--rm", "--runtime", "nosuch", "busybox", "true")
    assert r.returncode == 125 and "unknown or invalid runtime name: nosuch" in r.stderr
