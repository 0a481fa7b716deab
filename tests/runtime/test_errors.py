"""Configs that cannot run fail as runc fails (exit 1, runc's wording) and leave nothing behind."""

from __future__ import annotations

import os

import pytest

from tests import leaks
from tests.runtime.rt import Bundle, make_bundle

pytestmark = pytest.mark.root


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def _nothing_left(b: Bundle) -> None:
    assert not os.path.exists(b.state_root) or os.listdir(b.state_root) == []


def test_missing_binary(b: Bundle) -> None:
    r = b.run(["nosuchcmd"])
    assert r.returncode == 1
    assert 'exec: \\"nosuchcmd\\": executable file not found in $PATH' in r.stderr
    _nothing_left(b)


def test_binary_is_a_directory(b: Bundle) -> None:
    r = b.run(["/etc"])
    assert r.returncode == 1 and 'exec: \\"/etc\\": permission denied' in r.stderr
    _nothing_left(b)


def test_absolute_missing_binary(b: Bundle) -> None:
    r = b.run(["/nope/x"])
    assert r.returncode == 1 and "stat /nope/x: no such file or directory" in r.stderr


def test_not_executable(b: Bundle) -> None:
    with open(os.path.join(b.rootfs, "script"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    r = b.run(["/script"])
    assert r.returncode == 1 and "permission denied" in r.stderr


def test_missing_root(b: Bundle) -> None:
    spec = b.config(["true"])
    spec["root"]["path"] = "nope"
    b.write(spec)
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 1 and "invalid rootfs: stat" in r.stderr and "no such file or directory" in r.stderr
    _nothing_left(b)


def test_bad_json(b: Bundle) -> None:
    with open(os.path.join(b.path, "config.json"), "w") as f:
        f.write("{bad")
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 1 and "invalid JSON" in r.stderr
    _nothing_left(b)


def test_no_config(b: Bundle) -> None:
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 1 and "JSON specification file config.json not found" in r.stderr


def test_unknown_namespace(b: Bundle) -> None:
    spec = b.config(["true"])
    spec["linux"]["namespaces"].append({"type": "bogus"})
    b.write(spec)
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 1 and 'namespace {\\"bogus\\" \\"\\"} does not exist' in r.stderr
    _nothing_left(b)


def test_hard_rlimit_above_our_own(b: Bundle) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    r = b.run(["true"], process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}])
    if r.returncode == 0:
        pytest.skip("this host lets the runtime raise hard limits (CAP_SYS_RESOURCE)")
    assert "error setting rlimit type 7: operation not permitted" in r.stderr
    _nothing_left(b)


def test_negative_oom_score_adj_without_cap_sys_resource(b: Bundle) -> None:
    r = b.run(["true"], process__oomScoreAdj=-500)
    if r.returncode == 0:
        pytest.skip("this host allows negative oom_score_adj")
    assert r.returncode == 1 and "oom_score_adj" in r.stderr
    _nothing_left(b)


def test_bad_mount_source(b: Bundle) -> None:
    spec = b.config(["true"])
    spec["mounts"].append(
        {"destination": "/data", "type": "bind", "source": "/nonexistent-berth", "options": ["rbind"]}
    )
    b.write(spec)
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 1 and "/nonexistent-berth" in r.stderr
    _nothing_left(b)


def test_dev_symlink_in_image_stays_inside(b: Bundle, tmp_path: str) -> None:
    # CVE-2026-41579 class: an image whose /dev points at a host path
    probe = os.path.join(str(tmp_path), "probe")
    os.mkdir(probe)
    os.rmdir(os.path.join(b.rootfs, "dev"))
    os.symlink(probe, os.path.join(b.rootfs, "dev"))
    r = b.run(["true"])
    assert os.listdir(probe) == [], "the runtime wrote through the image's /dev symlink onto the host"
    assert r.returncode in (0, 1)


def test_dev_null_symlink_cannot_unmask(b: Bundle) -> None:
    # CVE-2025-31133 class: a /dev/null replaced by a symlink must not let a masked file through
    r = b.sh("rm /dev/null; ln -s /proc/sys/kernel/core_pattern /dev/null; cat /proc/kcore | wc -c; echo ok")
    assert "ok" in r.stdout


def test_mount_destination_symlink_escape(b: Bundle, tmp_path: str) -> None:
    target = os.path.join(str(tmp_path), "hostdir")
    os.mkdir(target)
    os.symlink(target, os.path.join(b.rootfs, "escape"))
    spec = b.config(["true"])
    spec["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})
    b.write(spec)
    r = b.cli("run", leaks.name("c"))
    assert r.returncode == 0, r.stderr
    # the tmpfs landed inside the rootfs (at rootfs/<target>), never on the host dir
    assert os.listdir(target) == []
    with open("/proc/self/mountinfo") as f:
        assert target not in f.read()


def test_invalid_container_id(b: Bundle) -> None:
    b.write(b.config(["true"]))
    r = b.cli("run", "../evil")
    assert r.returncode == 1 and "invalid container id format" in r.stderr
