"""`POST /images/{name}/push`: berth's images backend pushing to berth's registry server (a real process
on loopback), driven by the docker CLI 28 and docker-py, checked independently with skopeo: moby's exact
messages, compression of loaded layers into a Docker schema 2 manifest, "Layer already exists",
cross-repository mounts, parallel uploads, every tag, round trips into a second engine, and errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import test_images_env as env
from tests.daemon.test_images_env import Engine, Registry, busybox, lines, make_image, needs_docker, sha, tar_of
from tests.registry.helpers import layout

make_engine = env.make_engine
registry = env.registry

pytestmark = [pytest.mark.root, needs_docker]
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def load_busybox_archive(e: Engine, tmp_path: Path) -> str:
    """busybox as a `docker-archive` written by skopeo (uncompressed layers), loaded with `docker load`."""
    src = layout("latest-glibc", str(tmp_path / "glibc"))
    tar = str(tmp_path / "bb.tar")
    p = skopeo("copy", f"oci:{src}", f"docker-archive:{tar}:busybox:glibc")
    assert p.returncode == 0, p.stderr
    p = e.docker("load", "-i", tar)
    assert p.returncode == 0 and "Loaded image: busybox:glibc" in p.stdout, p.stderr
    return "busybox:glibc"


def push_messages(e: Engine, repo: str, tag: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    return list(e.client().api.push(repo, tag=tag, stream=True, decode=True, **kw))


@needs_skopeo
def test_push_of_a_loaded_image_compresses_and_says_what_moby_says(make_engine: Any, registry: Registry,
                                                                   tmp_path: Path) -> None:
    e: Engine = make_engine()
    img = load_busybox_archive(e, tmp_path)
    repo = f"{registry.host}/app"
    assert e.docker("tag", img, f"{repo}:v1").returncode == 0
    diff_id = e.client().api.inspect_image(img)["RootFS"]["Layers"][0]
    lid = diff_id[7:19]
    msgs = push_messages(e, repo, "v1")
    assert msgs[0] == {"status": f"The push refers to repository [{repo}]"}
    assert msgs[1] == {"status": "Preparing", "progressDetail": {}, "id": lid}
    pushing = [m for m in msgs if m.get("status") == "Pushing"]
    assert pushing and pushing[-1]["progressDetail"]["current"] == pushing[-1]["progressDetail"]["total"]
    assert [m for m in msgs[2:-2] if m.get("status") != "Pushing"] == [
        {"status": "Pushed", "progressDetail": {}, "id": lid}]
    digest, size = msgs[-1]["aux"]["Digest"], msgs[-1]["aux"]["Size"]
    assert msgs[-2] == {"status": f"v1: digest: {digest} size: {size}"}
    assert msgs[-1] == {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": size}}
    # what the registry holds: a Docker schema 2 manifest (laid out as distribution writes it) whose
    # gzip layer is the image's layer
    raw, media_type = registry.manifest("app", "v1")
    assert media_type == DOCKER_MANIFEST and sha(raw) == digest and len(raw) == size
    assert raw.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": ')
    doc = json.loads(raw)
    assert doc["config"]["digest"] == e.client().api.inspect_image(img)["Id"]
    assert doc["layers"][0]["mediaType"] == DOCKER_LAYER
    layer = registry.blob("app", doc["layers"][0]["digest"])
    assert "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest() == diff_id
    assert f"{repo}@{digest}" in e.client().api.inspect_image(img)["RepoDigests"]
    # an independent client reads it back whole
    p = skopeo("inspect", "--tls-verify=false", f"docker://{repo}:v1")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["Digest"] == digest and info["Layers"] == [doc["layers"][0]["digest"]]
    out = tmp_path / "copied"
    p = skopeo("copy", "--src-tls-verify=false", f"docker://{repo}:v1", f"oci:{out}:v1")
    assert p.returncode == 0, p.stderr
    # pushing again: the registry has everything
    again = push_messages(e, repo, "v1")
    assert {"status": "Layer already exists", "progressDetail": {}, "id": lid} in again
    assert again[-1]["aux"]["Digest"] == digest
    assert ("push", f"{repo}:v1", {"name": repo}) in e.events


def test_pulled_image_pushes_its_own_manifest_and_mounts_layers(make_engine: Any, registry: Registry,
                                                                tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    registry.push("library/busybox", "latest", bb)
    e: Engine = make_engine()
    src = f"{registry.host}/library/busybox"
    assert e.docker("pull", src).returncode == 0
    assert e.docker("tag", src, f"{registry.host}/mirror/busybox:1").returncode == 0
    p = e.docker("push", f"{registry.host}/mirror/busybox:1")
    assert p.returncode == 0, p.stderr
    diff_id = bb.config["rootfs"]["diff_ids"][0]
    assert lines(p) == [f"The push refers to repository [{registry.host}/mirror/busybox]",
                        f"{diff_id[7:19]}: Preparing", f"{diff_id[7:19]}: Mounted from library/busybox",
                        f"1: digest: {bb.digest} size: {len(bb.manifest)}"]
    raw, _ = registry.manifest("mirror/busybox", "1")
    assert raw == bb.manifest  # the digest survives the round trip


def test_many_layers_upload_five_at_a_time_then_exist_then_mount(make_engine: Any, registry: Registry,
                                                                  tmp_path: Path) -> None:
    tars = [tar_of({f"layer{i}/file": os.urandom(50_000)}) for i in range(7)]
    src = make_image(tars)
    seed = Registry(str(tmp_path / "seed"))  # another registry: nothing to mount from in the target
    try:
        seed.push("seed", "latest", src)
        e: Engine = make_engine()
        assert e.docker("pull", f"{seed.host}/seed").returncode == 0
    finally:
        seed.stop()
    repo = f"{registry.host}/team/seven"
    assert e.docker("tag", f"{seed.host}/seed", f"{repo}:a").returncode == 0
    msgs = push_messages(e, repo, "a")
    ids = [d[7:19] for d in src.config["rootfs"]["diff_ids"]]
    preparing = [m["id"] for m in msgs if m.get("status") == "Preparing"]
    assert preparing == list(reversed(ids))  # moby lists the top layer first
    assert [m["id"] for m in msgs if m.get("status") == "Waiting"] == list(reversed(ids))[5:]
    assert sorted(m["id"] for m in msgs if m.get("status") == "Pushed") == sorted(ids)
    # the registry now has them: a second tag of the same repository finds every layer there
    assert e.docker("tag", f"{repo}:a", f"{repo}:b").returncode == 0
    p = e.docker("push", f"{repo}:b")
    assert p.returncode == 0, p.stderr
    assert sum(1 for x in lines(p) if x.endswith(": Layer already exists")) == 7
    # another repository of the same registry mounts them from this one
    assert e.docker("tag", f"{repo}:a", f"{registry.host}/other:a").returncode == 0
    p = e.docker("push", f"{registry.host}/other:a")
    assert p.returncode == 0, p.stderr
    assert sum(1 for x in lines(p) if x.endswith(": Mounted from team/seven")) == 7


def test_push_every_tag_and_round_trip_into_another_engine(make_engine: Any, registry: Registry) -> None:
    one = make_image([tar_of({"etc/version": b"1\n"})], labels={"v": "1"})
    two = make_image([tar_of({"etc/version": b"2\n"}), tar_of({"etc/extra": b"x"})], labels={"v": "2"})
    registry.push("seed1", "latest", one)
    registry.push("seed2", "latest", two)
    a: Engine = make_engine(name="a")
    repo = f"{registry.host}/rt"
    for seed, tag in (("seed1", "one"), ("seed2", "two")):
        assert a.docker("pull", f"{registry.host}/{seed}").returncode == 0
        assert a.docker("tag", f"{registry.host}/{seed}", f"{repo}:{tag}").returncode == 0
    p = a.docker("push", "--all-tags", repo)
    assert p.returncode == 0, p.stderr
    assert [x.split(":")[0] for x in lines(p) if ": digest: " in x] == ["one", "two"]
    b: Engine = make_engine(name="b")
    for tag, img in (("one", one), ("two", two)):
        p = b.docker("pull", f"{repo}:{tag}")
        assert p.returncode == 0, p.stderr
        info = b.client().api.inspect_image(f"{repo}:{tag}")
        assert info["Id"] == img.image_id and info["Config"]["Labels"] == img.config["config"]["Labels"]
    rec = b.store.resolve(f"{repo}:two")
    with open(os.path.join(b.store.snapshots.stat(rec.chain[0]).path, "etc", "version")) as f:
        assert f.read() == "2\n"


def test_push_errors(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    from tests.daemon.test_images_env import htpasswd

    e: Engine = make_engine()
    p = e.docker("push", f"{registry.host}/nosuch:v1")
    assert p.returncode == 1
    assert lines(p) == [f"The push refers to repository [{registry.host}/nosuch]"]
    assert f"An image does not exist locally with the tag: {registry.host}/nosuch" in p.stderr
    img = make_image([tar_of({"a": b"a"})])
    registry.push("seed", "latest", img)
    assert e.docker("pull", f"{registry.host}/seed").returncode == 0
    p = e.docker("push", f"{registry.host}/seed:other")
    assert p.returncode == 1 and f"tag does not exist: {registry.host}/seed:other" in p.stderr
    # a registry that wants credentials the client has not given
    reg = Registry(str(tmp_path / "auth"), "--htpasswd", htpasswd(tmp_path / "htpasswd", {"u": "p"}))
    try:
        assert e.docker("tag", f"{registry.host}/seed", f"{reg.host}/seed").returncode == 0
        p = e.docker("push", f"{reg.host}/seed")
        assert p.returncode == 1 and "unauthorized: authentication required" in p.stderr
    finally:
        reg.stop()
