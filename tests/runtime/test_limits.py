"""cgroup limits and seccomp, felt from inside real containers."""

from __future__ import annotations

import os

import pytest

from berth.runtime.container import Runtime
from tests import leaks
from tests.runtime.rt import Bundle, make_bundle

pytestmark = pytest.mark.root
MiB = 1 << 20


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def test_memory_limit_oom_kills_and_is_visible(b: Bundle) -> None:
    cid = leaks.name("c")
    # swap = memory: no swap on top of the limit
    b.write(
        b.config(["sh", "-c", "tail /dev/zero"], linux__resources={"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    )
    r = b.cli("run", "--keep", cid)
    try:
        assert r.returncode == 137, r.stderr
        c = Runtime(b.state_root).get(cid)
        assert c.cgroup().oom_kill_count() >= 1
    finally:
        b.cli("delete", "-f", cid)


def test_dockers_smallest_memory_limit_still_runs_true(b: Bundle) -> None:
    r = b.run(["true"], linux__resources={"memory": {"limit": 6 * MiB, "swap": 6 * MiB}})
    assert r.returncode == 0, r.stderr


def test_memory_limit_visible_inside(b: Bundle) -> None:
    r = b.run(["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], linux__resources={"memory": {"limit": 64 * MiB}})
    assert r.stdout.strip() == str(64 * MiB), r.stderr


def test_pids_limit_stops_a_fork_bomb(b: Bundle) -> None:
    # ash gives up at the first failed fork: the 20th process is refused, long before the 50th
    r = b.sh(
        "i=0; while [ $i -lt 50 ]; do sleep 30 & i=$((i+1)); echo $i > /n; done",
        linux__resources={"pids": {"limit": 20}},
    )
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr, r.stderr
    with open(b.rootfs + "/n") as f:
        assert int(f.read()) == 19  # sh itself is the 20th process


def test_cpu_quota_is_applied(b: Bundle) -> None:
    r = b.run(
        ["cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.shares"],
        linux__resources={"cpu": {"quota": 50000, "period": 100000, "shares": 512}},
    )
    assert r.stdout.split() == ["50000", "512"], r.stderr


def test_device_cgroup_allows_mknod_but_not_open(b: Bundle) -> None:
    # b 7:0, the first loop device: one the host lets root open (not its disk, which this machine
    # refuses even root), so only the container's device rules can refuse it
    try:
        os.close(os.open("/dev/loop0", os.O_RDONLY))
    except OSError as e:
        pytest.skip(f"the host cannot open /dev/loop0 itself: {e.strerror}")
    r = b.sh("mknod /x b 7 0 && echo made; head -c1 /x > /dev/null; echo rc=$?")
    assert "made" in r.stdout and "rc=1" in r.stdout, r.stdout + r.stderr
    assert "Operation not permitted" in r.stderr


def test_seccomp_default_policy(b: Bundle) -> None:
    # busybox's unshare and mount need syscalls Docker's policy denies without CAP_SYS_ADMIN
    r = b.sh(
        "grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?; "
        "mkdir -p /m; mount -t tmpfs x /m; echo mount=$?",
        seccomp=True,
    )
    assert "Seccomp:\t2" in r.stdout, r.stdout + r.stderr
    assert "unshare=1" in r.stdout and "mount=" in r.stdout and "mount=0" not in r.stdout
    assert "Operation not permitted" in r.stderr


def test_seccomp_with_no_new_privileges(b: Bundle) -> None:
    r = b.sh(
        "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status; unshare -U true; echo unshare=$?",
        seccomp=True,
        process__noNewPrivileges=True,
    )
    assert "NoNewPrivs:\t1" in r.stdout and "Seccomp:\t2" in r.stdout and "unshare=1" in r.stdout, r.stderr
