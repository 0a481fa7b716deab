#!/usr/bin/env python3
"""berthd vs Debian's dockerd 20.10, side by side in one run (issue #4's targets).

1. `docker run --rm --network none busybox true` through the docker CLI 28, against berthd and
   against dockerd, alternating; and `berth run --rm busybox true` against berthd. Medians, ratios.
2. 50 `docker run -d busybox sleep 600` in a row, and 50 at once: total time, ratio.
3. Memory: each daemon idle (RSS/PSS of its processes), then with the 50 containers running:
   what each running container adds (berthd: monitor PSS + daemon growth; Docker: shim PSS +
   dockerd/containerd growth).

Both daemons run privately (own sockets, data roots, exec roots; dockerd with --bridge=none
--iptables=false) and are stopped at the end. busybox:latest comes from berth's bootstrap tarball.

    sudo .venv/bin/python bench/daemon.py [--pairs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.dockerd import Dockerd  # noqa: E402  (the tests' private dockerd)
from tests.e2e.daemon import Berthd  # noqa: E402

DOCKER = "/usr/local/bin/docker"
BERTH = os.path.join(os.path.dirname(sys.executable), "berth")


def _tree(d: Dockerd) -> list[int]:
    """dockerd and its descendants (containerd, shims)."""
    assert d.proc is not None
    return [d.proc.pid, *_children(d.proc.pid)]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.split("\n")[1:]
    kids: dict[int, list[int]] = {}
    for line in out:
        parts = line.split()
        if len(parts) == 2:
            kids.setdefault(int(parts[1]), []).append(int(parts[0]))
    result, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            result.append(k)
            todo.append(k)
    return result


def mem(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def procs_named(names: tuple[str, ...]) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.decode()}")
    return (time.perf_counter() - t0) * 1000


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--many", type=int, default=50)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    if not shutil.which("dockerd"):
        print("dockerd not installed (apt-get install docker.io)", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="berth-bench-d-")
    os.makedirs(os.path.join(work, "b"))
    os.makedirs(os.path.join(work, "d"))
    b = Berthd(os.path.join(work, "b"))
    d = Dockerd(os.path.join(work, "d"))
    try:
        from berth.image import bootstrap

        tar = os.path.join(work, "busybox.tar")
        bootstrap.busybox(tar)
        b.start()
        d.start()
        for env in (b.env(), d.env):
            subprocess.run([DOCKER, "load", "-q", "-i", tar], env=env, check=True, capture_output=True)
        time.sleep(2)
        idle_b = [mem(p) for p in [b.proc.pid, *_children(b.proc.pid)]] if b.proc else []
        idle_d = [mem(p) for p in _tree(d)]
        dockerd_alone = mem(d.proc.pid) if d.proc else (0, 0)
        print(f"# idle: berthd (+zygote) RSS {sum(r for r, _ in idle_b) / 1024:.1f} MiB, "
              f"PSS {sum(p for _, p in idle_b) / 1024:.1f} MiB;  dockerd alone RSS {dockerd_alone[0] / 1024:.1f} MiB; "
              f"dockerd+containerd RSS {sum(r for r, _ in idle_d) / 1024:.1f} MiB, "
              f"PSS {sum(p for _, p in idle_d) / 1024:.1f} MiB")

        # 1. run --rm true, alternating
        cmd = [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"]
        res: dict[str, list[float]] = {"docker→berthd": [], "docker→dockerd": [], "berth→berthd": []}
        for _ in range(3):
            timed(cmd, b.env())
            timed(cmd, d.env)
        for _ in range(args.pairs):
            res["docker→berthd"].append(timed(cmd, b.env()))
            res["docker→dockerd"].append(timed(cmd, d.env))
            res["berth→berthd"].append(timed([BERTH, "run", "--rm", "busybox", "true"], b.env()))
        print(f"\n# `run --rm --network none busybox true`, {args.pairs} alternating rounds (ms)")
        for k, xs in res.items():
            xs.sort()
            print(f"{k:16} median {med(xs):7.1f}  p90 {xs[int(len(xs) * 0.9) - 1]:7.1f}")
        print(f"docker CLI: berthd/dockerd median ratio {med(res['docker→berthd']) / med(res['docker→dockerd']):.2f}"
              "  (target <= 0.50)")
        print(f"berth CLI vs docker CLI on dockerd: {med(res['berth→berthd']) / med(res['docker→dockerd']):.2f}")

        # 2. 50 detached in a row, then 50 at once
        def many(env: dict[str, str], parallel: bool, tag: str) -> float:
            c = [DOCKER, "run", "-d", "--network", "none", "--label", f"bench={tag}", "busybox", "sleep", "600"]
            t0 = time.perf_counter()
            if parallel:
                with ThreadPoolExecutor(args.many) as pool:
                    list(pool.map(lambda _i: timed(c, env), range(args.many)))
            else:
                for _ in range(args.many):
                    timed(c, env)
            return time.perf_counter() - t0

        def clear(env: dict[str, str]) -> None:
            ids = subprocess.run([DOCKER, "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([DOCKER, "rm", "-f", *ids], env=env, capture_output=True)

        serial_b = many(b.env(), False, "s")
        # memory with the containers running
        time.sleep(2)
        monitors = [p for p in _children(1) if _cmd(p).startswith("berthd-monitor")] or _monitors(b)
        run_b = [mem(p) for p in [b.proc.pid, *_children(b.proc.pid)]] if b.proc else []
        mon_pss = sum(mem(p)[1] for p in monitors)
        clear(b.env())
        serial_d = many(d.env, False, "s")
        time.sleep(2)
        shims = procs_named(("containerd-shim", "containerd-shim-runc-v2"))
        shim_pss = sum(mem(p)[1] for p in shims)
        run_d = [mem(p) for p in _tree(d) if p not in shims]
        clear(d.env)
        par_b = many(b.env(), True, "p")
        clear(b.env())
        par_d = many(d.env, True, "p")
        clear(d.env)
        n = args.many
        print(f"\n# {n} `run -d busybox sleep 600`")
        print(f"in a row: berthd {serial_b:6.2f} s  dockerd {serial_d:6.2f} s  ratio {serial_b / serial_d:.2f}"
              "  (target <= 0.50)")
        print(f"at once:  berthd {par_b:6.2f} s  dockerd {par_d:6.2f} s  ratio {par_b / par_d:.2f}  (target <= 0.50)")
        grow_b = (sum(p for _, p in run_b) - sum(p for _, p in idle_b)) / n
        grow_d = (sum(p for _, p in run_d) - sum(p for _, p in idle_d)) / n
        print(f"\n# memory per running container (PSS, KiB), {n} running")
        print(f"berth:  monitor {mon_pss / max(1, len(monitors)):7.0f} ({len(monitors)} monitors) "
              f"+ daemon growth {grow_b:6.0f} = {mon_pss / max(1, len(monitors)) + grow_b:7.0f}")
        print(f"docker: shim    {shim_pss / max(1, len(shims)):7.0f} ({len(shims)} shims) "
              f"+ daemons growth {grow_d:6.0f} = {shim_pss / max(1, len(shims)) + grow_d:7.0f}")
        return 0
    finally:
        b.cleanup()
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _monitors(b: Berthd) -> list[int]:
    """Monitors are detached (not berthd's children): find them by their pid files."""
    out = []
    exec_root = b.exec_root
    for cid in os.listdir(exec_root):
        try:
            with open(os.path.join(exec_root, cid, "monitor.pid")) as f:
                out.append(int(f.read()))
        except (OSError, ValueError):
            pass
    return out


if __name__ == "__main__":
    sys.exit(main())
