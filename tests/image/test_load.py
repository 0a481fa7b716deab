"""docker load / OCI layouts: real inputs from Docker, ggcr and the official busybox images."""

import glob
import os
import subprocess

import pytest

from berth.errors import InvalidArgument
from berth.image.service import ImageService
from berth.store.mount import mount, unmount
from tests.image.conftest import state
from tests.image.fixtures import BUSYBOX, MUTATE, TARBALLS, materialize_layout

pytestmark = pytest.mark.root


def _tree(root: str) -> dict[str, tuple]:
    out = {}
    for top, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(top, n)
            st = os.lstat(p)
            data = b""
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data = f.read()
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, data,
                                             os.readlink(p) if os.path.islink(p) else "")
    return out


def _merged(svc: ImageService, image: str, target: str) -> dict[str, tuple]:
    rec = svc.resolve(image)
    os.makedirs(target)
    mount(svc.snapshots.view(rec.chain[-1]), target)
    try:
        return _tree(target)
    finally:
        unmount(target)


@pytest.mark.parametrize("layout", sorted(os.path.basename(p) for p in glob.glob(os.path.join(BUSYBOX, "*"))))
def test_official_busybox_layouts_load_to_the_exact_tree(svc: ImageService, tmp_path, layout: str) -> None:
    path = materialize_layout(os.path.join(BUSYBOX, layout), str(tmp_path / "layout"))
    res = svc.load_dir(path)
    assert len(res.images) == 1 and res.messages[0].startswith("Loaded image: busybox:1.3")
    ref = res.messages[0].split(": ", 1)[1]
    ours = _merged(svc, ref, str(tmp_path / "mnt"))
    theirs = tmp_path / "gnu"
    theirs.mkdir()
    subprocess.run(["tar", "-xzpf", os.path.join(BUSYBOX, layout, "rootfs.tar.gz"), "-C", str(theirs)], check=True)
    assert ours == _tree(str(theirs))
    assert svc.inspect(ref)["Config"]["Cmd"] == ["sh"]


def test_layout_as_a_tar_and_two_versions_share_nothing_twice(svc: ImageService, tmp_path) -> None:
    a = materialize_layout(os.path.join(BUSYBOX, "latest-musl"), str(tmp_path / "a"), symlinks=False)
    subprocess.run(["tar", "-cf", str(tmp_path / "a.tar"), "-C", a, "."], check=True)
    with open(tmp_path / "a.tar", "rb") as f:
        first = svc.load(f)
    with open(tmp_path / "a.tar", "rb") as f:
        again = svc.load(f)
    assert first.images == again.images
    assert len(svc.snapshots.all()) == 1


def test_docker25_tarball_with_null_index_loads(svc: ImageService) -> None:
    with open(os.path.join(TARBALLS, "hello-world-v25.tar"), "rb") as f:
        res = svc.load(f)
    assert res.messages == ["Loaded image ID: sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"]
    assert svc.inspect("ee301c921b8a")["Architecture"] == "arm64"


@pytest.mark.parametrize("name,tags", [
    ("test_bundle.tar", ["test_image_1:latest", "test_image_2:latest"]),
    ("test_link.tar", ["bazel/v1/tarball:test_image_1", "bazel/v1/tarball:test_image_3"]),
    ("test_image_1.tar", ["bazel/v1/tarball:test_image_1"]),
    ("test_load_manifest.tar", ["bazel/v1/tarball:test_image_1"]),
])
def test_legacy_docker_save_tarballs_load(svc: ImageService, name: str, tags: list[str]) -> None:
    with open(os.path.join(TARBALLS, name), "rb") as f:
        svc.load(f)
    got = sorted(t for img in svc.list_images() for t in img["RepoTags"])
    assert got == sorted(tags)


def test_whiteout_image_applies_its_deletions(svc: ImageService, tmp_path) -> None:
    with open(os.path.join(MUTATE, "whiteout_image.tar"), "rb") as f:
        svc.load(f)
    tree = _merged(svc, "bazel/pkg/v1/mutate:whiteout_image", str(tmp_path / "m"))
    assert "foo.txt" not in tree and "bar.txt" in tree


@pytest.mark.parametrize("name,message", [
    ("no_manifest.tar", "does not contain a manifest.json"),
    ("null_manifest.tar", "manifest.json holds no images"),
])
def test_broken_tarballs_are_refused_and_change_nothing(svc: ImageService, name: str, message: str) -> None:
    with open(os.path.join(TARBALLS, "test_image_1.tar"), "rb") as f:
        svc.load(f)
    before = state(svc)
    with open(os.path.join(TARBALLS, name), "rb") as f, pytest.raises(InvalidArgument, match=message):
        svc.load(f)
    assert state(svc) == before


def _tamper(src: str, dst: str, member_suffix: str, mutate) -> None:
    import io
    import tarfile

    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if data is not None and m.name.endswith(member_suffix):
                data = mutate(data)
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)


def test_corrupt_layer_or_truncated_archive_changes_nothing(svc: ImageService, tmp_path, busybox_tar: str) -> None:
    with open(os.path.join(TARBALLS, "test_image_2.tar"), "rb") as f:
        svc.load(f)
    before = state(svc)
    bad = str(tmp_path / "bad.tar")

    def flip(data: bytes) -> bytes:
        if len(data) < 100_000:
            return data
        b = bytearray(data)
        b[len(b) // 2] ^= 1
        return bytes(b)

    _tamper(busybox_tar, bad, "", flip)
    with open(bad, "rb") as f, pytest.raises(InvalidArgument, match=r"diff_id mismatch|digest mismatch"):
        svc.load(f)
    assert state(svc) == before
    with open(busybox_tar, "rb") as f:
        data = f.read()
    (tmp_path / "trunc.tar").write_bytes(data[: len(data) // 2])
    with open(tmp_path / "trunc.tar", "rb") as f, pytest.raises(InvalidArgument, match="truncated"):
        svc.load(f)
    assert state(svc) == before


def test_hostile_layer_inside_an_archive_changes_nothing(svc: ImageService, tmp_path) -> None:
    from berth.image import bootstrap
    from tests.image import tars

    layer = tmp_path / "layer.tar"
    layer.write_bytes(tars.build([tars.entry("ok", data=b"fine"), tars.entry("../escape", data=b"x")]))
    bootstrap.write_archive(str(tmp_path / "evil.tar"), str(layer), {"Cmd": ["sh"]}, "evil:1", "test")
    before = state(svc)
    with open(tmp_path / "evil.tar", "rb") as f, pytest.raises(InvalidArgument, match=r"\.\./escape: path escapes"):
        svc.load(f)
    assert state(svc) == before
    assert not (tmp_path / "escape").exists()
