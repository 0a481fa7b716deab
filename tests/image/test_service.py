"""ImageService: resolution, tags, rmi semantics, containers' rootfs, commit/import/export, restart."""

import io
import os
import subprocess
import tarfile

import pytest

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.image.service import ImageService
from berth.store.mount import mount, unmount
from tests import leaks
from tests.image.fixtures import TARBALLS

pytestmark = pytest.mark.root


def _tar(f: io.BytesIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=f)


@pytest.fixture
def loaded(svc: ImageService, busybox_tar: str) -> ImageService:
    with open(busybox_tar, "rb") as f:
        assert svc.load(f).messages == ["Loaded image: busybox:latest"]
    return svc


def test_resolve_accepts_every_form_docker_does(loaded: ImageService) -> None:
    rec = loaded.resolve("busybox")
    hexid = rec.id.removeprefix("sha256:")
    for form in ("busybox:latest", "docker.io/library/busybox", "docker.io/library/busybox:latest", rec.id, hexid,
                 hexid[:12], hexid[:5]):
        assert loaded.resolve(form).id == rec.id, form
    manifest = rec.row.manifest
    assert manifest
    loaded.add_repo_digest("busybox", manifest, rec.id)
    assert loaded.resolve(f"busybox@{manifest}").id == rec.id
    assert loaded.inspect("busybox")["RepoDigests"] == [f"busybox@{manifest}"]
    for missing, msg in (("nope", "No such image: nope:latest"), ("busybox:other", "No such image: busybox:other"),
                         ("sha256:" + "0" * 64, "No such image: sha256:" + "0" * 64), ("Bad Name", "No such image")):
        with pytest.raises(NotFound, match=msg):
            loaded.resolve(missing)


def test_inspect_list_history_shapes(loaded: ImageService) -> None:
    doc = loaded.inspect("busybox")
    assert doc["RepoTags"] == ["busybox:latest"] and doc["Config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in doc["Config"]["Env"])
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert doc["Size"] > 1_000_000 and doc["Os"] == "linux"
    [summary] = loaded.list_images()
    assert summary["Id"] == doc["Id"] and summary["Containers"] == 0 and isinstance(summary["Created"], int)
    [h] = loaded.history("busybox")
    assert h["Id"] == doc["Id"] and h["Tags"] == ["busybox:latest"] and h["Size"] == doc["Size"]


def test_tag_untag_and_rmi_messages(loaded: ImageService) -> None:
    image_id = loaded.resolve("busybox").id
    loaded.tag("busybox", "localhost:5000/me/bb:v1")
    loaded.tag("busybox", "busybox:two")
    with pytest.raises(InvalidArgument):
        loaded.tag("busybox", "Bad/Name")
    assert sorted(loaded.inspect(image_id)["RepoTags"]) == ["busybox:latest", "busybox:two", "localhost:5000/me/bb:v1"]
    assert loaded.delete("busybox:two") == [{"Untagged": "busybox:two"}]
    with pytest.raises(Conflict, match=r"unable to delete \w{12} \(must be forced\) - image is referenced in multiple"):
        loaded.delete(image_id[7:19])
    out = loaded.delete(image_id[7:19], force=True)
    assert {"Untagged": "busybox:latest"} in out and {"Untagged": "localhost:5000/me/bb:v1"} in out
    assert {"Deleted": image_id} in out
    assert loaded.list_images() == [] and list(loaded.content.walk()) == [] and loaded.snapshots.all() == []


def test_rmi_refuses_images_in_use(loaded: ImageService) -> None:
    cid = leaks.name("berth-c")
    image_id = loaded.resolve("busybox").id
    loaded.prepare_rootfs(cid, "busybox")
    with pytest.raises(Conflict, match=f'unable to remove repository reference "busybox" \\(must force\\) - container '
                                       f"{cid[:12]} is using its referenced image {image_id[7:19]}"):
        loaded.delete("busybox")
    loaded.running = lambda c: c == cid
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container"):
        loaded.delete(image_id, force=True)
    loaded.running = lambda c: False
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped container"):
        loaded.delete(image_id)
    assert loaded.list_images()[0]["Containers"] == 1
    loaded.remove_rootfs(cid)
    assert {"Deleted": image_id} in loaded.delete("busybox")


def test_container_rootfs_changes_commit_export(loaded: ImageService, tmp_path) -> None:
    cid = leaks.name("berth-c")
    mounts = loaded.prepare_rootfs(cid, "busybox")
    target = str(tmp_path / "rootfs")
    os.mkdir(target)
    mount(mounts, target)
    try:
        r = subprocess.run(["chroot", target, "/bin/sh", "-c", "echo hi > /etc/motd && rm /bin/ls && mkdir /data"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        unmount(target)
    changes = {c["Path"]: c["Kind"] for c in loaded.changes(cid)}
    assert changes == {"/bin": 0, "/bin/ls": 2, "/etc": 0, "/etc/motd": 1, "/data": 1}
    assert loaded.rw_size(cid) == 3
    out = io.BytesIO()
    loaded.diff_tar(cid, out)
    names = _tar(io.BytesIO(out.getvalue())).getnames()
    assert "bin/.wh.ls" in names and "etc/motd" in names
    new = loaded.commit(cid, ref="bb:committed", message="m", changes=['CMD ["cat","/etc/motd"]', "ENV A=b"])
    doc = loaded.inspect("bb:committed")
    assert doc["Parent"] == loaded.resolve("busybox").id and doc["Comment"] == "m"
    assert doc["Config"]["Cmd"] == ["cat", "/etc/motd"] and "A=b" in doc["Config"]["Env"]
    hist = loaded.history("bb:committed")
    assert [h["Id"] for h in hist] == [new, loaded.resolve("busybox").id] and hist[1]["Tags"] == ["busybox:latest"]
    exp = io.BytesIO()
    loaded.export_image(new, exp)
    flat = _tar(io.BytesIO(exp.getvalue()))
    assert "bin/ls" not in flat.getnames() and flat.extractfile("etc/motd").read() == b"hi\n"  # type: ignore[union-attr]
    exp2 = io.BytesIO()
    loaded.export_container(cid, exp2)
    assert sorted(_tar(io.BytesIO(exp2.getvalue())).getnames()) == sorted(flat.getnames())
    with pytest.raises(Conflict, match="image has dependent child images"):
        loaded.delete(loaded.resolve("busybox").id, force=True)
    loaded.remove_rootfs(cid)


def test_import_tar_and_folder_with_changes(svc: ImageService, tmp_path) -> None:
    alpine = os.path.join(os.path.dirname(TARBALLS), "..", "..", "..", "..", "alpine-3.20", "x86_64",
                          "alpine-minirootfs-3.20.3-x86_64.tar.gz")
    with open(alpine, "rb") as f:
        image_id = svc.import_image(f, changes=['CMD ["/bin/sh"]', "ENV A=b"], ref="alpine:imported")
    doc = svc.inspect("alpine:imported")
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["/bin/sh"] and doc["Config"]["Env"] == ["A=b"]
    assert doc["Comment"] == "Imported from -"
    folder = tmp_path / "f"
    (folder / "etc").mkdir(parents=True)
    (folder / "etc" / "hello").write_text("x")
    svc.import_image(str(folder), ref="folder:1", message="from a folder")
    assert svc.history("folder:1")[0]["Comment"] == "from a folder"
    with pytest.raises(InvalidArgument, match="not a valid change command"):
        svc.import_image(str(folder), changes=["RUN true"])


def test_metadata_survives_a_restart_and_prune(loaded: ImageService, tmp_path) -> None:
    with open(os.path.join(TARBALLS, "hello-world-v25.tar"), "rb") as f:
        loaded.load(f)
    root = loaded.root
    again = ImageService(root)
    assert {tuple(i["RepoTags"]) for i in again.list_images()} == {("busybox:latest",), ()}
    res = again.prune()
    assert next(d for d in res["ImagesDeleted"] if "Deleted" in d)["Deleted"].startswith("sha256:ee301c")
    assert res["SpaceReclaimed"] > 0
    assert [i["RepoTags"] for i in again.list_images()] == [["busybox:latest"]]
    assert again.prune(all_unused=True)["ImagesDeleted"]
    assert again.list_images() == [] and list(again.content.walk()) == []


def test_crash_leftovers_are_cleaned_at_start(loaded: ImageService) -> None:
    snaps = loaded.snapshots.root
    os.makedirs(os.path.join(snaps, "tmp-deadbeef", "fs", "half"))
    os.makedirs(os.path.join(snaps, "s0123456789abcdef", "fs"))
    os.symlink("../nowhere/fs", os.path.join(snaps, "l", "dangling01"))
    ingest = os.path.join(loaded.content.root, "ingest", "anon-1234")
    os.makedirs(ingest)
    again = ImageService(loaded.root)
    assert not os.path.exists(os.path.join(snaps, "tmp-deadbeef"))
    assert not os.path.exists(os.path.join(snaps, "s0123456789abcdef"))
    assert not os.path.lexists(os.path.join(snaps, "l", "dangling01"))
    assert not os.path.exists(ingest)
    assert again.resolve("busybox")


def test_concurrent_loads_unpack_each_layer_once(svc: ImageService, busybox_tar: str) -> None:
    import threading

    errors: list[BaseException] = []

    def load() -> None:
        try:
            with open(busybox_tar, "rb") as f:
                svc.load(f)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    [layer] = svc.meta.layers()
    assert layer.tar_size > 0 and len(svc.snapshots.all()) == 1
    out = io.BytesIO()
    svc.save(["busybox"], out)  # needs the recorded tar size
    assert len(out.getvalue()) > layer.tar_size
