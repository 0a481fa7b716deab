"""The real `docker cp` (CLI 28) and docker-py against berth's archive functions, served by berth.api
with a backend whose archive_stat/get/put call them over a container root under tmp_path."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.api import EngineAPI
from berth.daemon import archive
from tests.api.conftest import DOCKER, Engine
from tests.api.fake import ContainersFake, FakeDaemon
from tests.daemon.test_archive_env import build, croot, entry, gnu_list, inode_groups, tree

__all__ = ["croot"]
pytestmark = [pytest.mark.root, pytest.mark.skipif(not os.path.exists(DOCKER), reason=f"{DOCKER} is not installed")]


class ArchiveContainers(ContainersFake):
    """The fake daemon's containers, with their files in real roots: `roots[name]`."""

    def __init__(self, d: FakeDaemon, roots: dict[str, str]) -> None:
        super().__init__(d)
        self.roots = roots

    async def archive_stat(self, ref: str, *, path: str) -> dict[str, Any]:
        c = self.d.get(ref)
        self.d.calls.append(f"archive_stat:{path}")
        return archive.stat(self.roots[c.name], path, container=ref)

    async def archive_get(self, ref: str, *, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        c = self.d.get(ref)
        self.d.calls.append(f"archive_get:{path}")
        return await archive.get_async(self.roots[c.name], path, container=ref)

    async def archive_put(self, ref: str, *, path: str, data: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
                          copy_uid_gid: bool) -> None:
        c = self.d.get(ref)
        self.d.calls.append(f"archive_put:{path}:{int(no_overwrite_dir_non_dir)}:{int(copy_uid_gid)}")
        await archive.put_async(self.roots[c.name], path, data, no_overwrite_dir_non_dir, copy_uid_gid,
                                container=ref, user=c.config.get("User") or "")


@pytest.fixture
def cp(tmp_path: Path, croot: Path) -> Iterator[Engine]:
    home = tmp_path / "home"
    home.mkdir()
    e = Engine(str(tmp_path / "berth.sock"), home)
    e.api = EngineAPI(dataclasses.replace(e.daemon.backends(),
                                          containers=ArchiveContainers(e.daemon, {"c1": str(croot), "c2": str(croot)})))
    e.start()
    try:
        assert e.docker("create", "--name", "c1", "busybox", "true").returncode == 0
        assert e.docker("create", "--name", "c2", "--user", "user", "busybox", "true").returncode == 0
        yield e
    finally:
        e.stop()


def _unowned(t: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """The CLI extracts as the user who runs it (NoLchown), so ownership is not compared."""
    return {k: (v[0], v[1], v[4], v[5]) for k, v in t.items()}


def _ok(r: Any) -> Any:
    assert r.returncode == 0, r.stderr.decode()
    return r


def test_cp_out_of_the_container(cp: Engine, croot: Path, tmp_path: Path) -> None:
    os.unlink(croot / "data/up")  # the CLI's own extractor refuses a link that climbs out of its destination
    os.chown(croot / "data/a.txt", 1000, 1001)
    os.utime(croot / "data/a.txt", (1_600_000_000, 1_600_000_000))
    _ok(cp.docker("cp", "c1:/etc/hostname", str(tmp_path / "hn")))
    assert (tmp_path / "hn").read_text() == "c0ffee\n"
    _ok(cp.docker("cp", "c1:/data", str(tmp_path / "out")))  # a new name: the directory is renamed
    assert _unowned(tree(tmp_path / "out")) == _unowned(tree(croot / "data"))
    assert inode_groups(tmp_path / "out") == [["a.txt", "sub/hard"]]
    (tmp_path / "into").mkdir()
    _ok(cp.docker("cp", "c1:/data/.", str(tmp_path / "into")))  # "/." copies the contents
    assert _unowned(tree(tmp_path / "into")) == _unowned(tree(croot / "data"))
    _ok(cp.docker("cp", "c1:/datalink", str(tmp_path / "dl")))  # the link itself
    assert os.readlink(tmp_path / "dl") == "/data"
    _ok(cp.docker("cp", "-L", "c1:/datalink", str(tmp_path / "dl2")))  # -L: where it leads (via linkTarget)
    assert _unowned(tree(tmp_path / "dl2")) == _unowned(tree(croot / "data"))
    _ok(cp.docker("cp", "-L", "c1:/data/rel-link", str(tmp_path / "rl")))
    assert (tmp_path / "rl").read_bytes() == (croot / "data/a.txt").read_bytes()
    assert "archive_stat:/datalink" in cp.daemon.calls


def test_cp_to_stdout_is_our_archive(cp: Engine, croot: Path) -> None:
    r = _ok(cp.docker("cp", "c1:/data", "-"))
    assert r.stdout == b"".join(archive.get(str(croot), "/data")[1])
    assert "data/sub/hard link to data/a.txt" in "\n".join(gnu_list(r.stdout))


def test_cp_into_the_container(cp: Engine, croot: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "dir/deep").mkdir(parents=True)
    (src / "file.txt").write_bytes(b"payload" * 1000)
    (src / "dir/deep/x").write_text("x")
    os.symlink("deep/x", src / "dir/ln")
    os.chmod(src / "dir/deep/x", 0o4750)
    _ok(cp.docker("cp", str(src / "file.txt"), "c1:/tmp/"))
    assert (croot / "tmp/file.txt").read_bytes() == b"payload" * 1000
    _ok(cp.docker("cp", str(src / "file.txt"), "c1:/tmp/renamed.txt"))  # a new name for a file
    assert (croot / "tmp/renamed.txt").read_bytes() == b"payload" * 1000
    _ok(cp.docker("cp", str(src / "dir"), "c1:/tmp/newdir"))  # a new name for a directory
    assert tree(croot / "tmp/newdir") == tree(src / "dir")
    assert stat.S_IMODE(os.lstat(croot / "tmp/newdir/deep/x").st_mode) == 0o4750
    _ok(cp.docker("cp", str(src / "dir"), "c1:/datalink"))  # into a directory, through a link
    assert tree(croot / "data/dir") == tree(src / "dir")
    tar_in = build([entry("streamed/", tarfile.DIRTYPE), entry("streamed/s", data=b"from stdin")])
    _ok(cp.docker("cp", "-", "c1:/tmp", input=tar_in))
    assert (croot / "tmp/streamed/s").read_bytes() == b"from stdin"
    assert any(c.startswith("archive_put:/tmp:1:0") for c in cp.daemon.calls), cp.daemon.calls


def test_cp_ownership_with_and_without_archive_mode(cp: Engine, croot: Path, tmp_path: Path) -> None:
    f = tmp_path / "owned"
    f.write_text("o")
    os.chown(f, 5, 6)
    _ok(cp.docker("cp", str(f), "c2:/tmp/"))
    assert (os.lstat(croot / "tmp/owned").st_uid, os.lstat(croot / "tmp/owned").st_gid) == (5, 6)
    _ok(cp.docker("cp", "-a", str(f), "c2:/tmp/"))  # the container's user ("user": 1000:1001 in its passwd)
    assert (os.lstat(croot / "tmp/owned").st_uid, os.lstat(croot / "tmp/owned").st_gid) == (1000, 1001)


def test_cp_errors_are_moby_s(cp: Engine, croot: Path, tmp_path: Path) -> None:
    r = cp.docker("cp", "c1:/nope", str(tmp_path / "x"))
    assert r.returncode == 1
    assert r.stderr.decode().strip() == "Error response from daemon: Could not find the file /nope in container c1"
    f = tmp_path / "f"
    f.write_text("f")
    r = cp.docker("cp", str(f), "c1:/nope/x")
    assert r.stderr.decode().strip() == "Error response from daemon: Could not find the file /nope in container c1"
    (croot / "tmp/clash").mkdir()
    clash = tmp_path / "clash"
    clash.write_text("a file")
    r = cp.docker("cp", str(clash), "c1:/tmp/")
    assert r.returncode == 1
    assert 'cannot overwrite directory "clash" with non-directory "/tmp"' in r.stderr.decode()
    assert (croot / "tmp/clash").is_dir()
    r = cp.docker("cp", "-", "c1:/tmp", input=b"not a tar" * 100)
    assert r.returncode == 1 and "Error response from daemon" in r.stderr.decode()


def test_docker_py_get_and_put_archive(cp: Engine, croot: Path) -> None:
    import docker

    client = docker.DockerClient(base_url=f"unix://{cp.sock}", version="auto", timeout=20)
    try:
        c = client.containers.get("c1")
        bits, st = c.get_archive("/data/sub")
        assert st == archive.stat(str(croot), "/data/sub")
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
            assert t.getnames() == ["sub", "sub/b.bin", "sub/hard"]
        assert c.put_archive("/tmp", build([entry("py.txt", data=b"docker-py")])) is True
        assert (croot / "tmp/py.txt").read_bytes() == b"docker-py"
        with pytest.raises(docker.errors.NotFound, match=f"Could not find the file /none in container {c.id}"):
            c.get_archive("/none")
    finally:
        client.close()
