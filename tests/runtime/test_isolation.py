"""What a container sees from inside, proven with real containers started by `berth-runtime run`."""

from __future__ import annotations

import os

import pytest

from tests.runtime.rt import Bundle, make_bundle

pytestmark = pytest.mark.root


@pytest.fixture
def b(tmp_path: str) -> Bundle:
    return make_bundle(str(tmp_path))


def test_pid1_and_host_processes_invisible(b: Bundle) -> None:
    r = b.sh("echo $$; ps -o pid,comm > /tmp/ps; cat /tmp/ps")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "1"
    procs = [ln.split() for ln in lines[2:] if ln.strip()]
    # only the shell (pid 1) and ps itself
    assert [p[1] for p in procs] == ["sh", "ps"]
    assert procs[0][0] == "1"


def test_exit_codes(b: Bundle) -> None:
    assert b.sh("exit 3").returncode == 3
    assert b.run(["true"]).returncode == 0
    assert b.run(["false"]).returncode == 1


def test_hostname_and_domainname(b: Bundle) -> None:
    r = b.sh("hostname; cat /proc/sys/kernel/domainname", hostname="box1", domainname="example.org")
    assert r.stdout.split() == ["box1", "example.org"], r.stderr
    assert os.uname().nodename != "box1"


def test_user_and_groups(b: Bundle) -> None:
    r = b.run(["id"], process__user={"uid": 1000, "gid": 1000, "additionalGids": [2000, 100]})
    assert r.returncode == 0, r.stderr
    # supplementary groups are exactly additionalGids (the primary gid is not added by the runtime)
    assert r.stdout.strip() == "uid=1000(user) gid=1000(user) groups=100(users),2000(extra)"


def test_user_namespace_mapping(b: Bundle) -> None:
    # the mapped root (host uid 100000) must be able to reach the rootfs, as with runc
    d = b.path
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o011)
        d = os.path.dirname(d)
    spec_ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network", "user")]
    r = b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox",
             linux__namespaces=spec_ns,
             linux__sysctl={},  # Docker sets ping_group_range only without a user namespace
             linux__uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
             linux__gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])
    assert r.returncode == 0, r.stderr
    maps = [ln.split() for ln in r.stdout.strip().split("\n")]
    assert maps[0] == ["0", "100000", "65536"]
    assert maps[1] == ["0", "100000", "65536"]
    assert maps[2] == ["0"]  # root inside
    assert maps[3] == ["65534"]  # host root's files are unmapped: "nobody"


def test_home_from_the_containers_passwd_unless_set(b: Bundle) -> None:
    # runc's rule: a process env without HOME gets the user's passwd home, or "/" without an entry
    env = ["PATH=/bin:/usr/bin"]
    assert b.sh("echo $HOME", process__env=env).stdout == "/root\n"
    assert b.sh("echo $HOME", process__env=env, process__user={"uid": 1000, "gid": 1000}).stdout == "/home/user\n"
    assert b.sh("echo $HOME", process__env=env, process__user={"uid": 4242, "gid": 4242}).stdout == "/\n"
    assert b.sh("echo $HOME", process__env=[*env, "HOME=/elsewhere"]).stdout == "/elsewhere\n"


def test_default_capabilities(b: Bundle) -> None:
    r = b.run(["grep", "Cap", "/proc/self/status"])
    caps = dict(ln.split(":\t") for ln in r.stdout.strip().split("\n"))
    assert caps == {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb", "CapEff": "00000000a80425fb",
                    "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000"}


def test_capabilities_exactly_as_asked(b: Bundle) -> None:
    caps = ["CAP_NET_ADMIN", "CAP_KILL"]
    r = b.run(["grep", "Cap", "/proc/self/status"],
              process__capabilities={"bounding": caps, "effective": caps, "permitted": caps})
    got = dict(ln.split(":\t") for ln in r.stdout.strip().split("\n"))
    assert got["CapEff"] == got["CapPrm"] == got["CapBnd"] == f"{(1 << 12) | (1 << 5):016x}"


def test_masked_paths(b: Bundle) -> None:
    present = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts") if os.path.exists(p)]
    assert present, "host has none of the masked files"
    r = b.sh("for f in " + " ".join(present) + "; do wc -c < $f; done; ls -A /sys/firmware | wc -l;"
             " ls -A /proc/acpi 2>/dev/null | wc -l")
    assert r.returncode == 0, r.stderr
    counts = r.stdout.split()
    assert counts == ["0"] * (len(present) + 2)
    assert os.listdir("/sys/firmware"), "the host's /sys/firmware must stay untouched"


def test_readonly_paths_and_root(b: Bundle) -> None:
    r = b.sh("echo x > /proc/sys/kernel/domainname; echo rc=$?; touch /etc/x; echo rc=$?; touch /tmp/ok; echo rc=$?",
             root={"path": "rootfs", "readonly": True},
             mounts=b.config(["true"])["mounts"] + [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])
    assert "rc=1\n" in r.stdout
    assert r.stdout.count("rc=1") == 2 and "rc=0" in r.stdout, r.stdout + r.stderr
    assert "Read-only file system" in r.stderr


def test_dev_contents_and_devpts_newinstance(b: Bundle) -> None:
    r = b.sh("ls /dev; echo --; ls /dev/pts; echo --; head -c 1 /dev/zero | wc -c;"
             " readlink /dev/ptmx; readlink /dev/fd")
    assert r.returncode == 0, r.stderr
    devs, pts, rest = r.stdout.split("--\n")
    expected = {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
                "tty", "urandom", "zero"}
    if os.path.exists("/proc/kcore"):
        expected.add("core")
    assert set(devs.split()) == expected
    assert pts.split() == ["ptmx"]
    assert rest.split() == ["1", "pts/ptmx", "/proc/self/fd"]


def test_no_fd_leaks(b: Bundle) -> None:
    r = b.run(["ls", "/proc/self/fd"])
    assert r.stdout.split() == ["0", "1", "2", "3"]


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_cwd_through_leaked_fd_fails(b: Bundle, fd: int) -> None:
    # CVE-2024-21626: a cwd of /proc/self/fd/N must never land outside the container.
    r = b.run(["true"], process__cwd=f"/proc/self/fd/{fd}")
    assert r.returncode != 0


def test_env_cwd_and_sysctl(b: Bundle) -> None:
    r = b.sh("echo $FOO; pwd; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
             process__env=["PATH=/bin", "FOO=bar baz"], process__cwd="/var/work")
    assert r.stdout.split("\n")[:3] == ["bar baz", "/var/work", "0"], r.stderr


def test_network_namespace_has_only_loopback(b: Bundle) -> None:
    r = b.run(["ls", "/sys/class/net"])
    assert r.stdout.split() == ["lo"]


def test_pivot_root_hides_host(b: Bundle, tmp_path: str) -> None:
    sentinel = os.path.join(str(tmp_path), "host-sentinel")
    with open(sentinel, "w") as f:
        f.write("secret")
    # chroot-escape attempt of the classic kind: chroot into a subdir, then climb with ..
    r = b.sh(f"mkdir -p /x; cd /; ls {sentinel} 2>&1; cat /proc/1/mountinfo | grep -c ' / / ' ;"
             f" chroot /x /bin/busybox ls {sentinel} 2>&1; ls ../../../{sentinel} 2>&1")
    assert "secret" not in r.stdout
    assert r.stdout.count("No such file") >= 2


def test_rlimits(b: Bundle) -> None:
    r = b.sh("ulimit -n; ulimit -Hn", process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}])
    assert r.stdout.split() == ["512", "1024"], r.stderr


def test_signals_start_at_default(b: Bundle) -> None:
    # Python (the runtime) ignores SIGPIPE: the container must not inherit that, nor any mask
    r = b.sh("grep -E 'SigIgn|SigBlk' /proc/self/status; yes | head -n 1")
    assert "SigIgn:\t0000000000000000" in r.stdout and "SigBlk:\t0000000000000000" in r.stdout
    assert r.stdout.endswith("y\n") and r.returncode == 0


def test_no_pivot(b: Bundle) -> None:
    b.write(b.config(["sh", "-c", "echo $$; ls /"]))
    from tests import leaks

    r = b.cli("run", "--no-pivot", leaks.name("c"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "1" and "bin" in r.stdout.split()


def test_join_network_namespace_by_path(b: Bundle) -> None:
    import json as _json

    from tests import leaks

    first = leaks.name("c")
    b.write(b.config(["sleep", "30"]))
    assert b.cli("run", "-d", first).returncode == 0
    try:
        pid = _json.loads(b.cli("state", first).stdout)["pid"]
        ns = [n if n["type"] != "network" else {"type": "network", "path": f"/proc/{pid}/ns/net"}
              for n in b.config(["true"])["linux"]["namespaces"]]
        r = b.run(["readlink", "/proc/self/ns/net"], linux__namespaces=ns)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == os.readlink(f"/proc/{pid}/ns/net")
    finally:
        b.cli("delete", "-f", first)
