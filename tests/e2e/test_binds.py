"""Bind mounts through the docker CLI: read-only binds are recursively read-only (Docker >= 25),
unless the client asks otherwise or speaks an API older than 1.44; inspect and ps list them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.daemon import DOCKER, Berthd
from tests.helpers import tree_with_submount

PROBE = ("for d in /ro /rw; do touch $d/f 2>/dev/null && echo $d-top-rw || echo $d-top-ro; "
         "touch $d/sub/f 2>/dev/null && echo $d-sub-rw || echo $d-sub-ro; done")


@pytest.fixture
def tree(tmp_path: str) -> Iterator[str]:
    with tree_with_submount(str(tmp_path)) as top:
        yield top


def test_read_only_bind_is_read_only_all_the_way_down(berthd: Berthd, tree: str) -> None:
    r = berthd.docker("run", "--rm", "--network", "none", "-v", f"{tree}:/ro:ro", "-v", f"{tree}:/rw",
                      "busybox", "sh", "-c", PROBE)
    assert r.stdout.split() == ["/ro-top-ro", "/ro-sub-ro", "/rw-top-rw", "/rw-sub-rw"], r.stderr


def test_bind_recursive_writable_keeps_submounts_writable(berthd: Berthd, tree: str) -> None:
    r = berthd.docker("run", "--rm", "--network", "none",
                      "--mount", f"type=bind,src={tree},dst=/ro,readonly,bind-recursive=writable",
                      "--mount", f"type=bind,src={tree},dst=/rw", "busybox", "sh", "-c", PROBE)
    assert r.stdout.split() == ["/ro-top-ro", "/ro-sub-rw", "/rw-top-rw", "/rw-sub-rw"], r.stderr
    r = berthd.docker("run", "--rm", "--network", "none", "--mount",
                      f"type=bind,src={tree},dst=/ro,readonly,bind-recursive=readonly,bind-propagation=rprivate",
                      "busybox", "sh", "-c", "touch /ro/sub/f")
    assert r.returncode == 1 and "Read-only file system" in r.stderr


def test_an_old_api_client_gets_the_old_non_recursive_read_only(berthd: Berthd, tree: str) -> None:
    env = {**berthd.env(), "DOCKER_API_VERSION": "1.43"}
    r = subprocess.run([DOCKER, "run", "--rm", "--network", "none", "-v", f"{tree}:/ro:ro", "-v", f"{tree}:/rw",
                        "busybox", "sh", "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["/ro-top-ro", "/ro-sub-rw", "/rw-top-rw", "/rw-sub-rw"], r.stderr
    body = {"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "bind", "Source": tree, "Target": "/x",
                                                           "ReadOnly": True,
                                                           "BindOptions": {"ReadOnlyForceRecursive": True}}]}}
    transport = httpx.HTTPTransport(uds=berthd.host.removeprefix("unix://"))
    with httpx.Client(transport=transport, base_url="http://berth", timeout=30) as c:
        rep = c.post("/v1.43/containers/create", json=body)
    assert rep.status_code == 400
    assert rep.json() == {"message": "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"}


def test_inspect_and_ps_list_the_mounts_as_docker_does(berthd: Berthd, tmp_path: str) -> None:
    src = str(tmp_path)
    d = berthd.docker
    cid = d("create", "--network", "none", "-v", f"{src}:/a:rw", "-v", f"{src}:/b:ro,rslave",
            "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/u",
            "--mount", f"type=bind,src={src},dst=/y,readonly", "busybox", "true").stdout.strip()
    try:
        mounts = json.loads(d("inspect", "-f", "{{json .Mounts}}", cid).stdout)
        # (dockerd 20.10 gives the same entries, in its map's random order; --tmpfs is not listed)
        assert sorted(mounts, key=lambda m: m["Destination"]) == [
            {"Type": "bind", "Source": src, "Destination": "/a", "Mode": "rw", "RW": True, "Propagation": "rprivate"},
            {"Type": "bind", "Source": src, "Destination": "/b", "Mode": "ro,rslave", "RW": False,
             "Propagation": "rslave"},
            {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
            {"Type": "bind", "Source": src, "Destination": "/y", "Mode": "", "RW": False, "Propagation": "rprivate"}]
        listed = d("ps", "-a", "--no-trunc", "--filter", f"id={cid}", "--format", "{{.Mounts}}").stdout.strip()
        assert sorted(listed.split(",")) == sorted([src, src, "", src])
    finally:
        d("rm", "-f", cid)
