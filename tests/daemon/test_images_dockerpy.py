"""docker-py's high-level image API (`client.images`, `client.login`) against berth's images backend and
berth's registry server: pull, push, save/get, load, remove, prune, login, and the errors docker-py turns
into its own exception types (ImageNotFound, ImageLoadError, APIError with the status)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.daemon import test_images_env as env
from tests.daemon.test_images_env import Engine, Registry, busybox, htpasswd, make_image, tar_of

make_engine = env.make_engine
registry = env.registry

pytestmark = [pytest.mark.root]


def test_pull_get_save_load_remove(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    arm64 = make_image([tar_of({"arch": b"arm64"})], arch="arm64", variant="v8")
    registry.push_index("library/busybox", "latest", [(bb, {"architecture": "amd64", "os": "linux"}),
                                                      (arm64, {"architecture": "arm64", "os": "linux",
                                                               "variant": "v8"})])
    a: Engine = make_engine(name="a")
    client = a.client()
    repo = f"{registry.host}/library/busybox"
    img = client.images.pull(repo, tag="latest")
    assert img.id == bb.image_id and img.tags == [f"{repo}:latest"]
    assert client.images.get(repo).id == bb.image_id
    assert client.images.get(bb.image_id[7:19]).id == bb.image_id
    assert [i.id for i in client.images.list(name=repo)] == [bb.image_id]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuch:1")
    # a streamed save, loaded into another engine
    data = b"".join(img.save(named=True))
    b: Engine = make_engine(name="b")
    loaded = b.client().images.load(data)
    assert [i.id for i in loaded] == [bb.image_id] and loaded[0].tags == [f"{repo}:latest"]
    with pytest.raises(docker.errors.ImageLoadError):
        b.client().images.load(b"definitely not a tar")
    # --platform through docker-py
    arm = b.client().images.pull(repo, tag="latest", platform="linux/arm64")
    assert arm.id == arm64.image_id and arm.attrs["Architecture"] == "arm64"
    client.images.remove(repo)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(repo)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.remove("nosuch:1")


def test_login_and_push_with_auth_config(make_engine: Any, tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "reg"), "--htpasswd", htpasswd(tmp_path / "htpasswd", {"dev": "secret"}),
                   creds=("dev", "secret"))
    try:
        seed = make_image([tar_of({"hello": b"world"})])
        reg.push("seed", "latest", seed)
        e: Engine = make_engine()
        client = e.client()
        with pytest.raises(docker.errors.APIError) as exc:
            client.login("dev", "wrong", registry=reg.host, reauth=True)
        assert exc.value.response.status_code == 401
        assert client.login("dev", "secret", registry=reg.host, reauth=True)["Status"] == "Login Succeeded"
        auth = {"username": "dev", "password": "secret"}
        img = client.images.pull(f"{reg.host}/seed", tag="latest", auth_config=auth)
        assert img.id == seed.image_id
        assert img.tag(f"{reg.host}/pushed", "v1")
        out = list(client.images.push(f"{reg.host}/pushed", tag="v1", auth_config=auth, stream=True, decode=True))
        assert out[-1]["aux"]["Tag"] == "v1" and "errorDetail" not in str(out)
        assert any(m.get("status") == "Mounted from seed" for m in out)
        # a client that never logged in sends no credentials: the registry refuses, in-band
        text = e.client().images.push(f"{reg.host}/pushed", tag="v1")
        assert "unauthorized: authentication required" in text
    finally:
        reg.stop()


def test_prune_and_import_through_docker_py(make_engine: Any) -> None:
    e: Engine = make_engine()
    client = e.client()
    tar = tar_of({"etc/hostname": b"imported\n"})
    out = client.api.import_image_from_data(tar, repository="imp", tag="1", changes=["CMD [\"cat\"]"])
    img = client.images.get("imp:1")
    assert img.id in out and img.attrs["Config"]["Cmd"] == ["cat"]
    client.api.import_image_from_data(io.BytesIO(tar_of({"x": b"dangling"})).getvalue())
    res = client.images.prune()
    assert len([r for r in res["ImagesDeleted"] if "Deleted" in r]) >= 1
    assert client.images.get("imp:1").id == img.id
    res = client.images.prune(filters={"dangling": False})
    assert {"Untagged": "imp:1"} in res["ImagesDeleted"] and client.images.list() == []
