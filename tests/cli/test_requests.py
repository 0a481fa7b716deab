"""berth sends what docker sends: both CLIs run the same command line against a recording API stub
(a real unix socket), and the request sequences (method, versioned path, query, JSON body, the
headers that matter) must be identical. This is what makes a berthd written against the docker CLI
work with berth too."""

from __future__ import annotations

import json
import os
import re
import socket

import pytest

from tests.cli.conftest import needs_docker_cli, run_berth, run_docker, stub_env
from tests.cli.stub import Request, Stub

pytestmark = needs_docker_cli

INSPECT = {
    "Id": "abc123", "Name": "/x", "Created": "2024-01-01T00:00:00Z", "Path": "sh", "Args": [],
    "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False, "Pid": 1, "ExitCode": 0},
    "Image": "sha256:" + "1" * 64,
    "Config": {"Tty": False, "OpenStdin": False, "Image": "busybox", "Labels": {}},
    "HostConfig": {"AutoRemove": False, "NetworkMode": "none"},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, "Networks": {}},
    "Mounts": [],
}


def _json(obj: object, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


class SmartStub(Stub):
    """Plausible answers for every route the tested commands call."""

    def default(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        r, m = req.route, req.method
        if r == "/_ping":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"OK"
        if r == "/containers/create":
            return _json({"Id": "abc123", "Warnings": []}, 201)
        if re.fullmatch(r"/containers/[^/]+/wait", r):
            return _json({"StatusCode": 0, "Error": None})
        if re.fullmatch(r"/containers/[^/]+/(start|stop|kill|restart|pause|unpause|rename|resize)", r):
            return 204, {}, b""
        if re.fullmatch(r"/containers/[^/]+/json", r):
            return _json(INSPECT)
        if r == "/containers/json":
            return _json([])
        if m == "DELETE" and r.startswith("/containers/"):
            return 204, {}, b""
        if re.fullmatch(r"/containers/[^/]+/logs", r):
            return 200, {"Content-Type": "application/vnd.docker.multiplexed-stream"}, b"\x01\0\0\0\0\0\0\x03hi\n"
        if re.fullmatch(r"/containers/[^/]+/exec", r):
            return _json({"Id": "e1"}, 201)
        if r == "/exec/e1/start":
            return 200, {}, b""
        if r == "/exec/e1/json":
            return _json({"ExitCode": 0, "Running": False})
        if re.fullmatch(r"/containers/[^/]+/top", r):
            return _json({"Titles": ["PID", "CMD"], "Processes": [["1", "sh"]]})
        if re.fullmatch(r"/containers/[^/]+/update", r):
            return _json({"Warnings": []})
        if re.fullmatch(r"/containers/[^/]+/changes", r):
            return _json([{"Kind": 1, "Path": "/tmp"}])
        if re.fullmatch(r"/containers/[^/]+/stats", r):
            return _json({"id": "abc123", "name": "/x", "cpu_stats": {}, "precpu_stats": {}, "memory_stats": {},
                          "pids_stats": {"current": 1}})
        if re.fullmatch(r"/containers/[^/]+/export", r) or r == "/images/get":
            return 200, {"Content-Type": "application/x-tar"}, b"\0" * 1024
        if r == "/containers/prune":
            return _json({"ContainersDeleted": None, "SpaceReclaimed": 0})
        if r == "/images/prune":
            return _json({"ImagesDeleted": None, "SpaceReclaimed": 0})
        if r == "/networks/prune":
            return _json({"NetworksDeleted": None})
        if r == "/build/prune":
            return _json({"CachesDeleted": None, "SpaceReclaimed": 0})
        if r == "/commit":
            return _json({"Id": "sha256:" + "2" * 64}, 201)
        if r == "/images/json":
            return _json([])
        if r.endswith("/tag") and r.startswith("/images/"):
            return 201, {}, b""
        if r == "/images/create" or (r.startswith("/images/") and r.endswith("/push")) or r == "/images/load":
            return 200, {"Content-Type": "application/json"}, b'{"status":"done"}\r\n'
        if m == "DELETE" and r.startswith("/images/"):
            return _json([{"Untagged": "busybox:latest"}])
        if r.startswith("/images/") and r.endswith("/history"):
            return _json([])
        if r == "/events":
            return 200, {"Content-Type": "application/json"}, b""
        if r == "/images/search":
            return _json([{"name": "busybox", "description": "Busybox base image with a very long description "
                           "that docker cuts", "star_count": 3000, "is_official": True, "is_automated": False}])
        if r == "/auth":
            return _json({"Status": "Login Succeeded", "IdentityToken": ""})
        if r == "/version":
            return _json({"Version": "20.10", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux",
                          "Arch": "amd64", "Components": []})
        if r == "/info":
            return _json({"ID": "x", "Containers": 0, "OSType": "linux", "Swarm": {"LocalNodeState": "inactive"},
                          "Plugins": {}})
        if r == "/system/df":
            return _json({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []})
        if re.fullmatch(r"/containers/[^/]+/archive", r):
            return 200, {"Content-Type": "application/x-tar",
                         "X-Docker-Container-Path-Stat": "eyJuYW1lIjoiaG9zdG5hbWUiLCJzaXplIjoxLCJtb2RlIjo0MjB9"}, \
                b"\0" * 1024
        return 404, {"Content-Type": "application/json"}, b'{"message":"page not found"}'


def _attach(req: Request, conn: socket.socket) -> bool:
    conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
                 b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x03hi\n")
    conn.settimeout(5)
    try:
        while conn.recv(65536):  # until the client half-closes (stdin done)
            pass
    except OSError:
        pass
    return False


def _exec_start(req: Request, conn: socket.socket) -> bool:
    body = json.loads(req.body or b"{}")
    if body.get("Detach"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nApi-Version: 1.41\r\n\r\n")
        return True
    return _attach(req, conn)


IGNORED_HEADERS = {"user-agent", "host", "content-length"}


def _normalize(reqs: list[Request]) -> list[tuple[str, str, object, dict[str, str]]]:
    out = []
    for r in reqs:
        body: object = r.body
        if r.headers.get("content-type") == "application/json" and r.body:
            body = json.dumps(json.loads(r.body))  # key order is kept: it is part of what must match
        elif r.route in ("/images/load", "/images/create") or r.route.endswith("/archive"):
            body = len(r.body)
        hdrs = {k: v for k, v in r.headers.items() if k not in IGNORED_HEADERS}
        out.append((r.method, r.path, body, hdrs))
    return out


def _record(tool: str, args: list[str], tmp_path: os.PathLike[str], stdin: str | None, files: dict[str, str],
            api: str) -> tuple[list[tuple[str, str, object, dict[str, str]]], int, str, str]:
    d = os.path.join(tmp_path, tool)
    os.makedirs(d, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(content)
    s = SmartStub(os.path.join(d, "api.sock"), api_version=api)
    s.routes[("POST", "/containers/abc123/attach")] = _attach
    s.routes[("POST", "/exec/e1/start")] = _exec_start
    try:
        env = stub_env(s, d)
        env["ENV_FROM_HOST"] = "from-host"
        argv = [a.replace("@DIR@", d) for a in args]
        runner = run_docker if tool == "docker" else run_berth
        p = runner(argv, env, input=stdin, timeout=30)
        return _normalize([r for r in s.requests() if r.route != "/_ping"]), p.returncode, p.stderr, p.stdout
    finally:
        s.close()


FILES = {"env.list": "# comment\nFILE_A=1\n\nENV_FROM_HOST\nFILE_EMPTY=\n", "labels": "lk=lv\nother\n"}

RUN_ALL_FLAGS = [
    "run", "-d", "--name", "web", "-e", "A=1", "-e", "ENV_FROM_HOST", "--env-file", "@DIR@/env.list", "-l", "k=v",
    "--label-file", "@DIR@/labels", "-p", "8080:80", "-p", "127.0.0.1:9000-9001:9000-9001/udp", "--expose",
    "7000-7001", "-v", "/a:/b:ro", "-v", "/anon", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--mount",
    "type=bind,src=/src,dst=/dst,readonly,bind-propagation=rshared", "--mount", "type=volume,src=v1,dst=/v,"
    "volume-label=a=b,volume-driver=local,volume-opt=type=tmpfs", "--tmpfs", "/run:size=1m", "-w", "/w", "-u",
    "1000:1000", "--entrypoint", "/bin/sh", "--restart", "on-failure:3", "-m", "64m", "--memory-swap", "128m",
    "--memory-reservation", "32m", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit",
    "50", "--read-only", "--cap-add", "net_admin", "--cap-add", "CAP_SYS_TIME", "--cap-drop", "all",
    "--privileged", "--init", "--health-cmd", "true", "--health-interval", "5s", "--health-timeout", "2s",
    "--health-retries", "3", "--health-start-period", "1s", "--hostname", "h", "--domainname", "d",
    "--stop-signal", "SIGINT", "--stop-timeout", "5", "--ulimit", "nofile=100:200", "--ulimit", "core=0",
    "--sysctl", "net.ipv4.ip_forward=1", "--security-opt", "no-new-privileges", "--security-opt",
    "label=disable", "--shm-size", "128m", "--oom-kill-disable", "--oom-score-adj", "10", "--log-driver",
    "json-file", "--log-opt", "max-size=1m", "--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option",
    "ndots:2", "--add-host", "h:1.2.3.4", "--group-add", "10", "--device", "/dev/null:/dev/xnull:rw",
    "--ipc", "private", "--pid", "host", "--uts", "host", "--cgroupns", "private", "--network", "none",
    "--annotation", "a=b", "--blkio-weight", "300", "--cpu-period", "100000", "--cpu-quota", "50000",
    "busybox", "sh", "-c", "echo hi",
]

CASES: list[tuple[str, list[str], str | None, bool]] = [
    ("run-all-flags", RUN_ALL_FLAGS, None, False),
    ("run-attached", ["run", "--rm", "--network", "none", "busybox", "echo", "hi"], None, False),
    ("run-stdin", ["run", "-i", "--network", "none", "busybox", "cat"], "abc", False),
    ("run-rm-detached", ["run", "--rm", "-d", "busybox", "true"], None, False),
    ("run-network-opts", ["run", "-d", "--network", "mynet", "--network-alias", "a", "--ip", "10.0.0.5",
                          "--mac-address", "02:42:ac:11:00:02", "--link", "db:db", "busybox"], None, False),
    ("run-entrypoint-reset", ["run", "-d", "--entrypoint=", "--no-healthcheck", "-a", "stdout", "busybox"], None,
     False),
    ("create-tty", ["create", "-it", "--name", "t", "--platform", "linux/amd64", "busybox", "sh"], None, False),
    ("create-volumes-from", ["create", "--volumes-from", "c1:ro", "--link", "c2", "-P", "busybox"], None, False),
    ("ps", ["ps", "-a", "-n", "2", "--filter", "status=exited", "--filter", "label=a=b", "-s"], None, False),
    ("ps-size-from-format", ["ps", "--format", "{{.ID}} {{.Size}}"], None, False),
    ("ps-latest-quiet", ["ps", "-lq", "--no-trunc"], None, False),
    ("images", ["images", "-a", "--filter", "dangling=true", "busybox"], None, False),
    ("rm", ["rm", "-f", "-v", "x", "y"], None, True),
    ("stop", ["stop", "-t", "3", "-s", "HUP", "x"], None, False),
    ("kill", ["kill", "-s", "USR1", "x", "y"], None, True),
    ("restart", ["restart", "-t", "0", "x"], None, False),
    ("pause-unpause", ["pause", "x"], None, False),
    ("logs", ["logs", "-f", "--tail", "10", "-t", "--details", "--since", "1700000000", "--until", "1700000100.5",
              "x"], None, False),
    ("exec-detached", ["exec", "-d", "-e", "A=1", "-w", "/tmp", "-u", "0", "--privileged", "x", "sh", "-c", "true"],
     None, False),
    ("exec-attached", ["exec", "-i", "-e", "ENV_FROM_HOST", "x", "cat"], "in", False),
    ("start-attach", ["start", "-a", "x"], None, False),
    ("attach", ["attach", "--no-stdin", "x"], None, False),
    ("tag", ["tag", "busybox", "localhost:5000/busybox:v1"], None, False),
    ("tag-default", ["tag", "sha256:" + "1" * 64, "foo/bar"], None, False),
    ("rmi", ["rmi", "-f", "--no-prune", "busybox"], None, False),
    ("save", ["save", "-o", "@DIR@/out.tar", "busybox", "x:1"], None, False),
    ("commit", ["commit", "-c", "CMD sh", "-c", "ENV A=1", "-m", "msg", "-a", "me", "--pause=false", "x",
                "repo:tag"], None, False),
    ("commit-no-ref", ["commit", "x"], None, False),
    ("rename", ["rename", "x", "y"], None, False),
    ("wait", ["wait", "x"], None, False),
    ("top", ["top", "x", "-ef"], None, False),
    ("update", ["update", "--memory", "64m", "--memory-swap", "-1", "--cpus", "1", "--pids-limit", "10",
                "--restart", "always", "x"], None, False),
    ("events", ["events", "--since", "1700000000", "--until", "1700000001", "--filter", "type=container",
                "--filter", "event=die"], None, False),
    ("inspect-container", ["container", "inspect", "-s", "x"], None, False),
    ("inspect-image", ["image", "inspect", "busybox"], None, False),
    ("version", ["version"], None, False),
    ("info", ["info"], None, False),
    ("login", ["login", "-u", "bob", "--password-stdin", "localhost:5000"], "secret\n", False),
    ("system-df", ["system", "df"], None, False),
    ("container-prune", ["container", "prune", "-f", "--filter", "until=2024-01-01T00:00:00Z"], None, False),
    ("image-prune", ["image", "prune", "-af"], None, False),
    ("stats", ["stats", "--no-stream", "x"], None, False),
    ("port", ["port", "x", "80"], None, False),
    ("diff", ["diff", "x"], None, False),
    ("export", ["export", "-o", "@DIR@/x.tar", "x"], None, False),
    ("cp-out", ["cp", "x:/etc/hostname", "-"], None, False),
    ("pull", ["pull", "-q", "localhost:5000/foo"], None, False),
    ("pull-digest", ["pull", "busybox@sha256:" + "3" * 64], None, False),
    ("push", ["push", "localhost:5000/foo"], None, False),
    ("history", ["history", "--no-trunc", "busybox"], None, False),
    ("search", ["search", "--limit", "5", "--filter", "is-official=true", "busybox"], None, False),
]


@pytest.mark.parametrize("api", ["1.41", "1.44"])
@pytest.mark.parametrize(("args", "stdin", "unordered"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_berth_sends_what_docker_sends(args: list[str], stdin: str | None, unordered: bool, api: str,
                                       tmp_path: os.PathLike[str]) -> None:
    """At dockerd 20.10's API version and at the one berthd advertises (docker adapts to both)."""
    want, want_rc, want_err, want_out = _record("docker", args, tmp_path, stdin, FILES, api)
    got, got_rc, got_err, got_out = _record("berth", args, tmp_path, stdin, FILES, api)
    want = [w for w in want if not (w[1].endswith("/resize"))]
    got = [g for g in got if not (g[1].endswith("/resize"))]
    if unordered:
        want, got = sorted(want, key=str), sorted(got, key=str)
    assert got == want, f"docker stderr: {want_err}\nberth stderr: {got_err}"
    assert got_rc == want_rc, f"docker stderr: {want_err}\nberth stderr: {got_err}"
    if args[0] not in ("version", "info", "run", "create", "events", "login"):
        # the stub's answers are the same for both: so must the output be
        assert got_out == want_out
