"""The images backend's local endpoints through the docker CLI 28 and the raw API (docker-py's low-level
client): list and its filters, inspect, history, tag, rmi (moby's conflicts with containers), prune,
save/load (streamed; load errors in-band), import (body or loopback URL, never elsewhere), search and
`GET /distribution/{name}/json` against berth's registry."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from berth.daemon.registries import RegistrySettings
from berth.oci import mediatypes as mt
from berth.oci.manifest import Descriptor
from tests import leaks
from tests.daemon import test_images_env as env
from tests.daemon.test_images_env import (
    Engine,
    Image,
    Registry,
    busybox,
    lines,
    make_image,
    needs_docker,
    sha,
    tar_of,
)

make_engine = env.make_engine
registry = env.registry
network_guard = env.network_guard

pytestmark = [pytest.mark.root, needs_docker]
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
ALPINE = FIXTURES / "alpine-3.20" / "x86_64" / "alpine-minirootfs-3.20.3-x86_64.tar.gz"
DOCKER_SAVED = FIXTURES / "ggcr" / "pkg" / "v1" / "tarball" / "testdata" / "test_image_1.tar"


def add(e: Engine, img: Image, *refs: str) -> str:
    """Put an image straight into the engine's store (set-up only; the tests use the API)."""
    for data in img.blobs.values():
        e.store.content.put(data)
    layers = [Descriptor(x["mediaType"], x["digest"], x["size"]) for x in img.doc["layers"]]
    image_id, _ = e.store.add_image(img.blobs[img.image_id], layers, refs=list(refs))
    return image_id


def image(created: str, labels: dict[str, str] | None = None, files: dict[str, bytes] | None = None,
          base: bytes | None = None) -> Image:
    """An image created at `created` (its config's time, which list filters and ordering use)."""
    layers = ([base] if base else []) + [tar_of(files or {"created": created.encode()})]
    img = make_image(layers, labels=labels)
    cfg = json.loads(img.blobs[img.image_id])
    cfg["created"] = created
    raw = json.dumps(cfg).encode()
    blobs = {d: b for d, b in img.blobs.items() if d != img.image_id}
    blobs[sha(raw)] = raw
    doc = img.doc
    doc["config"] = {"mediaType": mt.OCI_CONFIG, "digest": sha(raw), "size": len(raw)}
    return Image(json.dumps(doc).encode(), img.media_type, blobs)


@pytest.fixture
def three(make_engine: Any) -> tuple[Engine, dict[str, str]]:
    """a:1 (env=prod, oldest), b:1 and b:2 (env=dev), localhost:5000/team/c:1, and a dangling image (newest)."""
    e: Engine = make_engine()
    ids = {
        "a": add(e, image("2024-01-01T00:00:00Z", {"env": "prod"}), "a:1"),
        "b": add(e, image("2024-02-01T00:00:00Z", {"env": "dev"}), "b:1", "b:2"),
        "c": add(e, image("2024-03-01T00:00:00Z"), "localhost:5000/team/c:1"),
        "d": add(e, image("2024-04-01T00:00:00Z")),
    }
    return e, ids


def listed(e: Engine, **filters: Any) -> list[tuple[str, list[str]]]:
    out = e.client().api.images(filters=filters or None)
    return [(x["Id"], sorted(x["RepoTags"] or [])) for x in out]


def test_list_and_its_filters(three: tuple[Engine, dict[str, str]]) -> None:
    e, ids = three
    a, b, c, d = ids["a"], ids["b"], ids["c"], ids["d"]
    assert [i for i, _ in listed(e)] == [d, c, b, a]  # newest first
    assert listed(e, dangling=True) == [(d, [])]
    assert [i for i, _ in listed(e, dangling=False)] == [c, b, a]
    assert [i for i, _ in listed(e, label="env=dev")] == [b]
    assert [i for i, _ in listed(e, label="env")] == [b, a]
    assert listed(e, reference="b:1") == [(b, ["b:1"])]  # only the matching references are shown
    assert listed(e, reference="b") == [(b, ["b:1", "b:2"])]
    assert listed(e, reference="localhost:5000/team/*") == [(c, ["localhost:5000/team/c:1"])]
    assert listed(e, reference="*") == [(b, ["b:1", "b:2"]), (a, ["a:1"])]  # "*" never crosses a "/"
    assert [i for i, _ in listed(e, before="b:1")] == [a]
    assert [i for i, _ in listed(e, since="b:2")] == [d, c]
    assert [i for i, _ in listed(e, until="2024-02-15T00:00:00Z")] == [b, a]
    p = e.docker("images", "--filter", "label=env=prod", "--format", "{{.Repository}}:{{.Tag}}")
    assert lines(p) == ["a:1"]
    for bad, msg in (({"nope": ["1"]}, "invalid filter 'nope'"), ({"dangling": ["maybe"]},
                     "invalid filter 'dangling=maybe'"), ({"before": ["nosuch"]}, "No such image: nosuch:latest")):
        with pytest.raises(docker.errors.APIError) as exc:
            e.client().api.images(filters=bad)
        assert msg in str(exc.value)
        assert exc.value.response.status_code == (404 if "No such" in msg else 400)


def test_shared_size_counts_layers_other_images_use(make_engine: Any) -> None:
    e: Engine = make_engine()
    base = tar_of({"base/big": os.urandom(300_000)})
    one = add(e, image("2024-01-01T00:00:00Z", files={"one": b"1"}, base=base), "one:1")
    two = add(e, image("2024-01-02T00:00:00Z", files={"two": b"2"}, base=base), "two:1")
    alone = add(e, image("2024-01-03T00:00:00Z"), "alone:1")
    got = e.client().api._result(e.client().api._get(e.client().api._url("/images/json"),
                                                     params={"shared-size": 1}), True)
    shared = {x["Id"]: x["SharedSize"] for x in got}
    row = e.store.meta.get_layer(e.store.resolve("one:1").chain[0])
    assert row is not None
    base_size = row.size
    assert base_size >= 300_000
    assert shared == {one: base_size, two: base_size, alone: 0}


def test_inspect_history_tag_and_rmi(three: tuple[Engine, dict[str, str]]) -> None:
    e, ids = three
    api = e.client().api
    assert api.inspect_image("a:1")["Config"]["Labels"] == {"env": "prod"}
    hist = api.history("b:1")
    assert hist[0]["Id"] == ids["b"] and hist[0]["Tags"] == ["b:1", "b:2"]
    assert e.docker("tag", "a:1", "registry.example/x/y:2").returncode == 0
    assert sorted(api.inspect_image(ids["a"])["RepoTags"]) == ["a:1", "registry.example/x/y:2"]
    assert ("tag", ids["a"], {"name": "registry.example/x/y:2"}) in e.events
    with pytest.raises(docker.errors.APIError) as exc:
        api.tag("a:1", "x@sha256:" + "a" * 64)
    assert exc.value.response.status_code == 400
    assert "refusing to create a tag with a digest reference" in str(exc.value)
    p = e.docker("rmi", "registry.example/x/y:2")
    assert p.returncode == 0 and lines(p) == ["Untagged: registry.example/x/y:2"]
    p = e.docker("rmi", "nosuch")
    assert p.returncode == 1 and "Error response from daemon: No such image: nosuch:latest" in p.stderr
    # two repositories: by id only with -f, which untags both and deletes
    p = e.docker("rmi", ids["b"][7:19])
    assert p.returncode == 1
    assert (f"conflict: unable to delete {ids['b'][7:19]} (must be forced) - image is referenced in multiple "
            "repositories") in p.stderr
    p = e.docker("rmi", "-f", ids["b"][7:19])
    assert p.returncode == 0, p.stderr
    assert lines(p)[:3] == ["Untagged: b:1", "Untagged: b:2", f"Deleted: {ids['b']}"]
    assert ("delete", ids["b"], {}) in e.events


def test_rmi_conflicts_with_containers(three: tuple[Engine, dict[str, str]]) -> None:
    e, ids = three
    cid = leaks.name("berth-ctr").replace("-", "")[:64].ljust(64, "0")
    e.store.set_in_use(cid, "a:1")
    running = False
    e.store.running = lambda c: running and c == cid
    try:
        p = e.docker("rmi", "a:1")
        assert p.returncode == 1
        assert (f'conflict: unable to remove repository reference "a:1" (must force) - container {cid[:12]} is '
                f"using its referenced image {ids['a'][7:19]}") in p.stderr
        running = True
        p = e.docker("rmi", "-f", ids["a"])
        assert p.returncode == 1
        assert (f"conflict: unable to delete {ids['a'][7:19]} (cannot be forced) - image is being used by running "
                f"container {cid[:12]}") in p.stderr
        assert e.client().api.inspect_image("a:1")["Id"] == ids["a"]
    finally:
        e.store.release(cid)


def test_prune_dangling_then_by_label_and_until(three: tuple[Engine, dict[str, str]]) -> None:
    e, ids = three
    res = e.client().api.prune_images()
    assert res["ImagesDeleted"][0] == {"Deleted": ids["d"]} and res["SpaceReclaimed"] > 0
    assert not e.store.exists(ids["d"])
    p = e.docker("image", "prune", "-a", "-f", "--filter", "label=env=dev")
    assert p.returncode == 0, p.stderr
    assert not e.store.exists(ids["b"]) and e.store.exists(ids["a"]) and e.store.exists(ids["c"])
    res = e.client().api.prune_images(filters={"dangling": False, "until": "2024-02-15T00:00:00Z"})
    assert {"Untagged": "a:1"} in res["ImagesDeleted"] and e.store.exists(ids["c"]) and not e.store.exists(ids["a"])
    with pytest.raises(docker.errors.APIError) as exc:
        e.client().api.prune_images(filters={"reference": "x"})
    assert "invalid filter 'reference'" in str(exc.value)


def test_save_and_load_stream_between_engines(make_engine: Any, tmp_path: Path) -> None:
    src: Engine = make_engine(name="src")
    big = add(src, image("2024-01-01T00:00:00Z", files={"big": os.urandom(8 << 20)}), "big:1", "big:alias")
    small = add(src, image("2024-01-02T00:00:00Z"), "small:1")
    out = tmp_path / "images.tar"
    p = src.docker("save", "-o", str(out), "big:1", "small:1")
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 8 << 20
    p = src.docker("save", "nosuch:1")
    assert p.returncode == 1 and "No such image: nosuch:1" in p.stderr
    dst: Engine = make_engine(name="dst")
    p = dst.docker("load", "-i", str(out))
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["Loaded image: big:1", "Loaded image: small:1"]
    assert dst.client().api.inspect_image("big:1")["Id"] == big
    assert dst.client().api.inspect_image("small:1")["Id"] == small
    assert ("load", big, {}) in dst.events and ("save", big, {}) in src.events
    # loading the same again moves nothing; a Docker-made tarball loads too
    p = dst.docker("load", "-i", str(DOCKER_SAVED))
    assert p.returncode == 0 and lines(p)[0].startswith("Loaded image"), p.stderr


def test_load_errors_are_in_band(make_engine: Any, tmp_path: Path) -> None:
    e: Engine = make_engine()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of({"hello": b"not an image"}))
    p = e.docker("load", "-i", str(bad))
    assert p.returncode == 1 and "invalid archive: does not contain a manifest.json" in p.stderr
    r = e.client().api._post(e.client().api._url("/images/load"), data=b"\x00garbage" * 1000)
    assert r.status_code == 200  # moby answers 200 and reports the error in the stream
    assert "errorDetail" in r.text
    with pytest.raises(docker.errors.ImageLoadError):
        e.client().images.load(b"\x00garbage" * 1000)
    assert e.client().images.list() == []


def test_import_from_body_and_loopback_url_only(make_engine: Any, tmp_path: Path,
                                                network_guard: list[str]) -> None:
    e: Engine = make_engine()
    p = e.docker("import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV A=b", "-m", "from the test", str(ALPINE), "alp:1")
    assert p.returncode == 0, p.stderr
    image_id = lines(p)[-1]
    info = e.client().api.inspect_image("alp:1")
    assert info["Id"] == image_id and info["Config"]["Cmd"] == ["/bin/sh"] and info["Config"]["Env"] == ["A=b"]
    assert e.client().api.history("alp:1")[0]["Comment"] == "from the test"
    assert ("import", image_id, {}) in e.events
    root = e.store.snapshots.stat(e.store.resolve("alp:1").chain[0]).path
    assert os.path.isfile(os.path.join(root, "etc", "alpine-release"))
    # a URL on loopback: downloaded with progress, same image content
    with serve_dir(ALPINE.parent) as base:
        p = e.docker("import", f"{base}/{ALPINE.name}", "alp:url")
        assert p.returncode == 0, p.stderr
        p = e.docker("import", f"{base}/missing.tar", "alp:missing")
        assert p.returncode == 1 and f"error downloading {base}/missing.tar: 404 File not found" in p.stderr
    assert e.client().api.inspect_image("alp:url")["RootFS"] == info["RootFS"]
    # anywhere else: refused before any lookup or connection
    p = e.docker("import", "http://images.example.com/rootfs.tar", "x:1")
    assert p.returncode == 1 and "import from images.example.com is not allowed" in p.stderr
    assert network_guard == []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def serve_dir(path: Path) -> Any:
    """A plain http server for `path` on a free loopback port (a context manager giving its URL)."""
    from contextlib import contextmanager

    @contextmanager
    def cm() -> Iterator[str]:
        handler = lambda *a, **kw: _Quiet(*a, directory=str(path), **kw)  # noqa: E731
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield f"http://127.0.0.1:{srv.server_address[1]}"
        finally:
            srv.shutdown()
            srv.server_close()
            t.join()

    return cm()


def test_search_and_distribution_inspect(make_engine: Any, registry: Registry, tmp_path: Path,
                                         network_guard: list[str]) -> None:
    bb = busybox(tmp_path)
    for repo in ("library/busybox", "tools/busybox", "other/thing"):
        registry.push(repo, "latest", bb)
    e: Engine = make_engine(RegistrySettings(mirrors=[registry.url], default_registry=""))
    p = e.docker("search", "--format", "{{.Name}}", f"{registry.host}/busybox")
    assert p.returncode == 0, p.stderr
    assert sorted(lines(p)) == ["library/busybox", "tools/busybox"]
    assert len(e.client().api.search(f"{registry.host}/busybox", limit=1)) == 1
    # docker.io disabled: a short term is searched in the mirrors
    assert sorted(x["name"] for x in e.client().api.search("thing")) == ["other/thing"]
    with pytest.raises(docker.errors.APIError) as exc:
        e.client().api.search("x", limit=0)
    assert "limit 0 is outside the range of [1, 100]" in str(exc.value)
    data = e.client().images.get_registry_data(f"{registry.host}/tools/busybox")
    assert data.id == bb.digest and data.has_platform("linux/amd64") and not data.has_platform("linux/arm64")
    data = e.client().images.get_registry_data("busybox")  # through the mirror
    assert data.id == bb.digest
    with pytest.raises(docker.errors.NotFound):
        e.client().images.get_registry_data(f"{registry.host}/nosuch")
    assert network_guard == []
