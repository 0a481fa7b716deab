"""The distribution API of `berth registry serve`, request by request, against a real server process.

Each error case checks the spec's status and code, and that nothing changed afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading

import httpx
import pytest

from tests.registry.helpers import RegistryProcess

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def sha(data: bytes, alg: str = "sha256") -> str:
    return f"{alg}:{hashlib.new(alg, data).hexdigest()}"


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


def push_blob(http: httpx.Client, repo: str, data: bytes) -> str:
    d = sha(data)
    r = http.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    r = http.put(r.headers["location"], params={"digest": d}, content=data)
    assert r.status_code == 201, r.text
    return d


def image(http: httpx.Client, repo: str, layer: bytes = b"layer",
          config: bytes = b'{"os":"linux"}') -> tuple[bytes, str]:
    ld, cd = push_blob(http, repo, layer), push_blob(http, repo, config)
    m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                               "size": len(config)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld,
                                "size": len(layer)}]}).encode()
    return m, sha(m)


def test_ping_answers_with_api_version(http: httpx.Client) -> None:
    r = http.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_monolithic_post_put_then_get_head_range(http: httpx.Client) -> None:
    data = os.urandom(3000)
    d = push_blob(http, "t/mono", data)
    r = http.head(f"/v2/t/mono/blobs/{d}")
    assert r.status_code == 200 and r.headers["content-length"] == "3000" and r.headers["docker-content-digest"] == d
    assert http.get(f"/v2/t/mono/blobs/{d}").content == data
    r = http.get(f"/v2/t/mono/blobs/{d}", headers={"Range": "bytes=500-1499"})
    assert r.status_code == 206 and r.content == data[500:1500]
    assert r.headers["content-range"] == "bytes 500-1499/3000"
    r = http.get(f"/v2/t/mono/blobs/{d}", headers={"Range": "bytes=-500"})
    assert r.status_code == 206 and r.content == data[-500:]
    r = http.get(f"/v2/t/mono/blobs/{d}", headers={"Range": "bytes=2000-5000"})
    assert r.status_code == 206 and r.content == data[2000:]
    for bad in ("bytes=5000-10000", "bytes=500-0", "lines=1-2"):
        r = http.get(f"/v2/t/mono/blobs/{d}", headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == "bytes */3000"


def test_post_with_digest_is_single_request_push(http: httpx.Client) -> None:
    data = b"single request"
    r = http.post("/v2/t/single/blobs/uploads/", params={"digest": sha(data)}, content=data)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/t/single/blobs/{sha(data)}"
    assert http.get(r.headers["location"]).content == data


def test_large_blob_streams_both_ways(http: httpx.Client) -> None:
    data = os.urandom(5 << 20)
    d = push_blob(http, "t/large", data)
    with http.stream("GET", f"/v2/t/large/blobs/{d}") as r:
        assert r.headers["content-length"] == str(len(data))
        got = b"".join(r.iter_bytes())
    assert got == data


def test_chunked_upload_in_order_and_resume_after_416(http: httpx.Client) -> None:
    data = os.urandom(10000)
    r = http.post("/v2/t/chunk/blobs/uploads/")
    loc = r.headers["location"]
    assert r.headers["range"] == "0-0"
    r = http.patch(loc, content=data[:4000],
                   headers={"Content-Range": "0-3999", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["range"] == "0-3999"
    # a chunk that skips ahead is refused and changes nothing
    r = http.patch(loc, content=data[5000:6000], headers={"Content-Range": "5000-5999"})
    assert r.status_code == 416 and code(r) == "BLOB_UPLOAD_INVALID"
    r = http.get(loc)
    assert r.status_code == 204 and r.headers["range"] == "0-3999"
    # a range that disagrees with the body's length is refused too
    r = http.patch(loc, content=data[4000:5000], headers={"Content-Range": "4000-5999"})
    assert r.status_code == 416 and http.get(loc).headers["range"] == "0-3999"
    r = http.patch(loc, content=data[4000:8000], headers={"Content-Range": "4000-7999"})
    assert r.status_code == 202
    r = http.put(loc, params={"digest": sha(data)}, content=data[8000:], headers={"Content-Range": "8000-9999"})
    assert r.status_code == 201
    assert http.get(f"/v2/t/chunk/blobs/{sha(data)}").content == data


def test_streamed_patch_without_content_range(http: httpx.Client) -> None:
    data = os.urandom(70000)
    loc = http.post("/v2/t/stream/blobs/uploads/").headers["location"]

    def gen():  # chunked transfer encoding, as skopeo sends
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]

    r = http.patch(loc, content=gen())
    assert r.status_code == 202 and r.headers["range"] == f"0-{len(data) - 1}"
    r = http.put(r.headers["location"], params={"digest": sha(data)})
    assert r.status_code == 201


def test_bad_digest_never_becomes_a_blob(http: httpx.Client, registry: RegistryProcess) -> None:
    data = b"some bytes"
    wrong = sha(b"other bytes")
    loc = http.post("/v2/t/bad/blobs/uploads/").headers["location"]
    r = http.put(loc, params={"digest": wrong}, content=data)
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    assert http.head(f"/v2/t/bad/blobs/{wrong}").status_code == 404
    assert http.head(f"/v2/t/bad/blobs/{sha(data)}").status_code == 404
    assert http.get(loc).status_code == 404  # the upload is gone too
    r = http.post("/v2/t/bad/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    for bad in ("sha256:xyz", "md5:abc", "sha256:" + "a" * 63):
        r = http.put(http.post("/v2/t/bad/blobs/uploads/").headers["location"], params={"digest": bad}, content=data)
        assert r.status_code == 400 and code(r) == "DIGEST_INVALID", bad
    h = sha(data)[7:]
    assert not os.path.exists(os.path.join(registry.root, "blobs", "sha256", h[:2], h))


def test_sha512_blob(http: httpx.Client) -> None:
    data = b"sha512 content"
    d = sha(data, "sha512")
    loc = http.post("/v2/t/s512/blobs/uploads/").headers["location"]
    r = http.put(loc, params={"digest": d}, content=data)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == d
    assert http.get(f"/v2/t/s512/blobs/{d}").content == data


def test_cancel_and_unknown_upload(http: httpx.Client) -> None:
    loc = http.post("/v2/t/cancel/blobs/uploads/").headers["location"]
    http.patch(loc, content=b"partial")
    assert http.delete(loc).status_code == 204
    r = http.patch(loc, content=b"more")
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = http.get("/v2/t/cancel/blobs/uploads/" + "0" * 32)
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"
    # an upload belongs to the repository it was started in
    loc = http.post("/v2/t/cancel/blobs/uploads/").headers["location"]
    r = http.get(loc.replace("/t/cancel/", "/t/other/"))
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_interrupted_upload_keeps_received_bytes_but_makes_no_blob(http: httpx.Client,
                                                                    registry: RegistryProcess) -> None:
    data = os.urandom(200000)
    loc = http.post("/v2/t/cut/blobs/uploads/").headers["location"]
    host, port = registry.host.split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode() + data[:50000])
    s.close()  # the client dies mid-body

    def received() -> int:
        return int(http.get(loc).headers["range"].split("-")[1]) + 1

    from tests.registry.helpers import wait_until
    assert wait_until(lambda: received() == 50000)
    assert http.head(f"/v2/t/cut/blobs/{sha(data)}").status_code == 404
    r = http.patch(loc, content=data[50000:], headers={"Content-Range": f"50000-{len(data) - 1}"})
    assert r.status_code == 202
    assert http.put(loc, params={"digest": sha(data)}).status_code == 201
    assert http.get(f"/v2/t/cut/blobs/{sha(data)}").content == data


def test_concurrent_pushes_of_the_same_blob(http: httpx.Client, registry: RegistryProcess) -> None:
    data = os.urandom(1 << 20)
    d = sha(data)
    results: list[int] = []

    def push(repo: str) -> None:
        with httpx.Client(base_url=registry.url, timeout=30) as c:
            loc = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            for i in range(0, len(data), 65536):
                c.patch(loc, content=data[i:i + 65536], headers={"Content-Range": f"{i}-{i + 65535}"})
            results.append(c.put(loc, params={"digest": d}).status_code)

    threads = [threading.Thread(target=push, args=(f"t/conc{i % 2}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 6
    for repo in ("t/conc0", "t/conc1"):
        assert http.get(f"/v2/{repo}/blobs/{d}").content == data
    up = os.path.join(registry.root, "_uploads")
    for u in os.listdir(up):
        with open(os.path.join(up, u, "repo")) as f:
            assert not f.read().startswith("t/conc")


def test_manifest_put_get_by_tag_and_digest(http: httpx.Client) -> None:
    m, d = image(http, "t/man")
    r = http.put("/v2/t/man/manifests/v1", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == d and r.headers["location"] == f"/v2/t/man/manifests/{d}"
    for ref in ("v1", d):
        r = http.get(f"/v2/t/man/manifests/{ref}",
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        assert r.status_code == 200 and r.content == m  # stored bytes and type, whatever Accept says
        assert r.headers["content-type"] == OCI_MANIFEST and r.headers["docker-content-digest"] == d
        r = http.head(f"/v2/t/man/manifests/{ref}")
        assert r.status_code == 200 and r.headers["content-length"] == str(len(m))
    # the digest form must match the body
    r = http.put(f"/v2/t/man/manifests/{sha(b'x')}", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    r = http.put("/v2/t/man/manifests/sha256:baddigeststring", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"


def test_bad_manifests_are_refused_and_change_nothing(http: httpx.Client) -> None:
    m, _ = image(http, "t/badman")
    doc = json.loads(m)
    missing = dict(doc, layers=[dict(doc["layers"][0], digest=sha(b"not pushed"))])
    cases = [
        (b"{not json", OCI_MANIFEST, 400, "MANIFEST_INVALID"),
        (json.dumps(dict(doc, schemaVersion=1)).encode(), OCI_MANIFEST, 400, "MANIFEST_INVALID"),
        (m, OCI_INDEX, 400, "MANIFEST_INVALID"),  # Content-Type disagrees with mediaType
        (json.dumps(dict(doc, config={"mediaType": "x"})).encode(), OCI_MANIFEST, 400, "MANIFEST_INVALID"),
        (json.dumps(missing).encode(), OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha(b"nope"), "size": 4}]}).encode(), OCI_INDEX, 400,
         "MANIFEST_BLOB_UNKNOWN"),
        (b" " * (4 << 20) + m, OCI_MANIFEST, 413, "SIZE_INVALID"),
    ]
    for body, ct, status, want in cases:
        r = http.put("/v2/t/badman/manifests/bad", content=body, headers={"Content-Type": ct})
        assert (r.status_code, code(r)) == (status, want), (want, r.text)
    r = http.get("/v2/t/badman/manifests/bad")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    assert http.get("/v2/t/badman/tags/list").json()["tags"] == []
    r = http.put("/v2/t/badman/manifests/bad!tag", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and code(r) == "TAG_INVALID"


def test_unknown_and_invalid_names(http: httpx.Client) -> None:
    r = http.get("/v2/t/nothing-here/tags/list")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"
    r = http.get("/v2/t/nothing-here/manifests/latest")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    r = http.get(f"/v2/t/nothing-here/blobs/{sha(b'a')}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"
    r = http.post("/v2/Upper/Case/blobs/uploads/")
    assert r.status_code == 400 and code(r) == "NAME_INVALID"
    r = http.get("/v2/t/x/blobs/notadigest")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"


def test_tags_pagination_and_catalog(http: httpx.Client) -> None:
    m, _ = image(http, "t/tags")
    names = ["b", "a", "c", "d1", "d0"]
    for t in names:
        r = http.put(f"/v2/t/tags/manifests/{t}", content=m, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201
    assert http.get("/v2/t/tags/tags/list").json() == {"name": "t/tags", "tags": sorted(names)}
    r = http.get("/v2/t/tags/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["link"] == '</v2/t/tags/tags/list?n=2&last=b>; rel="next"'
    r = http.get("/v2/t/tags/tags/list", params={"n": 2, "last": "b"})
    assert r.json()["tags"] == ["c", "d0"]
    r = http.get("/v2/t/tags/tags/list", params={"n": 0})
    assert r.json()["tags"] == [] and "link" not in r.headers
    r = http.get("/v2/t/tags/tags/list", params={"last": "d0"})
    assert r.json()["tags"] == ["d1"] and "link" not in r.headers
    cat = http.get("/v2/_catalog").json()["repositories"]
    assert "t/tags" in cat and cat == sorted(cat)
    r = http.get("/v2/_catalog", params={"n": 1})
    assert len(r.json()["repositories"]) == 1 and 'rel="next"' in r.headers["link"]
    r = http.get("/v2/t/tags/tags/list", params={"n": "x"})
    assert r.status_code == 400 and code(r) == "PAGINATION_NUMBER_INVALID"


def test_delete_tag_manifest_and_blob(http: httpx.Client) -> None:
    m, d = image(http, "t/del", layer=b"del-layer")
    for t in ("one", "two"):
        http.put(f"/v2/t/del/manifests/{t}", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert http.delete("/v2/t/del/manifests/one").status_code == 202
    assert http.get("/v2/t/del/tags/list").json()["tags"] == ["two"]
    assert http.get(f"/v2/t/del/manifests/{d}").status_code == 200
    assert http.delete(f"/v2/t/del/manifests/{d}").status_code == 202
    assert http.get("/v2/t/del/tags/list").json()["tags"] == []
    r = http.get(f"/v2/t/del/manifests/{d}")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    r = http.delete(f"/v2/t/del/manifests/{d}")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    ld = sha(b"del-layer")
    assert http.delete(f"/v2/t/del/blobs/{ld}").status_code == 202
    r = http.get(f"/v2/t/del/blobs/{ld}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"
    assert http.delete(f"/v2/t/del/blobs/{ld}").status_code == 404


def test_cross_repository_mount(http: httpx.Client) -> None:
    data = b"mount me"
    d = push_blob(http, "t/src", data)
    assert http.head(f"/v2/t/dst/blobs/{d}").status_code == 404
    r = http.post("/v2/t/dst/blobs/uploads/", params={"mount": d, "from": "t/src"})
    assert r.status_code == 201 and r.headers["location"] == f"/v2/t/dst/blobs/{d}"
    assert http.get(f"/v2/t/dst/blobs/{d}").content == data
    # unknown in the source: a normal upload starts instead
    r = http.post("/v2/t/dst/blobs/uploads/", params={"mount": sha(b"absent"), "from": "t/src"})
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["location"]
    # anonymous mount (no `from`) of content the registry holds: allowed without auth
    r = http.post("/v2/t/anon/blobs/uploads/", params={"mount": d})
    assert r.status_code == 201


def test_referrers(http: httpx.Client) -> None:
    m, subject = image(http, "t/ref")
    http.put("/v2/t/ref/manifests/img", content=m, headers={"Content-Type": OCI_MANIFEST})
    assert http.get(f"/v2/t/ref/referrers/{subject}").json() == {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    push_blob(http, "t/ref", EMPTY)
    arts = []
    for at in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        art = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
                          "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST,
                                     "size": 2},
                          "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(m)},
                          "annotations": {"k": at}}).encode()
        r = http.put(f"/v2/t/ref/manifests/{sha(art)}", content=art, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201 and r.headers["oci-subject"] == subject
        arts.append((at, sha(art), len(art)))
    r = http.get(f"/v2/t/ref/referrers/{subject}")
    assert r.headers["content-type"] == OCI_INDEX
    got = sorted((e["artifactType"], e["digest"], e["size"]) for e in r.json()["manifests"])
    assert got == sorted(arts)
    r = http.get(f"/v2/t/ref/referrers/{subject}", params={"artifactType": arts[0][0]})
    assert [e["digest"] for e in r.json()["manifests"]] == [arts[0][1]]
    assert r.headers["oci-filters-applied"] == "artifactType"
    http.delete(f"/v2/t/ref/manifests/{arts[0][1]}")
    assert [e["digest"] for e in http.get(f"/v2/t/ref/referrers/{subject}").json()["manifests"]] == [arts[1][1]]


def test_search_answers_from_catalog(http: httpx.Client) -> None:
    m, _ = image(http, "search/findme-please")
    http.put("/v2/search/findme-please/manifests/1", content=m, headers={"Content-Type": OCI_MANIFEST})
    r = http.get("/v1/search", params={"q": "findme"})
    doc = r.json()
    assert r.status_code == 200 and doc["query"] == "findme"
    assert [x["name"] for x in doc["results"]] == ["search/findme-please"]
    assert http.get("/v1/search", params={"q": "nomatch-zzz"}).json()["num_results"] == 0


def test_upload_survives_server_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests import leaks

    data = os.urandom(100000)
    reg = RegistryProcess(str(tmp_path / "root")).start()
    assert reg.proc is not None
    with httpx.Client(base_url=reg.url) as c:
        loc = c.post("/v2/t/restart/blobs/uploads/").headers["location"]
        c.patch(loc, content=data[:60000], headers={"Content-Range": "0-59999"})
    reg.stop()
    reg = RegistryProcess(str(tmp_path / "root")).start()
    try:
        with httpx.Client(base_url=reg.url) as c:
            assert c.get(loc).headers["range"] == "0-59999"
            c.patch(loc, content=data[60000:], headers={"Content-Range": f"60000-{len(data) - 1}"})
            assert c.put(loc, params={"digest": sha(data)}).status_code == 201
            assert c.get(f"/v2/t/restart/blobs/{sha(data)}").content == data
    finally:
        reg.stop()
    assert leaks.TOKEN  # the leak checker confirms both processes are gone


@pytest.mark.parametrize("path", ["/v2/t/x/nope", "/v3/"])
def test_unknown_routes_use_error_body(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 404 and "errors" in r.json()


def test_two_chunks_racing_for_one_offset(http: httpx.Client, registry: RegistryProcess) -> None:
    """Two clients PATCH the same upload at offset 0 at once: one wins, the other gets 416, no mixing."""
    a, b = os.urandom(4 << 20), os.urandom(4 << 20)
    loc = http.post("/v2/t/race/blobs/uploads/").headers["location"]
    status: dict[bytes, int] = {}
    barrier = threading.Barrier(2)

    def send(data: bytes) -> None:
        with httpx.Client(base_url=registry.url, timeout=30) as c:
            barrier.wait()
            status[data] = c.patch(loc, content=data, headers={"Content-Range": f"0-{len(data) - 1}"}).status_code

    threads = [threading.Thread(target=send, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status.values()) == [202, 416]
    winner = a if status[a] == 202 else b
    assert http.get(loc).headers["range"] == f"0-{len(winner) - 1}"
    assert http.put(loc, params={"digest": sha(winner)}).status_code == 201
