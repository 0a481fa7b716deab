"""Images travel through berth's own registry: docker push/pull/login through berthd, and the
mirror that stands in for Docker Hub (berthd never contacts docker.io in tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.e2e.daemon import Berthd, preload_busybox
from tests.registry.helpers import RegistryProcess


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    r = RegistryProcess(str(tmp_path_factory.mktemp("registry"))).start()
    assert r.proc is not None
    leaks.allow_pid(r.proc.pid)
    try:
        yield r
    finally:
        leaks.disallow_pid(r.proc.pid) if r.proc else None
        r.stop()


@pytest.fixture
def mirrored(tmp_path_factory: pytest.TempPathFactory, image_cache: str,
             registry: RegistryProcess) -> Iterator[Berthd]:
    """A berthd whose docker.io is berth's registry (as a mirror), with docker.io itself disabled."""
    base = str(tmp_path_factory.mktemp("berthd-mirror"))
    leaks.add_scope(base)
    with open(os.path.join(base, "daemon.json"), "w") as f:
        json.dump({"default-registry": "", "registry-mirrors": [registry.url]}, f)
    d = Berthd(base)
    preload_busybox(d, image_cache)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


def test_push_rmi_pull_run(berthd: Berthd, registry: RegistryProcess) -> None:
    d = berthd.docker
    ref = f"{registry.host}/tests/busybox:1"
    assert d("tag", "busybox", ref).returncode == 0
    r = d("push", ref)
    assert r.returncode == 0, r.stderr
    assert "digest: sha256:" in r.stdout
    assert d("rmi", ref).returncode == 0
    r = d("pull", ref)
    assert r.returncode == 0, r.stderr
    assert "Downloaded newer image" in r.stdout or "Image is up to date" in r.stdout
    r = d("run", "--rm", ref, "echo", "pulled")
    assert r.stdout == "pulled\n", r.stderr
    d("rmi", ref)


def test_short_names_resolve_through_the_mirror_only(mirrored: Berthd, registry: RegistryProcess) -> None:
    d = mirrored.docker
    assert d("tag", "busybox", f"{registry.host}/library/busybox:mirrored").returncode == 0
    assert d("push", f"{registry.host}/library/busybox:mirrored").returncode == 0
    r = d("run", "--rm", "busybox:mirrored", "echo", "from the mirror")
    assert r.stdout == "from the mirror\n", r.stderr
    assert "Unable to find image 'busybox:mirrored' locally" in r.stderr
    # a name the mirror lacks fails at once, without trying docker.io
    r = d("pull", "nosuchimage")
    assert r.returncode == 1 and r.stderr, r.stdout
    d("rmi", "busybox:mirrored", f"{registry.host}/library/busybox:mirrored")
