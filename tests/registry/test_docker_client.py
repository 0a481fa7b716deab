"""The docker CLI and Debian's dockerd 20.10 (a picky, real distribution client) against berth's registry:
login (basic and token), push, pull. berthd will stand in for dockerd once it pulls through this package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.dockerd import Dockerd
from tests.registry.conftest import start_registry
from tests.registry.helpers import RegistryProcess, layout, run

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dockerd") is None or shutil.which("docker") is None or
                       shutil.which("skopeo") is None, reason="needs dockerd, docker and skopeo"),
]


@pytest.fixture
def dockerd(tmp_path) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    d = Dockerd(str(tmp_path / "dockerd"))
    os.makedirs(d.base, exist_ok=True)
    try:
        d.start()
        yield d.env
    finally:
        d.stop()


def _load_busybox(env: dict[str, str], tmp_path) -> str:  # type: ignore[no-untyped-def]
    src = layout("latest-musl", str(tmp_path / "bb"))
    tar = str(tmp_path / "bb.tar")
    assert run(["skopeo", "copy", f"oci:{src}", f"docker-archive:{tar}:busybox:musl"]).returncode == 0
    p = run(["docker", "load", "-i", tar], env=env)
    assert p.returncode == 0, p.stderr
    return "busybox:musl"


def test_docker_push_and_pull(registry: RegistryProcess, dockerd: dict[str, str],
                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dockerd
    img = _load_busybox(env, tmp_path)
    ref = f"{registry.host}/docker/busybox:musl"
    assert run(["docker", "tag", img, ref], env=env).returncode == 0
    p = run(["docker", "push", ref], env=env)
    assert p.returncode == 0, p.stderr
    digest = p.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert run(["docker", "rmi", ref, img], env=env).returncode == 0
    p = run(["docker", "pull", ref], env=env)
    assert p.returncode == 0, p.stderr
    assert f"Digest: {digest}" in p.stdout and "Pull complete" in p.stdout
    p = run(["docker", "run", "--rm", "--network", "none", ref, "echo", "hi"], env=env)
    assert p.returncode == 0 and p.stdout.strip() == "hi", p.stderr
    # a second push of the same image: every layer already there
    p = run(["docker", "push", ref], env=env)
    assert p.returncode == 0 and "Layer already exists" in p.stdout


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_docker_login_push_pull_with_auth(mode: str, users: str, dockerd: dict[str, str],
                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dockerd
    args = ["--htpasswd", f"{users}/htpasswd", "--acl", f"{users}/acl"]
    if mode == "token":
        args += ["--token-realm", "/token"]
    it = start_registry(str(tmp_path / "reg"), *args)
    reg = next(it)
    try:
        img = _load_busybox(env, tmp_path)
        ref = f"{reg.host}/team/busybox:1"
        assert run(["docker", "tag", img, ref], env=env).returncode == 0
        p = run(["docker", "push", ref], env=env)
        # basic: "no basic auth credentials"; token: an anonymous token without push, which docker reports
        # as Docker Hub's "denied: requested access to the resource is denied"
        assert p.returncode != 0 and ("no basic auth credentials" in p.stderr or "denied" in p.stderr), p.stderr
        p = run(["docker", "login", "-u", "alice", "--password-stdin", reg.host], env=env, input="wrong\n")
        assert p.returncode != 0
        p = run(["docker", "login", "-u", "alice", "--password-stdin", reg.host], env=env, input="wonderland\n")
        assert p.returncode == 0 and "Login Succeeded" in p.stdout, p.stderr
        p = run(["docker", "push", ref], env=env)
        assert p.returncode == 0, p.stderr
        # bob may pull team/* but not push
        assert run(["docker", "logout", reg.host], env=env).returncode == 0
        p = run(["docker", "login", "-u", "bob", "--password-stdin", reg.host], env=env, input="builder\n")
        assert p.returncode == 0, p.stderr
        assert run(["docker", "rmi", ref], env=env).returncode == 0
        p = run(["docker", "pull", ref], env=env)
        assert p.returncode == 0, p.stderr
        p = run(["docker", "push", f"{reg.host}/team/busybox:1"], env=env)
        assert p.returncode != 0
    finally:
        next(it, None)
