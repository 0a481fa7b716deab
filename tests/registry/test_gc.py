"""Garbage collection while serving: unreferenced blobs go, referenced and recently touched ones stay."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import httpx

from berth.oci.digest import Digest
from berth.registry.server import gc
from berth.registry.server.storage import Storage
from tests.registry.conftest import start_registry
from tests.registry.helpers import wait_until

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(c: httpx.Client, repo: str, data: bytes) -> str:
    loc = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert c.put(loc, params={"digest": sha(data)}, content=data).status_code == 201
    return sha(data)


def age(root: str, digest: str, seconds: float = 7200) -> None:
    h = digest[7:]
    path = os.path.join(root, "blobs", "sha256", h[:2], h)
    t = time.time() - seconds
    os.utime(path, (t, t))


def exists(root: str, digest: str) -> bool:
    h = digest[7:]
    return os.path.exists(os.path.join(root, "blobs", "sha256", h[:2], h))


def test_gc_while_serving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = str(tmp_path / "root")
    it = start_registry(root, "--gc-interval", "0.3", "--gc-grace", "30")
    reg = next(it)
    try:
        with httpx.Client(base_url=reg.url) as c:
            layer, config = push(c, "gc/app", b"layer bytes"), push(c, "gc/app", b'{"os":"linux"}')
            m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                       "size": 14},
                            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                                        "size": 11}]}).encode()
            assert c.put("/v2/gc/app/manifests/1", content=m, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
            orphan, touched, fresh = (push(c, "gc/app", b"orphan"), push(c, "gc/app", b"touched"),
                                      push(c, "gc/app", b"fresh"))
            for d in (layer, config, sha(m), orphan, touched):
                age(root, d)
            # a HEAD (what a client does before reusing a blob) makes it fresh again
            assert c.head(f"/v2/gc/app/blobs/{touched}").status_code == 200
            assert wait_until(lambda: not exists(root, orphan), timeout=10)
            r = c.get(f"/v2/gc/app/blobs/{orphan}")
            assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
            assert not os.path.exists(os.path.join(root, "repos", "gc", "app", "_layers", "sha256", orphan[7:]))
            for d in (touched, fresh, layer, config):
                assert c.get(f"/v2/gc/app/blobs/{d}").status_code == 200
            assert c.get("/v2/gc/app/manifests/1").content == m
            # deleting the manifest makes its blobs collectable
            assert c.delete(f"/v2/gc/app/manifests/{sha(m)}").status_code == 202
            for d in (layer, config):
                age(root, d)
            assert wait_until(lambda: not exists(root, layer) and not exists(root, config), timeout=10)
            assert c.get(f"/v2/gc/app/blobs/{touched}").status_code == 200
    finally:
        next(it, None)


def test_sweep_keeps_a_blob_referenced_after_mark(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The race with a push: a blob that mark saw unreferenced but a client touched before sweep stays."""
    st = Storage(str(tmp_path))
    blobs = {}
    for data in (b"a", b"b"):
        d = Digest.parse(sha(data))
        st.write_blob(data, d)
        st.link_blob("r", d)
        t = time.time() - 7200
        os.utime(st.blob_path(d), (t, t))
        blobs[data] = d
    start = time.time() - 60
    live = gc.mark(st)
    assert not live
    st.touch_blob(blobs[b"b"])  # what HEAD / manifest PUT do between mark and sweep
    stats = asyncio.run(gc.sweep(st, live, start))
    assert stats.deleted == 1 and stats.links == 1
    assert st.blob_size(blobs[b"a"]) is None and st.blob_in_repo("r", blobs[b"a"]) is None
    assert st.blob_in_repo("r", blobs[b"b"]) == 1


def test_abandoned_uploads_are_purged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from berth.registry.server.uploads import Uploads

    st = Storage(str(tmp_path))
    ups = Uploads(st)

    async def go() -> None:
        old, new = ups.start("r"), ups.start("r")
        t = time.time() - 2 * gc.UPLOAD_MAX_AGE
        for p in os.listdir(st.upload_dir(old.uuid)):
            os.utime(os.path.join(st.upload_dir(old.uuid), p), (t, t))
        stats = await gc.collect(st, ups, grace=60)
        assert stats.uploads == 1
        assert os.listdir(st.uploads_dir) == [new.uuid]

    asyncio.run(go())
