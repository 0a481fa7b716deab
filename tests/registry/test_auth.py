"""Auth against a real server: htpasswd basic auth, the token flow with per-repository scopes, TLS.

Wrong credentials and missing scopes get the spec's error (UNAUTHORIZED with a challenge, DENIED) and
change nothing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess

import httpx
import pytest

from tests.registry.conftest import start_registry
from tests.registry.helpers import RegistryProcess, layout, run

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user: str, pw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


def test_basic_auth_challenge_and_credentials(basic_reg: RegistryProcess) -> None:
    with httpx.Client(base_url=basic_reg.url) as c:
        r = c.get("/v2/")
        assert r.status_code == 401 and code(r) == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        for bad in (basic("alice", "nope"), basic("mallory", "x"),
                    basic("carol", "plaintext-style-entries-are-refused"),
                    {"Authorization": "Basic !!!"}):
            assert c.get("/v2/", headers=bad).status_code == 401
        assert c.get("/v2/", headers=basic("alice", "wonderland")).status_code == 200
        # pushing with wrong credentials changes nothing
        r = c.post("/v2/team/app/blobs/uploads/", headers=basic("alice", "bad"))
        assert r.status_code == 401
        assert c.get("/v2/_catalog", headers=basic("alice", "wonderland")).json()["repositories"] == []


def test_basic_auth_acl_denies_missing_actions(basic_reg: RegistryProcess) -> None:
    with httpx.Client(base_url=basic_reg.url) as c:
        a, b = basic("alice", "wonderland"), basic("bob", "builder")
        loc = c.post("/v2/team/app/blobs/uploads/", headers=a).headers["location"]
        assert c.put(loc, params={"digest": sha(b"x")}, content=b"x", headers=a).status_code == 201
        assert c.get(f"/v2/team/app/blobs/{sha(b'x')}", headers=b).status_code == 200   # bob may pull team/*
        r = c.post("/v2/team/app/blobs/uploads/", headers=b)                           # but not push
        assert r.status_code == 403 and code(r) == "DENIED"
        r = c.delete(f"/v2/team/app/blobs/{sha(b'x')}", headers=b)
        assert r.status_code == 403
        assert c.get(f"/v2/team/app/blobs/{sha(b'x')}", headers=a).status_code == 200  # unchanged
        assert c.get("/v2/_catalog", headers=b).status_code == 403


def _token(c: httpx.Client, scope: str, auth: dict[str, str] | None = None) -> str:
    r = c.get("/token", params={"service": "test-registry", "scope": scope}, headers=auth or {})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["expires_in"] >= 60 and doc["token"] == doc["access_token"]
    return str(doc["token"])


def test_token_flow_challenge_scopes_and_intersection(token_reg: RegistryProcess) -> None:
    with httpx.Client(base_url=token_reg.url) as c:
        r = c.get("/v2/team/app/manifests/latest")
        assert r.status_code == 401 and code(r) == "UNAUTHORIZED"
        ch = r.headers["www-authenticate"]
        assert ch.startswith("Bearer ") and f'realm="{token_reg.url}/token"' in ch
        assert 'service="test-registry"' in ch and 'scope="repository:team/app:pull"' in ch
        # wrong password at the token endpoint
        r = c.get("/token", params={"scope": "repository:team/app:pull"}, headers=basic("alice", "x"))
        assert r.status_code == 401 and code(r) == "UNAUTHORIZED"
        alice = _token(c, "repository:team/app:pull,push", basic("alice", "wonderland"))
        ah = {"Authorization": f"Bearer {alice}"}
        loc = c.post("/v2/team/app/blobs/uploads/", headers=ah).headers["location"]
        assert c.put(loc, params={"digest": sha(b"t")}, content=b"t", headers=ah).status_code == 201
        # bob asks for pull,push and gets the intersection: pull only
        bob = _token(c, "repository:team/app:pull,push", basic("bob", "builder"))
        claims = json.loads(base64.urlsafe_b64decode(bob.split(".")[1] + "=="))
        assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
        bh = {"Authorization": f"Bearer {bob}"}
        assert c.get(f"/v2/team/app/blobs/{sha(b't')}", headers=bh).status_code == 200
        r = c.post("/v2/team/app/blobs/uploads/", headers=bh)
        assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert 'scope="repository:team/app:pull,push"' in r.headers["www-authenticate"]
        # a token for one repository is worth nothing for another
        assert c.get(f"/v2/team/other/blobs/{sha(b't')}", headers=ah).status_code == 401
        # anonymous tokens get what `*` rules give
        anon = {"Authorization": "Bearer " + _token(c, "repository:public/x:pull,push")}
        assert c.get("/v2/public/x/tags/list", headers=anon).status_code == 404  # allowed, just empty
        assert c.post("/v2/public/x/blobs/uploads/", headers=anon).status_code == 401
        # tampered and foreign tokens are refused
        h, p, s = alice.split(".")
        forged = json.loads(base64.urlsafe_b64decode(p + "=="))
        forged["access"][0]["name"] = "team/other"
        p2 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        r = c.get(f"/v2/team/other/blobs/{sha(b't')}", headers={"Authorization": f"Bearer {h}.{p2}.{s}"})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_token_endpoint_oauth2_post(token_reg: RegistryProcess) -> None:
    with httpx.Client(base_url=token_reg.url) as c:
        r = c.post("/token", data={"grant_type": "password", "username": "alice", "password": "wonderland",
                                   "service": "test-registry", "scope": "repository:team/app:pull"})
        assert r.status_code == 200 and r.json()["access_token"]
        r = c.post("/token", data={"grant_type": "password", "username": "alice", "password": "no"})
        assert r.status_code == 401


needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


@needs_skopeo
@pytest.mark.parametrize("mode", ["basic", "token"])
def test_skopeo_with_credentials(mode: str, basic_reg: RegistryProcess, token_reg: RegistryProcess,
                                 tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = basic_reg if mode == "basic" else token_reg
    src = layout("latest-uclibc", str(tmp_path / "bb"))
    dest = f"docker://{reg.host}/team/skopeo-{mode}:1"
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"))
    p = run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong", f"oci:{src}", dest], env=env)
    assert p.returncode != 0 and ("unauthorized" in p.stderr.lower() or "401" in p.stderr)
    p = run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "bob:builder", f"oci:{src}", dest], env=env)
    assert p.returncode != 0  # bob may only pull
    p = run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland", f"oci:{src}", dest],
            env=env)
    assert p.returncode == 0, p.stderr
    p = run(["skopeo", "inspect", "--tls-verify=false", "--creds", "bob:builder", dest], env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Architecture"] == "amd64"


@needs_skopeo
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_with_a_given_certificate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    it = start_registry(str(tmp_path / "root"), "--tls-cert", str(cert), "--tls-key", str(key))
    reg = next(it)
    try:
        assert reg.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=reg.url, verify=ctx) as c:
            assert c.get("/v2/").status_code == 200
        with httpx.Client(base_url=reg.url) as c, pytest.raises(httpx.ConnectError):
            c.get("/v2/")  # not trusted by default
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(cert.read_bytes())
        src = layout("latest-musl", str(tmp_path / "bb"))
        p = run(["skopeo", "copy", "--dest-cert-dir", str(certs), f"oci:{src}", f"docker://{reg.host}/tls/bb:1"])
        assert p.returncode == 0, p.stderr
    finally:
        next(it, None)
