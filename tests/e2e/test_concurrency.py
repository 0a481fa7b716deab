"""Fifty containers created, started, stopped and removed at once: state stays consistent, and one
hung container does not block the API for others."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import docker

from tests.e2e.daemon import Berthd


def test_fifty_in_parallel(berthd: Berthd) -> None:
    client = docker.DockerClient(base_url=berthd.host, timeout=120)

    def one(i: int) -> tuple[str, int]:
        c = client.containers.run("busybox", ["sh", "-c", f"echo {i}; sleep 30"], detach=True, name=f"par{i}")
        deadline = time.monotonic() + 30
        while not c.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.stop(timeout=0)
        code = c.wait()["StatusCode"]
        logs = c.logs()
        c.remove()
        return logs.decode().strip(), code

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(50)))
        assert results == [(str(i), 137) for i in range(50)]
        assert client.containers.list(all=True) == []
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()


def test_a_hung_container_does_not_block_others(berthd: Berthd) -> None:
    d = berthd.docker
    hung = d("run", "-d", "busybox", "sh", "-c", "trap '' TERM; sleep 60").stdout.strip()
    try:
        import subprocess

        stopper = subprocess.Popen(["docker", "stop", "-t", "20", hung], env=berthd.env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        t0 = time.monotonic()
        r = d("run", "--rm", "busybox", "echo", "meanwhile")
        assert r.stdout == "meanwhile\n" and time.monotonic() - t0 < 10
        assert d("ps", "-q").returncode == 0
        stopper.kill()
        stopper.wait()
    finally:
        d("rm", "-f", hung)
