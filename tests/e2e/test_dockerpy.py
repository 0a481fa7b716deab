"""The Python SDK `docker` (docker-py) against berthd: what testcontainers and scripts do."""

from __future__ import annotations

import docker
import pytest

from tests.e2e.daemon import Berthd


@pytest.fixture
def client(berthd: Berthd):  # type: ignore[no-untyped-def]
    c = docker.DockerClient(base_url=berthd.host, timeout=60)
    yield c
    for ctr in c.containers.list(all=True):
        ctr.remove(force=True)
    c.close()


def test_version_and_ping(client) -> None:  # type: ignore[no-untyped-def]
    assert client.ping()
    v = client.version()
    assert v["ApiVersion"] == "1.44" and v["Os"] == "linux"
    assert client.info()["Driver"] == "overlay2"


def test_containers_run_returns_output(client) -> None:  # type: ignore[no-untyped-def]
    out = client.containers.run("busybox", ["sh", "-c", "echo hello from docker-py"], remove=True)
    assert out == b"hello from docker-py\n"


def test_run_failure_raises_container_error(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ContainerError) as ei:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert ei.value.exit_status == 3


def test_detached_lifecycle_exec_logs(client) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.run("busybox", ["sh", "-c", "echo ready; sleep 60"], detach=True, labels={"t": "dp"})
    c.reload()
    assert c.status == "running"
    assert client.containers.list(filters={"label": "t=dp"})[0].id == c.id
    code, out = c.exec_run(["sh", "-c", "echo x; exit 2"])
    assert code == 2 and out == b"x\n"
    code, (so, se) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    assert so == b"o\n" and se == b"e\n"
    assert b"ready" in c.logs()
    c.kill()
    assert c.wait()["StatusCode"] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_errors(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nosuchimage:1")
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nosuch")
    c = client.containers.create("busybox", "true", name="dp-dup")
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.create("busybox", "true", name="dp-dup")
    assert ei.value.status_code == 409
    c.remove()
