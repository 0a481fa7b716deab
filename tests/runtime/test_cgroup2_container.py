"""A whole container on cgroup v2, on this hybrid host: berth-runtime runs in a mount namespace
where the cgroup2 tree (/sys/fs/cgroup/unified) is bound over /sys/fs/cgroup, so it sees a v2 host.
No controller is delegated there, but cgroup.procs and device filtering (eBPF) are real."""

from __future__ import annotations

import os
import subprocess

import pytest

from berth.runtime import cgroups
from tests import leaks
from tests.runtime.rt import RUNTIME, Bundle, make_bundle

pytestmark = pytest.mark.root

UNIFIED = "/sys/fs/cgroup/unified"


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def _run_on_v2(b: Bundle, cid: str) -> subprocess.CompletedProcess[str]:
    cmd = f"exec {RUNTIME} --root {b.state_root} run --bundle {b.path} {cid}"
    if cgroups.detect() == "v2":
        return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    if not os.path.exists(os.path.join(UNIFIED, "cgroup.procs")):
        pytest.skip("no cgroup2 tree on this host")
    script = f"mount --bind {UNIFIED} /sys/fs/cgroup && {cmd}"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60)


def test_device_rules_hold_in_a_cgroup2_container(b: Bundle) -> None:
    try:
        os.close(os.open("/dev/loop0", os.O_RDONLY))
    except OSError as e:
        pytest.skip(f"the host cannot open /dev/loop0 itself: {e.strerror}")
    path = "/" + leaks.name("berth-rt")
    spec = b.config(["sh", "-c", "grep ^0:: /proc/self/cgroup; mknod /x b 7 0 && echo made; "
                     "head -c1 /x > /dev/null; echo open=$?; echo > /dev/null && echo null-ok"])
    spec["linux"]["cgroupsPath"] = path
    b.write(spec)
    r = _run_on_v2(b, leaks.name("c"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == f"0::{path}"  # a cgroup2 cgroup (the spec keeps the host's cgroup namespace)
    assert lines[1:] == ["made", "open=1", "null-ok"]  # mknod yes, open of a host block device no
    assert "Operation not permitted" in r.stderr
    assert not os.path.exists(UNIFIED + path) and not os.path.exists("/sys/fs/cgroup" + path)
