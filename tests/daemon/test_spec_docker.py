"""Oracle: berth's normalize() and build() against Docker itself (dockerd 20.10 from Debian, private).

For each set of `docker create` flags, the docker CLI 28 talks to a private dockerd through a logging
relay, so berth sees the very body Docker received. Then:
  (a) `docker inspect`'s Config and HostConfig must equal normalize()'s output for that body;
  (b) the config.json dockerd handed its runtime (captured by a wrapper runtime around runc, which
      also catches specs runc then refuses) must match build()'s output field by field.

Differences accepted, and why:
  - HostConfig.KernelMemory/KernelMemoryTCP and Config.OnBuild=null: API 1.41 fields; berth speaks the
    current API (moby removed the first two and made OnBuild omitempty).
  - MaskedPaths: berth masks current moby's list (adds /proc/interrupts, /sys/devices/virtual/powercap
    and each cpu's thermal_throttle; GHSA-6fw5-f8r9-fgfm, GHSA-jq35-85cj-fj4p), a superset of 20.10's.
  - seccomp: berth resolves its own (newer) copy of Docker's default profile; only the default action
    is compared for it. A custom profile must come out identical.
  - privileged capabilities: 20.10 asks for every capability up to CAP_AUDIT_READ, including
    CAP_SYS_RESOURCE which this host lacks, so runc refuses to start it; berth grants the host's
    bounding set (current moby does the same).
  - env: berth adds HOME from the container's passwd when the image sets none; runc does the same
    inside the container, so the process sees the same environment.
  - the network namespace: --network host joins /var/run/docker/netns/default in Docker, berth omits
    the namespace (the same host namespace); no libnetwork prestart hook either.
  - ociVersion, root.path (different storage) and false/empty fields Go omits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from berth.daemon.createconfig import DaemonOptions
from berth.daemon.spec import ContainerView, build, normalize, resources_update
from tests.dockerd import Dockerd
from tests.rootfs import make_busybox_rootfs

DOCKER = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker")
_MISSING = shutil.which("dockerd") is None or DOCKER is None or not os.path.exists("/usr/sbin/runc")
pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(_MISSING, reason="docker.io (dockerd, runc) and a docker CLI are needed")]

CAPTURE_RUNTIME = """#!/bin/sh
# dockerd's runtime: keep each config.json it hands over, then run runc itself.
prev=""; cmd=""; bundle=""; last=""
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle="$a";; esac
  [ "$a" = create ] && cmd=create
  prev="$a"; last="$a"
done
if [ "$cmd" = create ] && [ -n "$bundle" ]; then cp "$bundle/config.json" "{capture}/$last.json"; fi
exec /usr/sbin/runc "$@"
"""


class Relay:
    """A unix-socket relay in front of dockerd that keeps every byte the client sends."""

    def __init__(self, path: str, upstream: str) -> None:
        self.path, self.upstream = path, upstream
        self.streams: list[bytearray] = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(self.upstream)
            buf = bytearray()
            with self.lock:
                self.streams.append(buf)
            threading.Thread(target=self._pipe, args=(client, up, buf), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, keep: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if keep is not None:
                    keep += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def create_bodies(self, route: str = "/containers/create") -> list[dict[str, Any]]:
        """The JSON body of every POST to `route` (a path fragment) seen so far, in order."""
        out = []
        with self.lock:
            streams = [bytes(s) for s in self.streams]
        for data in streams:
            pos = 0
            while (start := data.find(b"POST /", pos)) >= 0:
                end = data.find(b"\r\n\r\n", start)
                head = data[start:end].decode()
                length = next((int(h.split(":", 1)[1]) for h in head.split("\r\n")[1:]
                               if h.lower().startswith("content-length:")), 0)
                if route in head.split("\r\n")[0]:
                    out.append(json.loads(data[end + 4:end + 4 + length]))
                pos = end + 4 + length
        return out

    def close(self) -> None:
        self.sock.close()


@dataclass
class Docker:
    base: str
    sock: str
    relay: Relay
    capture: str
    rootfs: str
    image_config: dict[str, Any]

    def cli(self, *args: str, direct: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        host = self.sock if direct else self.relay.path
        assert DOCKER is not None
        r = subprocess.run([DOCKER, "-H", f"unix://{host}", *args], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "DOCKER_CONFIG": os.path.join(self.base, "cli")})
        if check:
            assert r.returncode == 0, r.stderr
        return r


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    base = str(tmp_path_factory.mktemp("dockerd"))
    capture = os.path.join(base, "capture")
    os.makedirs(capture)
    runtime = os.path.join(base, "capture-runtime")
    with open(runtime, "w") as f:
        f.write(CAPTURE_RUNTIME.replace("{capture}", capture))
    os.chmod(runtime, 0o755)
    dockerd = Dockerd(base, extra_args=("--add-runtime", f"capture={runtime}", "--default-runtime", "capture"))
    sock = dockerd.sock
    relay = None
    try:
        dockerd.start()
        relay = Relay(os.path.join(base, "relay.sock"), sock)
        rootfs = make_busybox_rootfs(os.path.join(base, "bbroot"))
        tar = os.path.join(base, "busybox.tar")
        with tarfile.open(tar, "w") as tf:
            tf.add(rootfs, arcname=".")
        d = Docker(base, sock, relay, capture, rootfs, {})
        d.cli("import", "-c", 'CMD ["sh"]', tar, "busybox:latest", direct=True)
        d.image_config = json.loads(d.cli("image", "inspect", "busybox", direct=True).stdout)[0]["Config"]
        # dockerd binds the host network namespace under its exec root on first use: do it now, so
        # that the mount belongs to the daemon's lifetime and not to the first test using it
        d.cli("run", "--rm", "--network", "host", "busybox", "true", direct=True)
        yield d
    finally:
        if relay is not None:
            relay.close()
        dockerd.stop()


def options(d: Docker) -> DaemonOptions:
    return DaemonOptions.detect(cgroup_parent="docker", init_path="/usr/bin/docker-init", runtime_name="capture",
                                data_root=os.path.join(d.base, "root"))


def create(d: Docker, args: list[str], *, start: bool) -> tuple[dict, dict, dict | None, list[str]]:
    """(create body, inspect, captured config.json or None, CLI warnings) for `docker create args`."""
    before = len(d.relay.create_bodies())
    r = d.cli("create", "--network", "none", *args) if "--network" not in args else d.cli("create", *args)
    cid = r.stdout.strip().splitlines()[-1]
    bodies = d.relay.create_bodies()
    assert len(bodies) == before + 1
    spec = None
    try:
        if start:
            d.cli("start", cid, check=False)  # 20.10 cannot start some (privileged); the spec is captured first
            with open(os.path.join(d.capture, cid + ".json")) as f:
                spec = json.load(f)
        inspect = json.loads(d.cli("inspect", cid, direct=True).stdout)[0]
    finally:
        d.cli("rm", "-f", cid, direct=True)
    warnings = [line.removeprefix("WARNING: ") for line in r.stderr.splitlines() if line.startswith("WARNING: ")]
    return bodies[-1], inspect, spec, warnings


def compare_inspect(mine: dict[str, Any], theirs: dict[str, Any], section: str) -> None:
    skip = {"Config": {"OnBuild"}, "HostConfig": {"KernelMemory", "KernelMemoryTCP", "MaskedPaths"}}[section]
    for key in sorted((set(mine) | set(theirs)) - skip):
        assert mine.get(key, "<absent>") == theirs.get(key, "<absent>"), f"{section}.{key}"
    if section == "HostConfig" and theirs.get("MaskedPaths") is not None:
        assert set(theirs["MaskedPaths"]) <= set(mine["MaskedPaths"])


def _falsy_absent(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: d.get(k) or None for k in keys}


def _as_docker_25(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The oracle is dockerd 20.10; since Docker 25 (moby#45278) a read-only bind is "rro" (its
    submounts read-only too) where the kernel and runtime can do it, as here. The one known change;
    it is made in the user-mount loop (WithMounts), which the docker-init bind does not go through."""
    return [dict(m, options=["rro" if o == "ro" else o for o in m["options"]])
            if m["type"] == "bind" and m["destination"] != "/sbin/docker-init" else m for m in mounts]


def compare_spec(mine: dict[str, Any], theirs: dict[str, Any], *, privileged: bool) -> None:
    mp, tp = mine["process"], theirs["process"]
    assert mp["args"] == tp["args"]
    assert mp["cwd"] == tp["cwd"]
    assert mp["user"] == tp["user"]
    assert _falsy_absent(mp, "terminal", "noNewPrivileges", "rlimits") == \
        _falsy_absent(tp, "terminal", "noNewPrivileges", "rlimits")
    assert mp.get("oomScoreAdj", 0) == tp.get("oomScoreAdj", 0)
    home = [e for e in mp["env"] if e.startswith("HOME=")]
    assert mp["env"] == tp["env"] + (home if not any(e.startswith("HOME=") for e in tp["env"]) else [])
    if privileged:
        assert set(tp["capabilities"]["bounding"]) - set(mp["capabilities"]["bounding"]) <= {"CAP_SYS_RESOURCE"}
        assert set(mp["capabilities"]["bounding"]) - set(tp["capabilities"]["bounding"]) <= {
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}  # 20.10 stops at CAP_AUDIT_READ
    else:
        assert mp["capabilities"] == tp["capabilities"]
    assert bool(mine["root"].get("readonly")) == bool(theirs["root"].get("readonly"))
    assert mine.get("hostname") == theirs.get("hostname")
    assert mine["mounts"] == _as_docker_25(theirs["mounts"])
    ml, tl = mine["linux"], theirs["linux"]
    for key in ("sysctl", "resources", "cgroupsPath", "readonlyPaths", "devices", "rootfsPropagation"):
        assert ml.get(key) == tl.get(key), f"linux.{key}"
    assert [n for n in ml["namespaces"] if n["type"] != "network"] == \
        [n for n in tl["namespaces"] if n["type"] != "network"]
    assert any(n["type"] == "network" for n in ml["namespaces"]) == \
        any(n["type"] == "network" and not n.get("path") for n in tl["namespaces"])
    assert set(tl.get("maskedPaths") or []) <= set(ml.get("maskedPaths") or [])
    assert ("seccomp" in ml) == ("seccomp" in tl)
    if "seccomp" in tl:
        assert ml["seccomp"]["defaultAction"] == tl["seccomp"]["defaultAction"]


CASES: dict[str, list[str]] = {
    "many-flags": ["-u", "1000:1000", "-w", "/tmp", "-e", "A=b", "--entrypoint", "sh", "--init", "--cap-add",
                   "NET_ADMIN", "--cap-drop", "CHOWN", "--read-only", "-m", "64m", "--cpus", "1.5", "--pids-limit",
                   "100", "--tmpfs", "/run:size=1m", "-v", "{tmp}/vol:/data:ro", "--ulimit", "nofile=1024:2048",
                   "--sysctl", "net.ipv4.ip_forward=1", "--security-opt", "no-new-privileges", "busybox", "-c",
                   "sleep 100"],
    "privileged": ["--privileged", "busybox", "sleep", "100"],
    "user-and-host-ns": ["-u", "user", "--group-add", "extra", "--ipc", "host", "--pid", "host", "-t", "-i",
                         "busybox", "sleep", "100"],
    "host-network-resources": ["--network", "host", "--uts", "host", "--cap-drop", "ALL", "--cap-add", "KILL",
                               "--oom-score-adj", "100", "--shm-size", "10m", "--cpuset-cpus", "0", "--cpu-shares",
                               "512", "--cpu-period", "50000", "--cpu-quota", "20000", "--memory-reservation", "10m",
                               "--memory-swappiness", "10", "--oom-kill-disable", "-m", "32m", "--memory-swap", "-1",
                               "busybox", "sleep", "100"],
    "mounts-devices-config": ["--tmpfs", "/dev/shm:size=2m", "--hostname", "h1", "--domainname", "example.org",
                              "--security-opt", "seccomp={tmp}/profile.json", "--sysctl", "kernel.shmmax=1000000",
                              "--device", "/dev/null:/dev/mynull:rw", "--mount",
                              "type=tmpfs,dst=/x,tmpfs-size=1048576,tmpfs-mode=1777", "--mount",
                              "type=bind,src={tmp}/m,dst=/y,readonly", "--restart", "on-failure:3", "-l", "a=b",
                              "--stop-signal", "USR1", "--health-cmd", "true", "--health-interval", "5s",
                              "busybox", "sleep", "100"],
    "etc-file-and-unconfined": ["-v", "{tmp}/hosts:/etc/hosts:ro", "--read-only", "--security-opt",
                                "seccomp=unconfined", "--entrypoint", "", "-e", "PATH=/bin", "busybox", "sleep", "100"],
    "daemon-root-bind": ["-v", "{base}:/host-tmp", "busybox", "sleep", "100"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_docker_agrees(docker: Docker, tmp_path: Any, case: str) -> None:
    tmp = str(tmp_path)
    os.makedirs(os.path.join(tmp, "m"))
    open(os.path.join(tmp, "hosts"), "w").close()
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]}
    with open(os.path.join(tmp, "profile.json"), "w") as f:
        json.dump(profile, f)
    args = [a.replace("{tmp}", tmp).replace("{base}", os.path.dirname(docker.base)) for a in CASES[case]]
    body, inspect, theirs, cli_warnings = create(docker, args, start=True)
    opts = options(docker)

    config, hc, warnings = normalize(body, docker.image_config, name=inspect["Name"].lstrip("/"), cid=inspect["Id"],
                                     daemon=opts)
    assert warnings == cli_warnings
    compare_inspect(config, inspect["Config"], "Config")
    compare_inspect(hc, inspect["HostConfig"], "HostConfig")

    assert theirs is not None
    files = {m["destination"]: m["source"] for m in theirs["mounts"]
             if m["destination"] in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
             and m["source"].startswith(docker.base)}
    mine = build(ContainerView(inspect["Id"], inspect["Name"], config, hc), rootfs=docker.rootfs, files=files,
                 daemon=opts)
    compare_spec(mine, theirs, privileged=case == "privileged")
    if case == "mounts-devices-config":
        assert mine["linux"]["seccomp"] == theirs["linux"]["seccomp"]


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "4m", "busybox"], "Minimum memory limit allowed is 6MB"),
    (["--cpu-period", "500", "busybox"],
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (["-m", "20m", "--memory-swap", "10m", "busybox"],
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (["--cap-add", "FOO", "busybox"], 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    (["--oom-score-adj", "1001", "busybox"], "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    (["-w", "relative", "busybox"], "the working directory 'relative' is invalid, it needs to be an absolute path"),
    (["--entrypoint", "", "busybox"], "No command specified"),
    (["--cpuset-cpus", "0-9", "busybox"], "Requested CPUs are not available - requested 0-9, available: {cpus}"),
    (["-v", "/src:/", "busybox"], None),
])
def test_docker_rejects_the_same(docker: Docker, args: list[str], message: str | None) -> None:
    """The daemon's 400s, word for word (None: the wording differs by design; both must refuse)."""
    before = len(docker.relay.create_bodies())
    r = docker.cli("create", "--network", "none", *args, check=False)
    assert r.returncode != 0
    bodies = docker.relay.create_bodies()
    assert len(bodies) == before + 1, "the CLI itself refused: " + r.stderr
    theirs = r.stderr.strip().splitlines()[0].removeprefix("Error response from daemon: ")
    opts = options(docker)
    with pytest.raises(Exception) as e:
        normalize(bodies[-1], docker.image_config, name="n", cid="0" * 64, daemon=opts)
    if message is not None:
        message = message.replace("{cpus}", opts.features.cpus)
        assert theirs == message
        assert str(e.value) == message


@pytest.mark.parametrize(("create_args", "update_args", "error"), [
    (["-m", "64m", "--cpu-shares", "512"], ["--cpus", "0.5", "--pids-limit", "20", "--restart", "on-failure:2"], None),
    (["-m", "50m"], ["-m", "200m"], "Memory limit should be smaller than already set memoryswap limit, update the "
     "memoryswap at the same time"),
    (["--cpu-period", "50000"], ["--cpus", "1"],
     "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"),
])
def test_docker_update_agrees(docker: Docker, create_args: list[str], update_args: list[str],
                              error: str | None) -> None:
    before = len(docker.relay.create_bodies("/update"))
    cid = docker.cli("create", "--network", "none", *create_args, "busybox", "sleep", "100").stdout.strip()
    try:
        body = docker.relay.create_bodies()[-1]
        r = docker.cli("update", *update_args, cid, check=False)
        update = docker.relay.create_bodies("/update")
        assert len(update) == before + 1
        inspect = json.loads(docker.cli("inspect", cid, direct=True).stdout)[0]
    finally:
        docker.cli("rm", "-f", cid, direct=True)
    opts = options(docker)
    _, hc, _ = normalize(body, docker.image_config, name="n", cid=cid, daemon=opts)
    if error is not None:
        assert r.returncode != 0
        message = f"Cannot update container {cid}: {error}"
        assert r.stderr.strip().removeprefix("Error response from daemon: ") == message
        with pytest.raises(Exception) as e:
            resources_update(hc, update[-1], daemon=opts, cid=cid)
        assert str(e.value) == message
        return
    assert r.returncode == 0, r.stderr
    resources_update(hc, update[-1], daemon=opts, cid=cid)
    theirs = inspect["HostConfig"]
    for key in ("Memory", "MemorySwap", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "RestartPolicy"):
        assert hc[key] == theirs[key], key
    assert hc["PidsLimit"] == theirs["PidsLimit"] == 20
