"""berth's `save` loads into real Docker and Docker's `save` loads back into berth (a private dockerd:
tests/dockerd.py: its own roots and socket, no host networking touched)."""

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator

import pytest

from berth.image.service import ImageService
from tests.dockerd import Dockerd, available

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("dockerd") is None, reason="docker.io is not installed")]


@pytest.fixture
def dockerd(tmp_path) -> Iterator[str]:
    why = available()
    if why:
        pytest.skip(why)
    d = Dockerd(str(tmp_path / "d"))
    os.makedirs(d.base, exist_ok=True)
    try:
        d.start()
        yield d.sock
    finally:
        d.stop()


def _docker(sock: str, *args: str, stdin: bytes | None = None) -> bytes:
    r = subprocess.run(["/usr/bin/docker", "-H", f"unix://{sock}", *args], input=stdin, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def _files(tar_bytes: bytes) -> dict[str, tuple]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        for m in tf.getmembers():
            out[m.name.removeprefix("./")] = (m.type, m.mode & 0o7777, m.uid, m.gid, m.linkname if m.issym() else "")
    return out


def test_save_into_docker_and_back(svc: ImageService, busybox_tar: str, dockerd: str, tmp_path) -> None:
    with open(busybox_tar, "rb") as f:
        svc.load(f)
    image_id = svc.resolve("busybox").id
    svc.tag("busybox", "localhost:5000/berth/bb:v1")
    ours = io.BytesIO()
    svc.save(["busybox:latest", "localhost:5000/berth/bb:v1"], ours)
    out = _docker(dockerd, "load", stdin=ours.getvalue()).decode()
    assert "Loaded image: busybox:latest" in out and "Loaded image: localhost:5000/berth/bb:v1" in out
    assert _docker(dockerd, "image", "inspect", "-f", "{{.Id}}", "busybox:latest").decode().strip() == image_id
    # Docker's own export of the image's filesystem equals berth's
    cid = _docker(dockerd, "create", "busybox:latest").decode().strip()
    theirs_fs = _docker(dockerd, "export", cid)
    _docker(dockerd, "rm", cid)
    ours_fs = io.BytesIO()
    svc.export_image("busybox", ours_fs)
    theirs_files = {k: v for k, v in _files(theirs_fs).items() if not k.startswith(("dev", "etc/hosts",
                    "etc/hostname", "etc/resolv.conf", ".dockerenv", "proc", "sys", "etc/mtab"))}
    ours_files = {k: v for k, v in _files(ours_fs.getvalue()).items()
                  if not k.startswith(("dev", "proc", "sys"))}
    assert ours_files == theirs_files
    # and back: Docker 20.10's (legacy-format) save loads into a fresh berth store to the same image
    theirs = _docker(dockerd, "save", "busybox:latest")
    fresh = ImageService(str(tmp_path / "fresh"))
    res = fresh.load(io.BytesIO(theirs))
    assert res.messages == ["Loaded image: busybox:latest"]
    assert fresh.resolve("busybox").id == image_id
    assert fresh.inspect("busybox")["Config"]["Cmd"] == ["sh"]
