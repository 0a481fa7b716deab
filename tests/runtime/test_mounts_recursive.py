"""The recursive mount options (rro, rnosuid, ...): applied to a bind and every mount under it.

A plain `ro` bind leaves the mounts below it writable; Docker (since v25) asks for `rro` for its
read-only binds so that a host directory's submounts are read-only in the container too."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from berth.runtime.linux import mountopts
from berth.runtime.linux import syscalls as sc
from tests import leaks
from tests.helpers import tree_with_submount
from tests.runtime.rt import RUNTIME, Bundle, make_bundle

pytestmark = pytest.mark.root


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


@pytest.fixture
def tree(tmp_path: str) -> Iterator[str]:
    with tree_with_submount(str(tmp_path)) as top:
        yield top


def _bind(b: Bundle, tree: str, options: list[str]) -> subprocess.CompletedProcess[str]:
    script = "touch /data/top-file 2>/dev/null && echo top-rw || echo top-ro; " \
             "touch /data/sub/file 2>/dev/null && echo sub-rw || echo sub-ro; grep ' /data/sub ' /proc/self/mounts"
    spec = b.config(["sh", "-c", script])
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": tree, "options": options})
    b.write(spec)
    return b.cli("run", "--bundle", b.path, leaks.name("c"))


def test_ro_leaves_submounts_writable_and_rro_does_not(b: Bundle, tree: str) -> None:
    r = _bind(b, tree, ["rbind", "ro"])
    assert r.stdout.split("\n")[:2] == ["top-ro", "sub-rw"], r.stderr
    r = _bind(b, tree, ["rbind", "rro"])
    assert r.stdout.split("\n")[:2] == ["top-ro", "sub-ro"], r.stderr
    assert " ro," in r.stdout.split("\n")[2]
    r = _bind(b, tree, ["rbind", "rro", "rrw"])  # the last one wins
    assert r.stdout.split("\n")[:2] == ["top-rw", "sub-rw"], r.stderr


def test_recursive_nosuid_noexec_reach_the_submount(b: Bundle, tree: str) -> None:
    r = _bind(b, tree, ["rbind", "rnosuid", "rnoexec", "rnoatime"])
    assert r.returncode == 0, r.stderr
    sub_opts = r.stdout.split("\n")[2].split()[3].split(",")
    assert {"nosuid", "noexec", "noatime"} <= set(sub_opts)


def test_parse_keeps_the_atime_field_whole() -> None:
    o = mountopts.parse(["rnoatime"])
    assert o.rec_clear == sc.MOUNT_ATTR__ATIME and o.rec_set == sc.MOUNT_ATTR_NOATIME
    o = mountopts.parse(["rnoatime", "rstrictatime"])
    assert o.rec_set == sc.MOUNT_ATTR_STRICTATIME and o.rec_clear == sc.MOUNT_ATTR__ATIME
    o = mountopts.parse(["rro", "rnosuid", "rrw"])
    assert o.rec_set == sc.MOUNT_ATTR_NOSUID and o.rec_clear == sc.MOUNT_ATTR_RDONLY
    assert o.data == ""  # none of them reaches mount(2)'s data string


def test_features_lists_them() -> None:
    out = subprocess.run([RUNTIME, "features"], capture_output=True, text=True, check=True).stdout
    assert {"rro", "rrw", "rnosuid", "rnoatime"} <= set(json.loads(out)["mountOptions"])
