"""`POST /images/create?fromImage=`: berth's images backend pulling from berth's registry server (a real
process on loopback), driven by the real docker CLI 28 and docker-py: moby's exact progress messages,
multi-arch indexes and `--platform`, layers already present, parallel and resumed downloads, digest
verification, moby's errors, mirrors, and a daemon that never contacts docker.io."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from berth.daemon.registries import RegistrySettings
from tests.daemon import test_images_env as env
from tests.daemon.test_images_env import (
    Engine,
    Registry,
    busybox,
    htpasswd,
    lines,
    make_image,
    needs_docker,
    sha,
    tar_of,
)

# fixtures (bound by assignment, so pytest finds them here)
make_engine = env.make_engine
make_proxy = env.make_proxy
registry = env.registry
network_guard = env.network_guard

pytestmark = [pytest.mark.root, needs_docker]


def pull_messages(e: Engine, repo: str, tag: str = "latest", **kw: Any) -> list[dict[str, Any]]:
    """The decoded JSON messages of one pull, as docker-py's low-level client streams them."""
    return list(e.client().api.pull(repo, tag=tag, stream=True, decode=True, **kw))


def top_dir(e: Engine, image: str) -> str:
    rec = e.store.resolve(image)
    return e.store.snapshots.stat(rec.chain[-1]).path


def diff_ids(e: Engine, image: str) -> list[str | None]:
    """The diff_ids of the layers the store unpacked for `image` (as recorded with each snapshot)."""
    rows = [e.store.meta.get_layer(c) for c in e.store.resolve(image).chain]
    return [r.diff_id if r is not None else None for r in rows]


def random_layer(name: str, size: int, seed: int) -> bytes:
    """A plain tar with one incompressible file, so the gzip blob is about `size` bytes."""
    import random

    return tar_of({name: random.Random(seed).randbytes(size)})


def test_pull_emits_moby_messages_and_unpacks(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    registry.push("library/busybox", "latest", bb)
    e: Engine = make_engine()
    repo = f"{registry.host}/library/busybox"
    msgs = pull_messages(e, repo)
    layer = bb.layer_digests[0]
    lid = layer[7:19]
    size = len(bb.blobs[layer])
    assert msgs[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert msgs[1] == {"status": "Pulling fs layer", "progressDetail": {}, "id": lid}
    downloading = [m for m in msgs if m.get("status") == "Downloading"]
    assert downloading and all(m["id"] == lid and m["progressDetail"]["total"] == size for m in downloading)
    currents = [m["progressDetail"]["current"] for m in downloading]
    assert currents == sorted(currents) and currents[-1] == size
    assert downloading[-1]["progress"].endswith(" 886.2kB/886.2kB") and downloading[-1]["progress"].startswith("[=")
    rest = [m for m in msgs[2:] if m.get("status") != "Downloading"]
    assert rest == [
        {"status": "Verifying Checksum", "progressDetail": {}, "id": lid},
        {"status": "Download complete", "progressDetail": {}, "id": lid},
        {"status": "Extracting", "progressDetail": {"current": size, "total": size},
         "progress": "[==================================================>]  886.2kB/886.2kB", "id": lid},
        {"status": "Pull complete", "progressDetail": {}, "id": lid},
        {"status": f"Digest: {bb.digest}"},
        {"status": f"Status: Downloaded newer image for {repo}:latest"},
    ]
    # the image is recorded as Docker shows it, and its root filesystem is the real busybox
    info = e.client().api.inspect_image(repo)
    assert info["Id"] == bb.image_id
    assert info["RepoTags"] == [f"{repo}:latest"]
    assert info["RepoDigests"] == [f"{repo}@{bb.digest}"]
    assert info["RootFS"]["Layers"] == bb.config["rootfs"]["diff_ids"]
    root = top_dir(e, repo)
    assert os.path.samefile(os.path.join(root, "bin", "busybox"), os.path.join(root, "bin", "sh"))  # hard links
    assert ("pull", f"{repo}:latest", {"name": repo}) in e.events
    # a second pull transfers nothing and says so
    again = pull_messages(e, repo)
    assert again == [{"status": "Pulling from library/busybox", "id": "latest"}, {"status": f"Digest: {bb.digest}"},
                     {"status": f"Status: Image is up to date for {repo}:latest"}]


def test_cli_pull_by_tag_and_digest(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    registry.push("tools/busybox", "1.38", bb)
    e: Engine = make_engine()
    repo = f"{registry.host}/tools/busybox"
    p = e.docker("pull", f"{repo}:1.38")
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["1.38: Pulling from tools/busybox", f"{bb.layer_digests[0][7:19]}: Pulling fs layer",
                        f"{bb.layer_digests[0][7:19]}: Verifying Checksum",
                        f"{bb.layer_digests[0][7:19]}: Download complete",
                        f"{bb.layer_digests[0][7:19]}: Pull complete", f"Digest: {bb.digest}",
                        f"Status: Downloaded newer image for {repo}:1.38", f"{repo}:1.38"]
    # by digest: the pull by tag recorded the digest too (RepoDigests), so nothing changes
    p = e.docker("pull", f"{repo}@{bb.digest}")
    assert p.returncode == 0, p.stderr
    assert lines(p) == [f"{bb.digest}: Pulling from tools/busybox", f"Digest: {bb.digest}",
                        f"Status: Image is up to date for {repo}@{bb.digest}", f"{repo}@{bb.digest}"]
    p = e.docker("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}")
    assert lines(p) == [f"{repo} 1.38 {bb.digest} {bb.image_id[7:19]}"]


def test_pull_all_tags(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    one = make_image([tar_of({"a": b"1"})])
    two = make_image([tar_of({"a": b"2"})])
    registry.push("multi", "one", one)
    registry.push("multi", "two", two)
    e: Engine = make_engine()
    p = e.docker("pull", "--all-tags", f"{registry.host}/multi")
    assert p.returncode == 0, p.stderr
    out = lines(p)
    assert "one: Pulling from multi" in out and "two: Pulling from multi" in out
    assert f"Status: Downloaded newer image for {registry.host}/multi" in out
    p = e.docker("images", "--format", "{{.Tag}} {{.ID}}")
    assert sorted(lines(p)) == [f"one {one.image_id[7:19]}", f"two {two.image_id[7:19]}"]


def test_multi_arch_index_picks_linux_amd64_or_the_asked_platform(make_engine: Any, registry: Registry,
                                                                  tmp_path: Path) -> None:
    amd64 = busybox(tmp_path)
    arm64 = make_image([tar_of({"etc/arch": b"arm64\n"})], arch="arm64", variant="v8")
    arm = make_image([tar_of({"etc/arch": b"armv7\n"})], arch="arm", variant="v7")
    index = registry.push_index("library/multi", "latest", [
        (arm64, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
        (arm, {"architecture": "arm", "os": "linux", "variant": "v7"}),
        (amd64, {"architecture": "amd64", "os": "linux"}),
        (make_image([tar_of({"att": b"{}"})]), None),
    ])
    e: Engine = make_engine()
    repo = f"{registry.host}/library/multi"
    p = e.docker("pull", repo)
    assert p.returncode == 0, p.stderr
    assert f"Digest: {sha(index)}" in lines(p)  # Docker shows (and records) the index's digest
    info = e.client().api.inspect_image(repo)
    assert info["Id"] == amd64.image_id and info["Architecture"] == "amd64"
    assert info["RepoDigests"] == [f"{repo}@{sha(index)}"]
    # --platform picks another entry (arm64 normalises to its v8 variant, as containerd's matcher does)
    e2: Engine = make_engine(name="other")
    p = e2.docker("pull", "--platform", "linux/arm64", repo)
    assert p.returncode == 0, p.stderr
    info = e2.client().api.inspect_image(repo)
    assert info["Id"] == arm64.image_id and info["Architecture"] == "arm64" and info["Variant"] == "v8"
    with open(os.path.join(top_dir(e2, repo), "etc", "arch")) as f:
        assert f.read() == "arm64\n"
    p = e2.docker("pull", "--platform", "linux/arm/v7", repo)
    assert p.returncode == 0, p.stderr
    assert e2.client().api.inspect_image(repo)["Id"] == arm.image_id
    p = e2.docker("pull", "--platform", "linux/s390x", repo)
    assert p.returncode == 1
    assert "no matching manifest for linux/s390x in the manifest list entries" in p.stderr


def test_layers_already_present_are_not_downloaded(make_engine: Any, registry: Registry, make_proxy: Any,
                                                   tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    base_tar = gzip.decompress(bb.blobs[bb.layer_digests[0]])
    app_tar = tar_of({"app/run": b"#!/bin/sh\necho app\n"})
    app = make_image([base_tar, app_tar], gzipped=[bb.blobs[bb.layer_digests[0]],
                                                   gzip.compress(app_tar, mtime=0)])
    registry.push("library/busybox", "latest", bb)
    registry.push("app", "v1", app)
    proxy = make_proxy(registry.host)
    e: Engine = make_engine(RegistrySettings(insecure=[proxy.host]))
    assert e.docker("pull", f"{proxy.host}/library/busybox").returncode == 0
    p = e.docker("pull", f"{proxy.host}/app:v1")
    assert p.returncode == 0, p.stderr
    base_id, app_id = bb.layer_digests[0][7:19], app.layer_digests[1][7:19]
    assert lines(p)[:3] == ["v1: Pulling from app", f"{base_id}: Already exists", f"{app_id}: Pulling fs layer"]
    assert f"{app_id}: Pull complete" in lines(p)
    # the shared layer was fetched once, by the first pull
    fetched = [r.path.rsplit("/", 1)[1] for r in proxy.blob_gets()]
    assert fetched.count(bb.layer_digests[0]) == 1 and fetched.count(app.layer_digests[1]) == 1
    assert os.path.isfile(os.path.join(top_dir(e, f"{proxy.host}/app:v1"), "app", "run"))


def test_parallel_downloads_at_most_three_and_the_rest_wait(make_engine: Any, registry: Registry,
                                                             make_proxy: Any) -> None:
    tars = [random_layer(f"l{i}", 600_000, i) for i in range(5)]
    img = make_image(tars, gzipped=[gzip.compress(t, compresslevel=0, mtime=0) for t in tars])
    registry.push("five", "latest", img)
    proxy = make_proxy(registry.host, rate=1_000_000)  # about 0.6 s per layer per connection
    e: Engine = make_engine(RegistrySettings(insecure=[proxy.host]))
    msgs = pull_messages(e, f"{proxy.host}/five")
    ids = [d[7:19] for d in img.layer_digests]
    waiting = [m["id"] for m in msgs if m.get("status") == "Waiting"]
    assert waiting == ids[3:]
    starts = {r.path.rsplit("/", 1)[1]: r.at for r in proxy.blob_gets()}
    t = [starts[d] for d in img.layer_digests]
    assert max(t[:3]) - min(t[:3]) < 0.3  # the first three at once...
    assert min(t[3:]) - min(t[:3]) > 0.4  # ...the others only when a slot frees
    # extraction keeps chain order even though downloads finish in any order
    complete = [m["id"] for m in msgs if m.get("status") == "Pull complete"]
    assert complete == ids
    assert diff_ids(e, f"{proxy.host}/five") == [sha(t) for t in tars]


def test_concurrent_pulls_of_one_image_share_the_work(make_engine: Any, registry: Registry, make_proxy: Any) -> None:
    import threading

    tars = [random_layer(f"c{i}", 400_000, 100 + i) for i in range(3)]
    img = make_image(tars, gzipped=[gzip.compress(t, compresslevel=0, mtime=0) for t in tars])
    registry.push("shared", "latest", img)
    proxy = make_proxy(registry.host, rate=2_000_000)
    e: Engine = make_engine(RegistrySettings(insecure=[proxy.host]))
    results: list[list[dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda: results.append(pull_messages(e, f"{proxy.host}/shared")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3
    for msgs in results:
        assert not any("error" in m for m in msgs), msgs
        assert msgs[-1]["status"].startswith("Status: ")
    fetched = [r.path.rsplit("/", 1)[1] for r in proxy.blob_gets()]
    assert sorted(d for d in fetched if d in img.layer_digests) == sorted(img.layer_digests)  # each blob once
    assert diff_ids(e, f"{proxy.host}/shared") == [sha(t) for t in tars]
    assert [i.id for i in e.client().images.list()] == [img.image_id]
    # each layer recorded once, whole (a second unpacking of a chain must not overwrite its record)
    rows = [e.store.meta.get_layer(c) for c in e.store.resolve(f"{proxy.host}/shared").chain]
    assert [r.tar_size if r else None for r in rows] == [len(t) for t in tars]


def _start_pull_and_hang_up(sock_path: str, query: str, after_bytes: int) -> int:
    """A client that starts a pull over the raw socket and goes away once `after_bytes` are downloaded."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(f"POST /v1.44/images/create?{query} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    seen = 0
    deadline = time.monotonic() + 60
    while seen < after_bytes and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        found = [int(x) for x in re.findall(rb'"current":(\d+)', data)]
        seen = max(found, default=0)
    s.close()
    return seen


def settled_ingest(e: Engine, ref: str, timeout: float = 10) -> int:
    """The size of a resumable ingest once it has stopped growing."""
    last, since = -1, time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        n = {r: size for r, size, _ in e.store.content.ingests()}.get(ref, 0)
        if n != last:
            last, since = n, time.monotonic()
        elif n and time.monotonic() - since > 0.5:
            break
        time.sleep(0.1)
    return last


def test_interrupted_download_resumes_with_range(make_engine: Any, registry: Registry, make_proxy: Any) -> None:
    tar = random_layer("big", 6_000_000, 7)
    blob = gzip.compress(tar, compresslevel=0, mtime=0)
    img = make_image([tar], gzipped=[blob])
    registry.push("big", "latest", img)
    proxy = make_proxy(registry.host, rate=1_500_000)
    e: Engine = make_engine(RegistrySettings(insecure=[proxy.host]))
    layer = img.layer_digests[0]
    seen = _start_pull_and_hang_up(e.sock, f"fromImage={proxy.host}/big&tag=latest", 2_000_000)
    assert seen >= 2_000_000
    # the client went away: the download stops and keeps what it had, as a named ingest
    held = settled_ingest(e, f"pull-{layer}")
    assert 1_000_000 <= held < len(blob)
    assert not e.store.has_blob(layer) and not e.store.exists(f"{proxy.host}/big")
    # the next pull asks only for the rest
    proxy.rate = None
    before = proxy.bytes_down
    p = e.docker("pull", f"{proxy.host}/big")
    assert p.returncode == 0, p.stderr
    gets = [r for r in proxy.blob_gets() if r.path.endswith(layer)]
    assert gets[-1].headers.get("range") == f"bytes={held}-"
    assert proxy.bytes_down - before < len(blob) - held + 200_000
    assert diff_ids(e, f"{proxy.host}/big") == [sha(tar)]
    assert f"pull-{layer}" not in {ref for ref, _, _ in e.store.content.ingests()}


def test_corrupt_blob_is_refused_and_nothing_is_kept(make_engine: Any, registry: Registry) -> None:
    tar = tar_of({"f": b"x" * 100_000})
    img = make_image([tar])
    registry.push("bad", "latest", img)
    layer = img.layer_digests[0]
    path = os.path.join(registry.proc.root, "blobs", "sha256", layer[7:9], layer[7:])
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))
    e: Engine = make_engine()
    p = e.docker("pull", f"{registry.host}/bad")
    assert p.returncode == 1
    assert f"filesystem layer verification failed for digest {layer}" in p.stderr
    assert not e.store.has_blob(layer) and not e.store.exists(f"{registry.host}/bad")
    assert not e.store.content.ingests()
    assert e.client().images.list() == []


def test_missing_image_gets_mobys_errors(make_engine: Any, registry: Registry, tmp_path: Path) -> None:
    import docker

    registry.push("library/busybox", "latest", busybox(tmp_path))
    e: Engine = make_engine()
    p = e.docker("pull", f"{registry.host}/library/busybox:nosuchtag")
    assert p.returncode == 1
    assert p.stderr.startswith(f"Error response from daemon: manifest for {registry.host}/library/busybox:nosuchtag "
                               "not found: manifest unknown: ")
    p = e.docker("pull", f"{registry.host}/nosuch/repo")
    assert p.returncode == 1
    assert re.match(rf"Error response from daemon: (manifest for {registry.host}/nosuch/repo:latest not found: "
                    rf"manifest unknown|repository {registry.host}/nosuch/repo not found: name unknown)", p.stderr)
    with pytest.raises(docker.errors.NotFound) as exc:
        e.client().api.pull(f"{registry.host}/nosuch/repo", tag="latest")
    assert exc.value.response.status_code == 404
    # a registry that is not there: a real HTTP error before any progress
    p = e.docker("pull", "127.0.0.1:1/x")
    assert p.returncode == 1 and 'Error response from daemon: Get "http://127.0.0.1:1/v2/": connect' in p.stderr
    p = e.docker("pull", f"{registry.host}/Upper")
    assert p.returncode == 1 and "must be lowercase" in p.stderr


def test_basic_auth_login_then_pull_and_push(make_engine: Any, tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "reg"), "--htpasswd", htpasswd(tmp_path / "htpasswd", {"alice": "wonderland"}),
                   creds=("alice", "wonderland"))
    try:
        reg.push("private/busybox", "latest", busybox(tmp_path))
        e: Engine = make_engine()
        ref = f"{reg.host}/private/busybox"
        p = e.docker("pull", ref)
        assert p.returncode == 1
        assert ("Error response from daemon: pull access denied for "
                f"{reg.host}/private/busybox, repository does not exist or may require 'docker login': "
                "unauthorized: ") in p.stderr
        p = e.docker("login", "-u", "alice", "--password-stdin", reg.host, input=b"wrong\n")
        assert p.returncode == 1
        assert f"login attempt to http://{reg.host}/v2/ failed with status: 401 Unauthorized" in p.stderr
        p = e.docker("login", "-u", "alice", "--password-stdin", reg.host, input=b"wonderland\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, p.stderr
        import base64

        config = json.loads((e.home / ".docker" / "config.json").read_text())
        assert config["auths"][reg.host]["auth"] == base64.b64encode(b"alice:wonderland").decode()
        p = e.docker("pull", ref)  # the CLI now sends the stored credentials (X-Registry-Auth)
        assert p.returncode == 0, p.stderr
        assert e.docker("tag", ref, f"{reg.host}/private/copy:v2").returncode == 0
        p = e.docker("push", f"{reg.host}/private/copy:v2")
        assert p.returncode == 0, p.stderr
        assert "Mounted from private/busybox" in p.stdout
    finally:
        reg.stop()


def test_token_auth_login_pull_push(make_engine: Any, tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "reg"), "--htpasswd", htpasswd(tmp_path / "htpasswd", {"bob": "builder"}),
                   "--token-realm", "/token", "--token-service", "berth-test", creds=("bob", "builder"))
    try:
        bb = busybox(tmp_path)
        reg.push("team/busybox", "latest", bb)
        e: Engine = make_engine()
        p = e.docker("login", "-u", "bob", "--password-stdin", reg.host, input=b"nope\n")
        assert p.returncode == 1
        assert f'Get "http://{reg.host}/v2/": unauthorized: ' in p.stderr
        p = e.docker("login", "-u", "bob", "--password-stdin", reg.host, input=b"builder\n")
        assert p.returncode == 0, p.stderr
        p = e.docker("pull", f"{reg.host}/team/busybox")
        assert p.returncode == 0, p.stderr
        assert e.client().api.inspect_image(f"{reg.host}/team/busybox")["Id"] == bb.image_id
        assert e.docker("tag", f"{reg.host}/team/busybox", f"{reg.host}/team/other").returncode == 0
        p = e.docker("push", f"{reg.host}/team/other")
        assert p.returncode == 0, p.stderr
        assert "Mounted from team/busybox" in p.stdout
    finally:
        reg.stop()


def test_mirror_serves_short_names_without_ever_touching_docker_io(make_engine: Any, registry: Registry,
                                                                   network_guard: list[str], tmp_path: Path) -> None:
    bb = busybox(tmp_path)
    registry.push("library/busybox", "latest", bb)
    e: Engine = make_engine(RegistrySettings(mirrors=[registry.url], default_registry=""))
    p = e.docker("pull", "busybox")
    assert p.returncode == 0, p.stderr
    assert lines(p)[1] == "latest: Pulling from library/busybox"
    assert "Status: Downloaded newer image for busybox:latest" in lines(p)
    assert e.client().api.inspect_image("busybox")["RepoTags"] == ["busybox:latest"]
    # not in the mirror: a clear error at once, and still no lookup or connection beyond loopback
    t0 = time.monotonic()
    p = e.docker("pull", "nosuch:1.0")
    assert time.monotonic() - t0 < 5
    assert p.returncode == 1
    assert "nosuch:1.0 was not found in the registry mirrors" in p.stderr
    assert 'docker.io is disabled on this daemon ("default-registry": "")' in p.stderr
    p = e.docker("push", "busybox")
    assert p.returncode == 1 and "docker.io is disabled" in p.stderr
    assert network_guard == []


def test_docker_io_disabled_without_mirrors_fails_before_any_network(make_engine: Any,
                                                                    network_guard: list[str]) -> None:
    e: Engine = make_engine(RegistrySettings(default_registry=""))
    t0 = time.monotonic()
    p = e.docker("pull", "alpine:3.20")
    assert time.monotonic() - t0 < 5
    assert p.returncode == 1
    assert ("Error response from daemon: cannot pull alpine:3.20: docker.io is disabled on this daemon "
            "(\"default-registry\": \"\") and no registry mirror is configured") in p.stderr
    p = e.docker("login", "-u", "x", "--password-stdin", input=b"y\n")
    assert p.returncode == 1 and "docker.io is disabled" in p.stderr
    p = e.docker("search", "alpine")
    assert p.returncode == 1 and "docker.io is disabled" in p.stderr
    assert network_guard == []


def test_unreachable_mirror_falls_back_to_the_next(make_engine: Any, registry: Registry, tmp_path: Path,
                                                   network_guard: list[str]) -> None:
    bb = busybox(tmp_path)
    registry.push("library/busybox", "latest", bb)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        e: Engine = make_engine(RegistrySettings(mirrors=[f"http://127.0.0.1:{dead.getsockname()[1]}", registry.url],
                                                 default_registry=""))
        p = e.docker("pull", "busybox")
        assert p.returncode == 0, p.stderr
    finally:
        dead.close()
    assert network_guard == []


def test_default_registry_host_takes_short_names(make_engine: Any, registry: Registry, tmp_path: Path,
                                                 network_guard: list[str]) -> None:
    bb = busybox(tmp_path)
    registry.push("library/busybox", "stable", bb)
    e: Engine = make_engine(RegistrySettings(default_registry=registry.host))
    p = e.docker("pull", "busybox:stable")
    assert p.returncode == 0, p.stderr
    assert e.client().api.inspect_image("busybox:stable")["Id"] == bb.image_id
    assert network_guard == []
