"""spec.build(): Config + HostConfig -> the OCI spec, as moby's createSpec builds it.

Unit tests check the spec (pure and fast); the root tests run the spec with berth-runtime on the real
kernel and look at the process from inside: its user and groups, environment, capabilities, limits,
namespaces and mounts."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from berth.daemon.createconfig import DaemonOptions, HostFeatures
from berth.daemon.spec import ContainerView, build, normalize, replace_or_append_env, resources_update
from berth.errors import InvalidArgument
from berth.runtime import caps
from berth.runtime.spec import DEFAULT_PATH_ENV, DEVICE_RULES, READONLY_PATHS
from tests import leaks
from tests.daemon.test_createconfig import CLI_BODY

CID = "fedcba9876543210" * 4
HOST_CAPS = tuple(c for c in caps.CAPS if c != "CAP_SYS_RESOURCE")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
GROUP = "root:x:0:\ntty:x:5:\nusers:x:100:user\nuser:x:1000:\nextra:x:2000:user\n"


def opts(**kw: Any) -> DaemonOptions:
    base: dict[str, Any] = {"host_caps": HOST_CAPS, "daemon_hard_rlimits": {"nofile": 20000}, "oom_score_adj_min": 0,
                            "host_hostname": "hosty", "ncpu": 2, "features": HostFeatures(cpus="0-1", mems="0"),
                            "cgroup_parent": "berth"}
    base.update(kw)
    return DaemonOptions(**base)


@pytest.fixture
def root(tmp_path: Any) -> str:
    r = os.path.join(tmp_path, "rootfs")
    os.makedirs(os.path.join(r, "etc"))
    with open(os.path.join(r, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(r, "etc/group"), "w") as f:
        f.write(GROUP)
    return r


@pytest.fixture
def files(tmp_path: Any) -> dict[str, str]:
    out = {}
    for name in ("hostname", "hosts", "resolv.conf"):
        p = os.path.join(tmp_path, name)
        with open(p, "w") as f:
            f.write("x\n")
        out["/etc/" + name] = p
    return out


def make(root: str, files: dict[str, str], config: dict[str, Any] | None = None, image: dict[str, Any] | None = None,
         daemon: DaemonOptions | None = None, cid: str = CID, **host: Any) -> dict[str, Any]:
    """normalize a CLI-shaped body, then build: the daemon's two calls, in order."""
    d = daemon or opts()
    body = copy.deepcopy(CLI_BODY)
    body.update(config or {})
    body["HostConfig"].update(host)
    cfg, hc, _ = normalize(body, {"Cmd": ["sh"]} if image is None else image, name="n", cid=cid, daemon=d)
    return build(ContainerView(cid, "n", cfg, hc), rootfs=root, files=files, daemon=d)


def mount(spec: dict[str, Any], dest: str) -> dict[str, Any]:
    found = [m for m in spec["mounts"] if m["destination"] == dest]
    assert len(found) == 1, (dest, spec["mounts"])
    return found[0]


# --- the default container ------------------------------------------------------------------

def test_default_spec(root: str, files: dict[str, str]) -> None:
    s = make(root, files)
    p = s["process"]
    assert p["args"] == ["sh"] and p["cwd"] == "/" and p["terminal"] is False
    assert p["env"] == [DEFAULT_PATH_ENV, f"HOSTNAME={CID[:12]}", "HOME=/root"]
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert p["capabilities"] == {"bounding": list(caps.DOCKER_DEFAULT), "effective": list(caps.DOCKER_DEFAULT),
                                 "permitted": list(caps.DOCKER_DEFAULT)}
    assert p["noNewPrivileges"] is False and p["oomScoreAdj"] == 0 and "rlimits" not in p
    assert s["root"] == {"path": root, "readonly": False}
    assert s["hostname"] == CID[:12]
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert mount(s, "/dev/shm")["options"] == ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]
    assert mount(s, "/etc/hosts") == {"destination": "/etc/hosts", "type": "bind", "source": files["/etc/hosts"],
                                      "options": ["rbind", "rprivate"]}
    linux = s["linux"]
    assert linux["namespaces"] == [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")]
    assert linux["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}
    assert linux["cgroupsPath"] == f"/berth/{CID}"
    assert linux["resources"] == {"devices": DEVICE_RULES, "memory": {"disableOOMKiller": False},
                                  "cpu": {"shares": 0}, "blockIO": {"weight": 0}}
    assert linux["readonlyPaths"] == READONLY_PATHS and "/proc/kcore" in linux["maskedPaths"]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "devices" not in linux
    json.dumps(s)  # serialisable as config.json


def test_entrypoint_cmd_env_tty_and_workdir(root: str, files: dict[str, str]) -> None:
    s = make(root, files, {"Entrypoint": ["/bin/tool", "--flag"], "Cmd": ["arg"], "Env": ["PATH=/mine", "A=1", "HOME"],
                           "Tty": True, "WorkingDir": "/work//dir/"})
    p = s["process"]
    assert p["args"] == ["/bin/tool", "--flag", "arg"]
    assert p["env"] == ["PATH=/mine", f"HOSTNAME={CID[:12]}", "TERM=xterm", "A=1", "HOME=/root"]
    assert p["terminal"] is True and p["cwd"] == "/work/dir"
    assert "consoleSize" not in p
    p = make(root, files, {"Tty": True}, ConsoleSize=[30, 100])["process"]
    assert p["consoleSize"] == {"height": 30, "width": 100}
    assert "consoleSize" not in make(root, files, ConsoleSize=[30, 100])["process"]  # only with a tty


def test_replace_or_append_env() -> None:
    assert replace_or_append_env(["A=1", "B=2"], ["B=3", "C=4", "A", "D"]) == ["B=3", "C=4"]


def test_init(root: str, files: dict[str, str], tmp_path: Any) -> None:
    tini = os.path.join(tmp_path, "tini")
    open(tini, "w").close()
    s = make(root, files, {"Cmd": ["sleep", "1"]}, daemon=opts(init_path=tini), Init=True)
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    assert mount(s, "/sbin/docker-init") == {"destination": "/sbin/docker-init", "type": "bind", "source": tini,
                                             "options": ["bind", "ro"]}
    # the daemon-wide --init, and Init=false overriding it; never with another pid namespace
    assert make(root, files, daemon=opts(init_path=tini, init=True))["process"]["args"][0] == "/sbin/docker-init"
    assert make(root, files, daemon=opts(init_path=tini, init=True), Init=False)["process"]["args"] == ["sh"]
    assert make(root, files, daemon=opts(init_path=tini), Init=True, PidMode="host")["process"]["args"] == ["sh"]


# --- user ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "group_add", "user", "home"), [
    ("user", None, {"uid": 1000, "gid": 1000, "additionalGids": [1000, 100, 2000]}, "/home/user"),
    ("user:users", ["extra", "77"], {"uid": 1000, "gid": 100, "additionalGids": [100, 2000, 77]}, "/home/user"),
    ("4242:4343", None, {"uid": 4242, "gid": 4343, "additionalGids": [4343]}, "/"),
])
def test_user(root: str, files: dict[str, str], who: str, group_add: list[str] | None, user: dict, home: str) -> None:
    s = make(root, files, {"User": who}, GroupAdd=group_add)
    assert s["process"]["user"] == user
    assert s["process"]["env"][-1] == f"HOME={home}"
    # not root: Docker leaves effective and permitted empty (execve would clear them anyway)
    assert s["process"]["capabilities"] == {"bounding": list(caps.DOCKER_DEFAULT)}


def test_unknown_user_is_an_error(root: str, files: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user nobody: no matching entries in passwd file"):
        make(root, files, {"User": "nobody"})


def test_user_is_never_looked_up_on_the_host(root: str, files: dict[str, str]) -> None:
    """`daemon` exists in the host's passwd, not in the container's: it must not resolve."""
    with pytest.raises(InvalidArgument, match="unable to find user daemon"):
        make(root, files, {"User": "daemon"})
    os.unlink(os.path.join(root, "etc/passwd"))
    os.symlink("/etc/passwd", os.path.join(root, "etc/passwd"))  # resolves inside the root: missing
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        make(root, files, {"User": "root"})


# --- capabilities, seccomp, no-new-privileges ---------------------------------------------------

def test_cap_add_drop(root: str, files: dict[str, str]) -> None:
    s = make(root, files, CapAdd=["NET_ADMIN"], CapDrop=["CAP_CHOWN", "mknod"])
    want = [c for c in caps.DOCKER_DEFAULT if c not in ("CAP_CHOWN", "CAP_MKNOD")] + ["CAP_NET_ADMIN"]
    assert s["process"]["capabilities"]["bounding"] == want
    assert s["process"]["capabilities"]["effective"] == want
    # seccomp follows the bounding set: CAP_SYS_ADMIN opens mount, unshare, …
    plain = {n for r in make(root, files)["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    admin = {n for r in make(root, files, CapAdd=["SYS_ADMIN"])["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert "mount" in admin - plain


def test_privileged(root: str, files: dict[str, str]) -> None:
    s = make(root, files, Privileged=True)
    assert s["process"]["capabilities"]["bounding"] == list(HOST_CAPS)
    linux = s["linux"]
    assert "seccomp" not in linux and "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    paths = {d["path"] for d in linux["devices"]}
    assert "/dev/null" in paths and not any(p.startswith("/dev/pts/") for p in paths)
    null = next(d for d in linux["devices"] if d["path"] == "/dev/null")
    assert (null["type"], null["major"], null["minor"], null["fileMode"]) == ("c", 1, 3, 0o666)
    assert "ro" not in mount(s, "/sys")["options"] and "ro" not in mount(s, "/sys/fs/cgroup")["options"]


def test_seccomp_choices(root: str, files: dict[str, str]) -> None:
    assert "seccomp" not in make(root, files, SecurityOpt=["seccomp=unconfined"])["linux"]
    custom = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    s = make(root, files, SecurityOpt=["seccomp=" + json.dumps(custom)])
    assert s["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW",
                                     "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    # the daemon's --seccomp-profile applies when the container names none
    s = make(root, files, daemon=opts(seccomp_profile_override=json.dumps(custom)))
    assert s["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "seccomp" not in make(root, files, daemon=opts(seccomp_profile_override="unconfined"))["linux"]
    assert make(root, files, SecurityOpt=["seccomp=builtin"], daemon=opts(seccomp_profile_override="unconfined"))[
        "linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    # privileged: none, unless a profile is named
    assert make(root, files, Privileged=True, SecurityOpt=["seccomp=" + json.dumps(custom)])["linux"]["seccomp"]


def test_no_new_privileges(root: str, files: dict[str, str]) -> None:
    assert make(root, files, SecurityOpt=["no-new-privileges"])["process"]["noNewPrivileges"] is True
    assert make(root, files, daemon=opts(no_new_privileges=True))["process"]["noNewPrivileges"] is True
    assert make(root, files, SecurityOpt=["no-new-privileges=false"],
                daemon=opts(no_new_privileges=True))["process"]["noNewPrivileges"] is False


# --- rlimits, oom score, sysctls, resources -----------------------------------------------------

def test_rlimits(root: str, files: dict[str, str]) -> None:
    d = opts(default_ulimits=[{"Name": "nproc", "Soft": 100, "Hard": 200}, {"Name": "nofile", "Soft": 1, "Hard": 1}])
    s = make(root, files, daemon=d, Ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                              {"Name": "core", "Soft": -1, "Hard": -1}])
    assert s["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
        {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1},
        {"type": "RLIMIT_NPROC", "hard": 200, "soft": 100},
    ]
    # a default ulimit above what the daemon holds is clamped too
    s = make(root, files, daemon=opts(default_ulimits=[{"Name": "nofile", "Soft": -1, "Hard": -1}]))
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]


def test_oom_score_adj_is_clamped_at_build_too(root: str, files: dict[str, str]) -> None:
    body = copy.deepcopy(CLI_BODY)
    cfg, hc, _ = normalize(body, {"Cmd": ["sh"]}, name="n", cid=CID, daemon=opts(oom_score_adj_min=-1000))
    hc["OomScoreAdj"] = -800  # recorded on a host that allowed it
    s = build(ContainerView(CID, "n", cfg, hc), rootfs=root, files=files, daemon=opts(oom_score_adj_min=0))
    assert s["process"]["oomScoreAdj"] == 0
    assert make(root, files, OomScoreAdj=300)["process"]["oomScoreAdj"] == 300


def test_sysctls_domainname_annotations(root: str, files: dict[str, str]) -> None:
    s = make(root, files, {"Domainname": "example.org"}, Sysctls={"net.ipv4.ip_unprivileged_port_start": "1024",
                                                                   "kernel.shmmax": "1"}, Annotations={"a": "b"})
    assert s["linux"]["sysctl"] == {"kernel.domainname": "example.org", "net.ipv4.ping_group_range": "0 2147483647",
                                    "net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1"}
    assert s["annotations"] == {"a": "b"}


def test_resources(root: str, files: dict[str, str]) -> None:
    s = make(root, files, Memory=64 << 20, MemoryReservation=32 << 20, MemorySwappiness=10, OomKillDisable=True,
             NanoCpus=1_500_000_000, CpusetCpus="1", CpusetMems="0", CpuShares=512, PidsLimit=100, BlkioWeight=300)
    r = s["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10,
                           "disableOOMKiller": True}
    assert r["cpu"] == {"shares": 512, "cpus": "1", "mems": "0", "quota": 150000, "period": 100000}
    assert r["pids"] == {"limit": 100} and r["blockIO"] == {"weight": 300}
    r = make(root, files, CpuPeriod=50000, CpuQuota=20000, Memory=64 << 20, MemorySwap=-1)["linux"]["resources"]
    assert r["cpu"] == {"shares": 0, "quota": 20000, "period": 50000}
    assert r["memory"] == {"limit": 64 << 20, "disableOOMKiller": False}  # -1: unlimited swap, nothing set
    r = make(root, files, BlkioDeviceReadBps=[{"Path": "/dev/null", "Rate": 1024}])["linux"]["resources"]
    assert r["blockIO"]["throttleReadBpsDevice"] == [{"major": 1, "minor": 3, "rate": 1024}]


def test_cgroup_parent(root: str, files: dict[str, str]) -> None:
    assert make(root, files, CgroupParent="/mine/../sub")["linux"]["cgroupsPath"] == f"/sub/{CID}"
    assert make(root, files, daemon=opts(cgroup_parent=""))["linux"]["cgroupsPath"] == f"/{CID}"


def test_devices(root: str, files: dict[str, str]) -> None:
    s = make(root, files, Devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                    "CgroupPermissions": "rw"}], DeviceCgroupRules=["b 8:* r"])
    assert s["linux"]["devices"] == [{"type": "c", "path": "/dev/mynull", "major": 1, "minor": 3, "fileMode": 0o666,
                                      "uid": 0, "gid": 0}]
    assert s["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "minor": -1, "access": "r"}]
    with pytest.raises(InvalidArgument, match='adding custom device "/dev/berth-nope": lstat /dev/berth-nope: no such'):
        make(root, files, Devices=[{"PathOnHost": "/dev/berth-nope", "PathInContainer": "/dev/x",
                                    "CgroupPermissions": "rwm"}])


# --- namespaces -----------------------------------------------------------------------------

def test_host_namespaces(root: str, files: dict[str, str]) -> None:
    s = make(root, files, NetworkMode="host", PidMode="host", IpcMode="host", UTSMode="host")
    assert s["linux"]["namespaces"] == [{"type": "mount"}]
    assert "sysctl" not in s["linux"] and "hostname" not in s
    assert mount(s, "/dev/shm") == {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                                    "options": ["rbind", "rprivate"]}
    assert s["process"]["env"][1] == "HOSTNAME=hosty"


def test_joined_namespaces_come_from_the_daemon(root: str, files: dict[str, str]) -> None:
    asked = []

    def ns(ref: str, kind: str) -> str:
        asked.append((ref, kind))
        return f"/proc/4242/ns/{kind}"

    s = make(root, files, daemon=opts(container_ns=ns), NetworkMode="container:web", PidMode="container:db",
             IpcMode="container:db")
    assert s["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network", "path": "/proc/4242/ns/net"}, {"type": "uts"},
        {"type": "pid", "path": "/proc/4242/ns/pid"}, {"type": "ipc", "path": "/proc/4242/ns/ipc"}]
    assert asked == [("web", "net"), ("db", "pid"), ("db", "ipc")]
    assert "sysctl" not in s["linux"]  # the other container's network namespace is not ours to tune
    with pytest.raises(InvalidArgument, match="joining another container's net namespace is not supported"):
        make(root, files, NetworkMode="container:web")


def test_cgroup_namespace_and_ipc_none(root: str, files: dict[str, str]) -> None:
    s = make(root, files, CgroupnsMode="private", IpcMode="none")
    assert s["linux"]["namespaces"][-1] == {"type": "cgroup"}
    assert not any(m["destination"] == "/dev/shm" for m in s["mounts"])
    s = make(root, files, daemon=opts(cgroup_version=2))
    assert {"type": "cgroup"} in s["linux"]["namespaces"]


# --- mounts -----------------------------------------------------------------------------------

def test_binds_mounts_and_tmpfs_in_dockers_order(root: str, files: dict[str, str], tmp_path: Any) -> None:
    src = os.path.join(tmp_path, "src")
    os.makedirs(src)
    created = os.path.join(tmp_path, "created", "deep")
    s = make(root, files, Binds=[f"{src}:/data/sub:ro", f"{created}:/data", f"{src}:/opt/x:rw"],
             Mounts=[{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20}},
                     {"Type": "bind", "Source": src, "Target": "/b", "ReadOnly": True,
                      "BindOptions": {"NonRecursive": True}}],
             Tmpfs={"/run": "exec,size=2m"})
    assert os.path.isdir(created)  # -v creates a missing source, as Docker does at start
    # binds, then the /etc files, then tmpfs; stably by depth so a parent comes before its children
    assert [m["destination"] for m in s["mounts"][7:]] == [
        "/data", "/b", "/scratch", "/run", "/data/sub", "/opt/x", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert mount(s, "/data/sub")["options"] == ["rbind", "rro", "rprivate"]  # Docker >= 25: recursively
    assert mount(s, "/opt/x")["options"] == ["rbind", "rprivate"]
    assert mount(s, "/b")["options"] == ["bind", "rro", "rprivate"]
    assert mount(s, "/run") == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "rprivate", "exec", "size=2m"]}
    assert mount(s, "/scratch")["options"] == ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
    assert "rootfsPropagation" not in s["linux"]


def test_read_only_binds_recursive_unless_asked_or_impossible(root: str, files: dict[str, str], tmp_path: Any) -> None:
    src = str(tmp_path)

    def ro_opt(bind_options: dict[str, bool] | None, *, old_api: bool = False, unsupported: str | None = None) -> str:
        d = opts()
        body = copy.deepcopy(CLI_BODY)
        m: dict[str, Any] = {"Type": "bind", "Source": src, "Target": "/m", "ReadOnly": True}
        if bind_options is not None:
            m["BindOptions"] = bind_options
        body["HostConfig"].update(Binds=[f"{src}:/v:ro"], Mounts=[m])
        cfg, hc, _ = normalize(body, {"Cmd": ["sh"]}, name="n", cid=CID, daemon=d)
        view = ContainerView(CID, "n", cfg, hc, ro_non_recursive_default=old_api, rro_unsupported=unsupported)
        s = build(view, rootfs=root, files=files, daemon=d)
        return f'{mount(s, "/v")["options"][1]} {mount(s, "/m")["options"][1]}'

    assert ro_opt(None) == "rro rro"
    assert ro_opt({"ReadOnlyNonRecursive": True}) == "rro ro"  # bind-recursive=writable
    assert ro_opt({"ReadOnlyForceRecursive": True}) == "rro rro"  # bind-recursive=readonly
    assert ro_opt(None, old_api=True) == "ro ro"  # created through API < 1.44
    assert ro_opt(None, unsupported="rro is not supported by runtime \"x\"") == "ro ro"
    with pytest.raises(InvalidArgument, match='rro is not supported by runtime "x"'):
        ro_opt({"ReadOnlyForceRecursive": True}, unsupported='rro is not supported by runtime "x"')
    with pytest.raises(InvalidArgument, match="mount options conflict"):
        ro_opt({"ReadOnlyForceRecursive": True, "ReadOnlyNonRecursive": True})


def _shared(path: str) -> bool:
    from berth.daemon.spec import _source_mount

    return any(o.startswith("shared:") for o in _source_mount(path)[1])


@pytest.mark.root
def test_shared_bind_makes_the_root_shared(root: str, files: dict[str, str], tmp_path: Any) -> None:
    import subprocess

    src = os.path.join(tmp_path, "shared")
    os.makedirs(src)
    subprocess.run(["mount", "-t", "tmpfs", "berth-test", src], check=True)
    try:
        subprocess.run(["mount", "--make-shared", src], check=True)
        assert _shared(src)
        s = make(root, files, Binds=[f"{src}:/x:rshared"], Mounts=[
            {"Type": "bind", "Source": src, "Target": "/y", "BindOptions": {"Propagation": "rslave"}}])
        assert mount(s, "/x")["options"] == ["rbind", "rshared"]
        assert mount(s, "/y")["options"] == ["rbind", "rslave"]
        assert s["linux"]["rootfsPropagation"] == "shared"
        s = make(root, files, Binds=[f"{src}:/y:rslave"])
        assert s["linux"]["rootfsPropagation"] == "rslave"
    finally:
        subprocess.run(["umount", src], check=True)


def test_propagation_needs_a_propagating_source(root: str, files: dict[str, str], tmp_path: Any) -> None:
    src = str(tmp_path)
    if _shared(src):
        pytest.skip("the tmp dir is on a shared mount here")
    with pytest.raises(InvalidArgument, match=r"is mounted on .* but it is not a shared mount"):
        make(root, files, Binds=[f"{src}:/x:rshared"])
    # the daemon's own root falls back quietly (moby), keeping rslave on the mount
    s = make(root, files, Binds=[f"{src}:/x"], daemon=opts(data_root=os.path.join(src, "data")))
    assert mount(s, "/x")["options"] == ["rbind", "rslave"]
    assert "rootfsPropagation" not in s["linux"]


def test_user_mounts_replace_defaults(root: str, files: dict[str, str], tmp_path: Any) -> None:
    s = make(root, files, Tmpfs={"/dev/shm": "size=1m"}, ShmSize=10 << 20)
    assert mount(s, "/dev/shm")["options"] == ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
    d = os.path.join(tmp_path, "dev")
    os.makedirs(d)
    s = make(root, files, Binds=[f"{d}:/dev"])
    assert [m["destination"] for m in s["mounts"] if m["destination"].startswith("/dev")] == ["/dev"]
    assert mount(make(root, files, ShmSize=1 << 30), "/dev/shm")["options"][-1] == "size=1073741824"


def test_user_file_over_an_etc_file(root: str, files: dict[str, str], tmp_path: Any) -> None:
    mine = os.path.join(tmp_path, "myhosts")
    open(mine, "w").close()
    s = make(root, files, Binds=[f"{mine}:/etc/hosts:ro"])
    assert mount(s, "/etc/hosts") == {"destination": "/etc/hosts", "type": "bind", "source": mine,
                                      "options": ["rbind", "rro", "rprivate"]}


def test_read_only_root(root: str, files: dict[str, str], tmp_path: Any) -> None:
    src = os.path.join(tmp_path, "rw")
    os.makedirs(src)
    s = make(root, files, ReadonlyRootfs=True, Binds=[f"{src}:/rw"], Tmpfs={"/run": ""})
    assert s["root"]["readonly"] is True
    ro = {m["destination"] for m in s["mounts"] if {"ro", "rro"} & set(m["options"])}
    assert ro == {"/sys", "/sys/fs/cgroup", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}
    assert "ro" not in mount(s, "/rw")["options"] and "ro" not in mount(s, "/run")["options"]


def test_missing_mount_source_is_an_error_at_start(root: str, files: dict[str, str], tmp_path: Any) -> None:
    src = os.path.join(tmp_path, "gone")
    os.makedirs(src)
    body = copy.deepcopy(CLI_BODY)
    body["HostConfig"]["Mounts"] = [{"Type": "bind", "Source": src, "Target": "/x"}]
    cfg, hc, _ = normalize(body, {"Cmd": ["sh"]}, name="n", cid=CID, daemon=opts())
    os.rmdir(src)
    with pytest.raises(InvalidArgument, match=f"bind source path does not exist: {src}"):
        build(ContainerView(CID, "n", cfg, hc), rootfs=root, files=files, daemon=opts())


# --- the spec on the real kernel ----------------------------------------------------------------

PROBE = r"""
echo "id=$(id -u):$(id -g):$(id -G)"
echo "cwd=$(pwd)"
echo "hostname=$(hostname)"
echo "etc_hostname=$(cat /etc/hostname)"
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo "nofile=$(ulimit -Sn):$(ulimit -Hn)"
echo "port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"
echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"
touch /data/w 2>/dev/null && echo data=rw || echo data=ro
touch /run/w 2>/dev/null && echo run=rw || echo run=ro
touch /rootfile 2>/dev/null && echo root=rw || echo root=ro
env | grep -E '^(HOME|HOSTNAME|TERM|A|PATH)=' | sort
"""


@pytest.mark.root
@pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"), reason="tini-static is not installed")
def test_the_spec_runs_on_the_real_kernel(tmp_path: Any, files: dict[str, str]) -> None:
    from tests.runtime.rt import make_bundle

    bundle = make_bundle(str(tmp_path))
    data = os.path.join(tmp_path, "data")
    os.makedirs(data)
    cid = leaks.name("berth-spec")
    d = opts(cgroup_parent="", init_path="/usr/bin/tini-static", daemon_hard_rlimits={"nofile": 4096})
    body = copy.deepcopy(CLI_BODY)
    body.update({"User": "user", "WorkingDir": "/home/user", "Env": ["A=b"], "Entrypoint": ["sh", "-c"],
                 "Cmd": [PROBE]})
    body["HostConfig"].update({"Init": True, "CapDrop": ["ALL"], "CapAdd": ["KILL", "CHOWN"],
                               "ReadonlyRootfs": True, "Binds": [f"{data}:/data:ro"], "Tmpfs": {"/run": "size=1m"},
                               "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1 << 20}],
                               "SecurityOpt": ["no-new-privileges"], "GroupAdd": ["tty"], "NetworkMode": "none"})
    cfg, hc, warnings = normalize(body, {"Cmd": ["sh"]}, name="n", cid=cid, daemon=d)
    assert warnings and "Limited to 4096" in warnings[0]
    with open(files["/etc/hostname"], "w") as f:
        f.write(cfg["Hostname"] + "\n")
    spec = build(ContainerView(cid, "n", cfg, hc), rootfs=bundle.rootfs, files=files, daemon=d)
    bundle.write(spec)
    r = bundle.cli("run", "--bundle", bundle.path, cid)
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert got["id"] == "1000:1000:1000 5 100 2000"  # passwd user, its groups, --group-add tty
    assert got["cwd"] == "/home/user"
    assert got["hostname"] == cid[:12] and got["etc_hostname"] == cid[:12]
    mask = caps.to_mask(["CAP_KILL", "CAP_CHOWN"])
    assert int(got["CapBnd"], 16) == mask and int(got["CapEff"], 16) == 0  # non-root: bounding only
    assert got["NoNewPrivs"] == "1" and got["Seccomp"] == "2"
    assert got["nofile"] == "512:4096"  # clamped to the daemon's hard limit
    assert got["port_start"] == "0"  # Docker's sysctl for a private network namespace
    assert got["pid1"].startswith("/sbin/docker-init -- sh -c")
    assert (got["data"], got["run"], got["root"]) == ("ro", "rw", "ro")
    assert got["HOME"] == "/home/user" and got["A"] == "b" and got["HOSTNAME"] == cid[:12]
    assert got["PATH"] == DEFAULT_PATH_ENV.split("=", 1)[1]
    assert "TERM" not in got


@pytest.mark.root
def test_privileged_spec_runs_on_the_real_kernel(tmp_path: Any, files: dict[str, str]) -> None:
    """Docker 20.10 cannot start --privileged on this host (it asks for CAP_SYS_RESOURCE); berth can."""
    from tests.runtime.rt import make_bundle

    bundle = make_bundle(str(tmp_path))
    cid = leaks.name("berth-spec")
    d = DaemonOptions.detect(cgroup_parent="")
    body = copy.deepcopy(CLI_BODY)
    body.update({"Cmd": ["sh", "-c", "grep CapEff /proc/self/status; ls /dev/null /dev/full >/dev/null && echo devs; "
                                     "grep Seccomp: /proc/self/status; touch /sys/berth-probe 2>&1 | head -c0; "
                                     "mount | grep ' /sys ' | head -1"]})
    body["HostConfig"].update({"Privileged": True, "NetworkMode": "none"})
    cfg, hc, _ = normalize(body, {}, name="n", cid=cid, daemon=d)
    bundle.write(build(ContainerView(cid, "n", cfg, hc), rootfs=bundle.rootfs, files=files, daemon=d))
    r = bundle.cli("run", "--bundle", bundle.path, cid)
    assert r.returncode == 0, r.stderr
    eff = int(r.stdout.split("CapEff:")[1].split()[0], 16)
    assert eff == caps.to_mask(caps.host_bounding())
    assert "devs" in r.stdout and "Seccomp:\t0" in r.stdout
    assert "(rw," in r.stdout  # /sys is writable for a privileged container


def test_build_does_not_change_its_input(root: str, files: dict[str, str]) -> None:
    body = copy.deepcopy(CLI_BODY)
    body["HostConfig"]["Tmpfs"] = {"/run": ""}
    cfg, hc, _ = normalize(body, {"Cmd": ["sh"]}, name="n", cid=CID, daemon=opts())
    before = copy.deepcopy((cfg, hc))
    build(ContainerView(CID, "n", cfg, hc), rootfs=root, files=files, daemon=opts())
    assert (cfg, hc) == before



# --- docker update --------------------------------------------------------------------------------

def _created(**host: Any) -> dict[str, Any]:
    body = copy.deepcopy(CLI_BODY)
    body["HostConfig"].update(host)
    return normalize(body, {"Cmd": ["sh"]}, name="n", cid=CID, daemon=opts())[1]


# what `docker update --cpus 0.5` (CLI 28) sends, but for NanoCpus: every Resources field, zero or null
UPDATE_BODY: dict[str, Any] = json.loads("""{"CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"",
"BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,
"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"",
"CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,
"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}""")


def test_update_changes_only_what_is_set() -> None:
    hc = _created(Memory=64 << 20, CpuShares=512, PidsLimit=10)
    oci, warnings = resources_update(hc, {**UPDATE_BODY, "NanoCpus": 500_000_000, "PidsLimit": -1,
                                          "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
                                     daemon=opts())
    assert warnings == []
    assert oci == {"cpu": {"period": 100000, "quota": 50000}, "pids": {"limit": -1}}
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"], hc["NanoCpus"], hc["PidsLimit"]) == \
        (64 << 20, 128 << 20, 512, 500_000_000, 0)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    oci, _ = resources_update(hc, {**UPDATE_BODY, "Memory": 100 << 20, "MemorySwap": 200 << 20}, daemon=opts())
    assert oci == {"memory": {"limit": 100 << 20, "swap": 200 << 20}}
    assert (hc["Memory"], hc["MemorySwap"]) == (100 << 20, 200 << 20)


@pytest.mark.parametrize(("created", "update", "message"), [
    ({"Memory": 50 << 20}, {"Memory": 200 << 20}, "Cannot update container x: Memory limit should be smaller than "
     "already set memoryswap limit, update the memoryswap at the same time"),
    ({"CpuPeriod": 50000}, {"NanoCpus": 10**9},
     "Cannot update container x: Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"),
    ({"NanoCpus": 10**9}, {"CpuQuota": 20000},
     "Cannot update container x: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"),
    ({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}},
     "Cannot update container x: Restart policy cannot be updated because AutoRemove is enabled for the container"),
    ({}, {"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
    ({}, {"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
])
def test_update_errors(created: dict[str, Any], update: dict[str, Any], message: str) -> None:
    hc = _created(**created)
    before = copy.deepcopy(hc)
    with pytest.raises(InvalidArgument) as e:
        resources_update(hc, {**UPDATE_BODY, **update}, daemon=opts(), cid="x")
    assert str(e.value) == message
    assert hc == before  # nothing applied


def test_update_discards_what_the_host_lacks() -> None:
    hc = _created()
    oci, warnings = resources_update(hc, {**UPDATE_BODY, "BlkioWeight": 300},
                                     daemon=opts(features=HostFeatures(blkio_weight=False)))
    assert oci == {} and hc["BlkioWeight"] == 0
    assert warnings == ["Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                        "Weight discarded."]
