"""Real clients against `berth registry serve`: skopeo (copy, inspect), the oras Python client, and Debian's
docker-registry (distribution 2.8.2) as a peer holding the same images byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import leaks
from tests.registry.helpers import RegistryProcess, layout, manifest_of, run

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


def test_skopeo_round_trip_all_busybox_variants(registry: RegistryProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for variant in ("latest-musl", "latest-glibc", "latest-uclibc", "latest-1-musl"):
        src = layout(variant, str(tmp_path / variant))
        _, raw, digest = manifest_of(src)
        ref = f"docker://{registry.host}/library/busybox:{variant}"
        p = run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}", ref])
        assert p.returncode == 0, p.stderr
        p = run(["skopeo", "inspect", "--tls-verify=false", "--raw", ref])
        assert p.returncode == 0 and p.stdout.encode() == raw  # the bytes pushed, unchanged
        p = run(["skopeo", "inspect", "--tls-verify=false", ref])
        info = json.loads(p.stdout)
        assert info["Digest"] == digest and info["Os"] == "linux"
        out = tmp_path / f"pulled-{variant}"
        p = run(["skopeo", "copy", "--src-tls-verify=false", ref, f"oci:{out}:x"])
        assert p.returncode == 0, p.stderr
        assert manifest_of(str(out))[2] == digest
    p = run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/library/busybox"])
    assert sorted(json.loads(p.stdout)["Tags"]) == ["latest-1-musl", "latest-glibc", "latest-musl", "latest-uclibc"]


def test_skopeo_repo_to_repo_copy(registry: RegistryProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = layout("latest-musl", str(tmp_path / "m"))
    a, b = f"docker://{registry.host}/mount/a:1", f"docker://{registry.host}/mount/b:1"
    assert run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}", a]).returncode == 0
    p = run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", a, b])
    assert p.returncode == 0, p.stderr
    layer = manifest_of(src)[0]["layers"][0]["digest"]
    assert httpx.head(f"{registry.url}/v2/mount/b/blobs/{layer}").status_code == 200


def test_skopeo_multi_arch_all(registry: RegistryProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An index pushed with --all, and a pull that picks one platform from it."""
    musl, glibc = layout("latest-musl", str(tmp_path / "m")), layout("latest-glibc", str(tmp_path / "g"))
    idx = tmp_path / "idx"
    shutil.copytree(musl, idx)
    for f in os.listdir(os.path.join(glibc, "blobs", "sha256")):
        shutil.copyfile(os.path.join(glibc, "blobs", "sha256", f), idx / "blobs" / "sha256" / f)
    entries = [json.loads(Path(p, "index.json").read_text())["manifests"][0] for p in (musl, glibc)]
    entries[1]["platform"] = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    for e in entries:
        e.pop("annotations", None)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode()
    h = hashlib.sha256(index).hexdigest()
    (idx / "blobs" / "sha256" / h).write_bytes(index)
    (idx / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{h}", "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    ref = f"docker://{registry.host}/multi/busybox:latest"
    p = run(["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{idx}:multi", ref])
    assert p.returncode == 0, p.stderr
    p = run(["skopeo", "inspect", "--tls-verify=false", "--raw", ref])
    assert json.loads(p.stdout)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    p = run(["skopeo", "--override-arch", "arm64", "copy", "--src-tls-verify=false", ref, f"oci:{tmp_path}/arm:x"])
    assert p.returncode == 0, p.stderr
    assert manifest_of(f"{tmp_path}/arm")[2] == entries[1]["digest"]


def test_oras_python_client_push_and_pull(registry: RegistryProcess, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import oras.client

    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifact.txt").write_text("hello from oras\n")
    (tmp_path / "big.bin").write_bytes(os.urandom(300000))
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    target = f"{registry.host}/oras/artifact:v1"
    r = client.push(target=target, files=["artifact.txt", "big.bin"])
    assert r.status_code == 201
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert sorted(os.path.basename(f) for f in files) == ["artifact.txt", "big.bin"]
    assert (out / "artifact.txt").read_text() == "hello from oras\n"
    assert (out / "big.bin").read_bytes() == (tmp_path / "big.bin").read_bytes()
    # chunked push, as oras does it with do_chunked
    r = client.push(target=f"{registry.host}/oras/chunked:v1", files=["big.bin"], do_chunked=True, chunk_size=65536)
    assert r.status_code == 201
    assert "v1" in client.get_tags(f"{registry.host}/oras/chunked")


@pytest.fixture(scope="module")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry (distribution 2.8.2) on a free loopback port."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry not installed")
    d = tmp_path_factory.mktemp("docker-registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "config.yml").write_text(f"version: 0.1\nlog: {{level: error}}\n"
                                  f"storage: {{filesystem: {{rootdirectory: {d}/data}}, delete: {{enabled: true}}}}\n"
                                  f"http: {{addr: 127.0.0.1:{port}}}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    leaks.allow_pid(proc.pid)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        leaks.disallow_pid(proc.pid)


def test_images_travel_between_berth_and_docker_registry(registry: RegistryProcess, docker_registry: str,
                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = layout("latest-glibc", str(tmp_path / "g"))
    digest = manifest_of(src)[2]
    ours, peer = f"docker://{registry.host}/peer/bb:1", f"docker://{docker_registry}/peer/bb:1"
    back = f"docker://{registry.host}/peer/back:1"
    tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
    assert run(["skopeo", "copy", *tls, f"oci:{src}", ours]).returncode == 0
    p = run(["skopeo", "copy", *tls, ours, peer])
    assert p.returncode == 0, p.stderr
    p = run(["skopeo", "copy", *tls, peer, back])
    assert p.returncode == 0, p.stderr
    for ref in (ours, peer, back):
        p = run(["skopeo", "inspect", "--tls-verify=false", ref])
        assert json.loads(p.stdout)["Digest"] == digest
