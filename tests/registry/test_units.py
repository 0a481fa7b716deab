"""Fast unit tests of the registry's pure logic (the real-process tests prove the behaviour end to end)."""

from __future__ import annotations

import json
import os
import time

import bcrypt
import pytest

from berth.errors import InvalidArgument
from berth.oci.digest import Digest
from berth.registry import errors as rerr
from berth.registry.client.client import _next_link, is_loopback_host, parse_challenge
from berth.registry.client.platform import Platform, choose
from berth.registry.names import valid_name, valid_tag
from berth.registry.server import manifests as mf
from berth.registry.server.app import _parse_range
from berth.registry.server.auth import (
    Access,
    Acl,
    Authenticator,
    Htpasswd,
    TokenSigner,
    basic_credentials,
    parse_scopes,
)
from berth.registry.server.uploads import parse_content_range

D = "sha256:" + "a" * 64


def test_names_and_tags() -> None:
    for ok in ("a", "library/busybox", "a.b_c__d-e---f/g0", "x" * 200):
        assert valid_name(ok), ok
    for bad in ("", "A", "a/", "/a", "a//b", "a__-b", "-a", "a_", "a" * 256, "_catalog"):
        assert not valid_name(bad), bad
    assert valid_tag("v1.0_RC-2") and valid_tag("_x") and valid_tag("a" * 128)
    assert not valid_tag(".x") and not valid_tag("-x") and not valid_tag("a" * 129) and not valid_tag("a:b")
    for bad in ("v1\n", "é", "a/b"):
        assert not valid_tag(bad), bad
    assert not valid_name("a\n") and not valid_name("é")


def test_content_range() -> None:
    assert parse_content_range("0-99") == (0, 99)
    assert parse_content_range("bytes 100-199/*") == (100, 199)
    assert parse_content_range("bytes=5-5") == (5, 5)
    for bad in ("", "x-y", "10-5", "-5", "5-"):
        with pytest.raises(rerr.RangeInvalid):
            parse_content_range(bad)


def test_range_header() -> None:
    assert _parse_range("bytes=0-0", 10) == (0, 0)
    assert _parse_range("bytes=5-", 10) == (5, 9)
    assert _parse_range("bytes=-3", 10) == (7, 9)
    assert _parse_range("bytes=-30", 10) == (0, 9)
    assert _parse_range("bytes=8-100", 10) == (8, 9)
    for bad in ("bytes=10-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=1-2,4-5", "items=1-2"):
        with pytest.raises(rerr.RangeInvalid) as e:
            _parse_range(bad, 10)
        assert e.value.status == 416 and ("Content-Range", "bytes */10") in e.value.headers


def _m(**kw: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D, "size": 3}]}
    doc.update(kw)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_manifest_parse_references_and_subject() -> None:
    m = mf.parse(_m(), mf.OCI_MANIFEST)
    assert m.media_type == mf.OCI_MANIFEST and [b.size for b in m.blobs] == [2, 3] and not m.children
    assert m.artifact_type == "application/vnd.oci.image.config.v1+json"
    foreign = {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": D, "size": 1,
               "urls": ["https://example.com/x"]}
    m = mf.parse(_m(layers=[foreign], subject={"mediaType": mf.OCI_MANIFEST, "digest": D, "size": 9},
                    artifactType="a/b", annotations={"k": "v"}), None)
    assert m.blobs[1].foreign and m.subject is not None and m.subject.digest == Digest.parse(D)
    assert m.referrer_descriptor(Digest.parse(D), 5) == {"mediaType": mf.OCI_MANIFEST, "digest": D, "size": 5,
                                                         "artifactType": "a/b", "annotations": {"k": "v"}}
    idx = mf.parse(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": D,
                                                                   "size": 1}]}).encode(), mf.DOCKER_LIST)
    assert idx.media_type == mf.DOCKER_LIST and len(idx.children) == 1
    docker = mf.parse(_m(mediaType=mf.DOCKER_MANIFEST), mf.DOCKER_MANIFEST)
    assert docker.media_type == mf.DOCKER_MANIFEST and docker.artifact_type is None
    # no Content-Type: the mediaType field decides
    assert mf.parse(_m(), "application/json").media_type == mf.OCI_MANIFEST


@pytest.mark.parametrize("body,ct", [
    (b"[]", mf.OCI_MANIFEST),
    (b"\xff", mf.OCI_MANIFEST),
    (_m(schemaVersion=1), mf.OCI_MANIFEST),
    (_m(), mf.DOCKER_MANIFEST),
    (_m(config=None), mf.OCI_MANIFEST),
    (_m(layers={"a": 1}), mf.OCI_MANIFEST),
    (_m(layers=[{"mediaType": "x", "digest": "sha256:short", "size": 1}]), mf.OCI_MANIFEST),
    (_m(layers=[{"mediaType": "x", "digest": D, "size": -1}]), mf.OCI_MANIFEST),
    (_m(layers=[{"mediaType": "x", "digest": D, "size": True}]), mf.OCI_MANIFEST),
    (_m(mediaType=5), mf.OCI_MANIFEST),
    (_m(), mf.DOCKER_SCHEMA1[1]),
])
def test_manifest_parse_refusals(body: bytes, ct: str) -> None:
    with pytest.raises(rerr.ManifestInvalid):
        mf.parse(body, ct)


def test_scopes_and_acl() -> None:
    s = parse_scopes(["repository:a/b:pull,push registry:catalog:*", "repository(plugin):c:pull", "junk", "x:y"])
    assert s == [Access("repository", "a/b", frozenset({"pull", "push"})),
                 Access("registry", "catalog", frozenset({"*"})),
                 Access("repository", "c", frozenset({"pull"}))]
    acl = Acl([("alice", "*", frozenset({"*"})), ("bob", "team/*", frozenset({"pull"})),
               ("*", "public/*", frozenset({"pull"})), ("+", "catalog", frozenset({"*"}))])
    pp = frozenset({"pull", "push"})
    assert acl.allowed("alice", Access("repository", "x/y", pp)) == pp
    assert acl.allowed("bob", Access("repository", "team/a", pp)) == {"pull"}
    assert acl.allowed("bob", Access("repository", "teams/a", pp)) == set()
    assert acl.allowed(None, Access("repository", "public/a", pp)) == {"pull"}
    assert acl.allowed(None, Access("registry", "catalog", frozenset({"*"}))) == set()
    assert acl.allowed("bob", Access("registry", "catalog", frozenset({"*"}))) == {"*"}
    assert Acl().allowed(None, Access("repository", "a", pp)) == set()  # default: authenticated users only
    assert Acl().allowed("x", Access("repository", "a", pp)) == pp


def test_tokens() -> None:
    s = TokenSigner(b"k" * 32, "iss", "svc", ttl=60)
    tok, _, ttl = s.issue("alice", [Access("repository", "a", frozenset({"pull"}))])
    assert ttl == 60
    claims = s.verify(tok)
    assert claims["sub"] == "alice" and claims["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]
    for bad in (tok + "x", tok.replace(".", "", 1), "a.b.c", "",
                TokenSigner(b"other", "iss", "svc").issue("alice", [])[0],
                TokenSigner(b"k" * 32, "iss", "other-service").issue("alice", [])[0]):
        with pytest.raises(rerr.Unauthorized):
            s.verify(bad)
    expired = TokenSigner(b"k" * 32, "iss", "svc", ttl=60)
    expired.ttl = -10
    with pytest.raises(rerr.Unauthorized):
        s.verify(expired.issue("alice", [])[0])


def test_htpasswd_bcrypt_cache_and_reload(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "htpasswd"
    path.write_text(f"u:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n# comment\nplain:pw\n")
    h = Htpasswd(str(path))
    assert h.check("u", "pw") and h.check("u", "pw") and not h.check("u", "nope")
    assert not h.check("plain", "pw") and not h.check("nobody", "pw")
    path.write_text(f"u:{bcrypt.hashpw(b'new', bcrypt.gensalt(rounds=4)).decode()}\n")
    t = time.time() + 5
    os.utime(path, (t, t))
    assert not h.check("u", "pw") and h.check("u", "new")  # the cache does not outlive a password change


def test_basic_credentials_and_challenges() -> None:
    assert basic_credentials("Basic dTpwOnc=") == ("u", "p:w")
    assert basic_credentials("basic dTpwOnc=") == ("u", "p:w")
    for bad in (None, "", "Bearer x", "Basic ***", "Basic dXNlcg=="):
        assert basic_credentials(bad) is None
    auth = Authenticator("token", signer=TokenSigner(b"k", "i", "svc"), realm="https://r/token")
    with pytest.raises(rerr.Unauthorized) as e:
        auth.authenticate(None, [Access("repository", "a/b", frozenset({"pull", "push"}))])
    (name, value), = e.value.headers
    assert name == "WWW-Authenticate"
    scheme, params = parse_challenge(value)
    assert scheme == "bearer" and params == {"realm": "https://r/token", "service": "svc",
                                             "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x y"') == ("basic", {"realm": "x y"})
    assert parse_challenge('Bearer realm=https://a/t,service="s",error="insufficient_scope"')[1]["error"] == \
        "insufficient_scope"


def test_platforms_and_helpers() -> None:
    assert Platform.parse("linux/arm64") == Platform("linux", "arm64")
    assert Platform.parse("amd64") == Platform("linux", "amd64")
    assert str(Platform.parse("linux/arm/v6")) == "linux/arm/v6"
    with pytest.raises(InvalidArgument):
        Platform.parse("linux/")
    entries = [{"digest": "att", "annotations": {}},
               {"digest": "v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
               {"digest": "v6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
               {"digest": "a64", "platform": {"os": "linux", "architecture": "arm64"}},
               {"digest": "amd", "platform": {"os": "linux", "architecture": "amd64"}}]
    pick = {str(p): (choose(entries, Platform.parse(p)) or {}).get("digest") for p in
            ("linux/amd64", "linux/arm", "linux/arm/v6", "linux/arm64/v8", "windows/amd64")}
    assert pick == {"linux/amd64": "amd", "linux/arm": "v7", "linux/arm/v6": "v6", "linux/arm64/v8": "a64",
                    "windows/amd64": None}
    assert is_loopback_host("127.0.0.1:5000") and is_loopback_host("localhost") and is_loopback_host("[::1]:80")
    assert not is_loopback_host("registry.example.com:5000") and not is_loopback_host("10.0.0.1")
    assert _next_link('</v2/x/tags/list?n=2&last=b>; rel="next"') == "/v2/x/tags/list?n=2&last=b"
    assert _next_link(None) is None and _next_link('<x>; rel="prev"') is None


def test_error_bodies_round_trip() -> None:
    e = rerr.from_body(404, json.dumps(rerr.BlobUnknown(detail={"digest": D}).body()).encode())
    assert isinstance(e, rerr.BlobUnknown) and e.status == 404 and e.detail == {"digest": D}
    e = rerr.from_body(401, b"nope")
    assert isinstance(e, rerr.Unauthorized) and e.status == 401
    e = rerr.from_body(502, b"bad gateway")
    assert e.status == 502 and "bad gateway" in str(e)
    assert rerr.DigestInvalid().status == 400 and rerr.Unsupported().status == 405 and rerr.Denied().status == 403


def test_storage_adopts_content_store_files_by_hard_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    from berth.registry.server.storage import Storage

    src = tmp_path / "store-blob"
    src.write_bytes(b"shared content")
    d = Digest("sha256", hashlib.sha256(b"shared content").hexdigest())
    st = Storage(str(tmp_path / "reg"))
    assert st.adopt_file(str(src), d)
    assert os.stat(st.blob_path(d)).st_ino == os.stat(src).st_ino and st.blob_size(d) == 14
    assert not st.adopt_file(str(src), d)  # already there
