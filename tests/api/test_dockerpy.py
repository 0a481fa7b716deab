"""docker-py (the `docker` package) against berth's Engine API over the fake daemon."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from .conftest import Engine


@pytest.fixture
def client(engine: Engine) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=f"unix://{engine.sock}", version="auto", timeout=20)
    try:
        yield c
    finally:
        c.close()


def test_version_ping_info(client: docker.DockerClient) -> None:
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.44" and v["MinAPIVersion"] == "1.24"
    assert client.api.api_version == "1.44"  # negotiated from the bare GET /version
    info = client.info()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["ExperimentalBuild"] is False and info["OSType"] == "linux"


def test_containers_run_reads_logs(client: docker.DockerClient, engine: Engine) -> None:
    out = client.containers.run("busybox", ["later", "hello", "py"], remove=True)
    assert out == b"hello py\n"
    assert engine.daemon.containers == {}


def test_containers_run_nonzero_exit_raises(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["fail", "bad", "thing"], environment={"EXIT_CODE": "3"}, stderr=True)
    assert e.value.exit_status == 3
    assert b"bad thing" in e.value.stderr


def test_exec_run(client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sleep"], detach=True, name="ex1")
    assert c.status == "created" or c.reload() is None
    c.reload()
    assert c.status == "running"
    code, out = c.exec_run(["echo", "hi", "there"], environment={"EXIT_CODE": "2"})
    assert (code, out) == (2, b"hi there\n")
    code, (o, err) = c.exec_run(["fail", "to", "stderr"], demux=True)
    assert (code, o, err) == (0, None, b"to stderr\n")
    code, out = c.exec_run(["echo", "tty"], tty=True)
    assert (code, out) == (0, b"tty\n")
    c.kill()
    assert c.wait(timeout=10)["StatusCode"] == 137
    c.remove()


def test_error_mapping(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.NotFound) as e:
        client.containers.get("nosuch")
    assert e.value.explanation == "No such container: nosuch"
    assert e.value.response.status_code == 404
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuch")
    client.containers.create("busybox", ["true"], name="dup")
    with pytest.raises(docker.errors.APIError) as e2:
        client.containers.create("busybox", ["true"], name="dup")
    assert e2.value.response.status_code == 409
    assert 'The container name "/dup" is already in use' in str(e2.value.explanation)
    with pytest.raises(docker.errors.APIError) as e3:
        client.api.wait("dup", condition="bogus")
    assert e3.value.response.status_code == 400
    assert e3.value.explanation == 'invalid condition: "bogus"'


def test_wait_and_not_modified(client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["echo", "x"], environment={"EXIT_CODE": "6"})
    c.start()
    assert c.wait(timeout=10) == {"StatusCode": 6}
    # start of a running container is 304, which docker-py treats as success
    d = client.containers.run("busybox", ["sleep"], detach=True)
    d.start()
    d.stop()


def test_attach_stream_and_logs(client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["later", "attached"])
    stream = c.attach(stream=True, stdout=True, stderr=True, logs=True)
    c.start()
    assert b"".join(stream) == b"attached\n"
    assert c.logs() == b"attached\n"
    assert c.logs(timestamps=True).endswith(b"Z attached\n")


def test_pull_stream_and_load_error(client: docker.DockerClient) -> None:
    msgs = list(client.api.pull("busybox", tag="latest", stream=True, decode=True))
    assert msgs[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert msgs[-1]["status"] == "Status: Downloaded newer image for busybox:latest"
    with pytest.raises(docker.errors.NotFound):
        client.images.pull("nosuchimage")
    with pytest.raises(docker.errors.ImageLoadError):
        client.images.load(b"garbage")
    assert [i.id for i in client.images.load(b"tar data")] == ["sha256:" + "ab" * 32]


def test_push_aux_and_tag(client: docker.DockerClient) -> None:
    img = client.images.get("busybox")
    assert img.tag("localhost:5000/busybox", "v1") is True
    msgs = list(client.api.push("localhost:5000/busybox", tag="v1", stream=True, decode=True))
    assert msgs[-1]["aux"] == {"Tag": "v1", "Digest": "sha256:" + "ef" * 32, "Size": 527}


def test_list_filters_both_shapes(client: docker.DockerClient, engine: Engine) -> None:
    client.containers.create("busybox", ["true"], name="a", labels={"proj": "x"})
    client.containers.create("busybox", ["true"], name="b", labels={"proj": "y"})
    names = [c.name for c in client.containers.list(all=True, filters={"label": "proj=x"})]
    assert names == ["a"]
    r = engine.docker("ps", "-a", "--filter", "label=proj=y", "--format", "{{.Names}}")
    assert r.stdout == b"b\n", r.stderr


def test_events_and_stats(client: docker.DockerClient) -> None:
    t0 = time.time() - 1
    c = client.containers.run("busybox", ["sleep"], detach=True, name="st1")
    s = c.stats(stream=False)
    assert {"read", "networks", "precpu_stats", "cpu_stats", "memory_stats", "blkio_stats"} <= set(s)
    frames = list(c.stats(stream=True, decode=True))
    assert len(frames) == 3
    c.kill()
    evs = list(client.events(since=t0, until=time.time() + 1, decode=True, filters={"container": "st1"}))
    assert [e["Action"] for e in evs] == ["create", "start", "die"]
    assert evs[-1]["Actor"]["Attributes"]["exitCode"] == "137"


def test_swarm_leave_is_tolerated(client: docker.DockerClient) -> None:
    assert client.swarm.leave(force=True) is True


def test_archive(client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["true"])
    bits, stat = c.get_archive("/etc/hostname")
    assert stat["name"] == "hostname" and stat["size"] == 13
    assert b"fakehostname" in b"".join(bits)
    assert c.put_archive("/tmp", b"x" * 1024) is True


def test_images_build(client: docker.DockerClient) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        df = b"FROM busybox\nRUN echo hi\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        t.addfile(info, io.BytesIO(df))
    buf.seek(0)
    image, logs = client.images.build(fileobj=buf, custom_context=True, tag="built:1")
    assert image.id == "sha256:" + "ab" * 32
    assert any("Step 2/2 : RUN echo hi" in chunk.get("stream", "") for chunk in logs)
