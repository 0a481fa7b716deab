"""`GET /_ping` round trips over a unix socket: berth's Engine API against a private dockerd, one run.

Workloads (per server; the client is this process, the server another process):
  keep-alive    N sequential pings on one connection (the per-request cost of the stack)
  new conn      N pings, each on a fresh connection (connect + request + close, as the CLI does)
Both servers stay up and are measured in alternating rounds (this machine is shared and its load
drifts); reported: the median round's requests/s, and latency percentiles over all rounds, then
berth/dockerd ratios (> 1.0 = berth is faster). dockerd is Debian's 20.10 started privately (own
data-root, exec-root and socket, no bridge, no iptables) and stopped afterwards; skip it with
--no-dockerd, or point at a running one with --dockerd-sock.

    .venv/bin/python bench/api_ping.py [-n 20000] [--new-conn 3000] [--rounds 5] [--no-dockerd]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REQ = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: bench\r\n\r\n"
REQ_CLOSE = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
SERVER = """
import asyncio, sys
from berth.api import Backends, EngineAPI
asyncio.run(EngineAPI(Backends()).serve(unix=sys.argv[1], ready=lambda a: print("ready", flush=True)))
"""


def wait_socket(path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(REQ_CLOSE)
                if s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not answer within {timeout}s")


def read_ping(s: socket.socket) -> None:
    buf = b""
    while not buf.endswith(b"\r\n\r\nOK"):
        data = s.recv(4096)
        if not data:
            raise ConnectionError(f"closed early: {buf!r}")
        buf += data


def keepalive(path: str, n: int) -> list[float]:
    lat = []
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        for _ in range(min(500, n)):
            s.sendall(REQ)
            read_ping(s)
        for _ in range(n):
            t = time.perf_counter()
            s.sendall(REQ)
            read_ping(s)
            lat.append(time.perf_counter() - t)
    return lat


def new_conn(path: str, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(REQ_CLOSE)
            read_ping(s)
        lat.append(time.perf_counter() - t)
    return lat


def summary(rounds: list[list[float]]) -> dict[str, float]:
    lat = [x for r in rounds for x in r]
    q = statistics.quantiles(lat, n=100)
    return {"rps": statistics.median(len(r) / sum(r) for r in rounds), "p50_us": q[49] * 1e6,
            "p99_us": q[98] * 1e6, "mean_us": statistics.fmean(lat) * 1e6}


class BerthServer:
    name = "berth"

    def __init__(self, tmp: str) -> None:
        self.sock = os.path.join(tmp, "berth.sock")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, self.sock], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()
        wait_socket(self.sock, 10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PrivateDockerd:
    name = "dockerd"

    def __init__(self, tmp: str) -> None:
        d = os.path.join(tmp, "dockerd")
        os.makedirs(d)
        self.sock = os.path.join(d, "docker.sock")
        self.log = open(os.path.join(d, "log"), "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(d, "root"), "--exec-root", os.path.join(d, "exec"),
             "--pidfile", os.path.join(d, "pid"), "-H", f"unix://{self.sock}", "--bridge=none", "--iptables=false",
             "--ip6tables=false", "--config-file", self._config(d)],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_socket(self.sock, 60)

    @staticmethod
    def _config(d: str) -> str:
        path = os.path.join(d, "daemon.json")
        with open(path, "w") as f:
            json.dump({}, f)
        return path

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Existing:
    name = "dockerd"

    def __init__(self, sock: str) -> None:
        self.sock = sock
        wait_socket(sock, 5)

    def stop(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20000, help="keep-alive pings per server")
    ap.add_argument("--new-conn", type=int, default=3000, help="new-connection pings per server")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds the work is split into")
    ap.add_argument("--no-dockerd", action="store_true", help="measure berth only")
    ap.add_argument("--dockerd-sock", help="use an already running dockerd on this socket")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="berth-bench-ping-")
    results: dict[str, dict[str, dict[str, float]]] = {}
    servers: list[type | str] = [BerthServer]
    if args.dockerd_sock:
        servers.append(args.dockerd_sock)
    elif not args.no_dockerd and shutil.which("dockerd"):
        servers.append(PrivateDockerd)
    running: list[BerthServer | PrivateDockerd | Existing] = []
    try:
        for spec in servers:
            running.append(Existing(spec) if isinstance(spec, str) else spec(tmp))
        ka: dict[str, list[list[float]]] = {s.name: [] for s in running}
        nc: dict[str, list[list[float]]] = {s.name: [] for s in running}
        for _ in range(args.rounds):
            for srv in running:
                ka[srv.name].append(keepalive(srv.sock, args.n // args.rounds))
                nc[srv.name].append(new_conn(srv.sock, args.new_conn // args.rounds))
        for srv in running:
            results[srv.name] = {"keep-alive": summary(ka[srv.name]), "new conn": summary(nc[srv.name])}
    finally:
        for srv in running:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'server':10} {'workload':11} {'req/s':>9} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    for name, wl in results.items():
        for w, s in wl.items():
            print(f"{name:10} {w:11} {s['rps']:9.0f} {s['p50_us']:8.0f} {s['p99_us']:8.0f} {s['mean_us']:8.0f}")
    if "dockerd" in results:
        for w in ("keep-alive", "new conn"):
            ratio = results["berth"][w]["rps"] / results["dockerd"][w]["rps"]
            print(f"berth/dockerd req/s, {w}: {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
