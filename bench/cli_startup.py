"""CLI start-up and command overhead: `berth` against the docker CLI 28, on the same private dockerd.

Pairs of (docker, berth) runs alternate (which one goes first alternates too), so the shared
machine's drifting load hits both alike. Reported per command: median and p90 wall time in ms and
the berth/docker ratio of medians (< 1.0 = berth is faster). The daemon is Debian's dockerd 20.10,
started privately (own data root, exec root and socket, no bridge, no iptables) with a busybox image
imported from /bin/busybox, and stopped afterwards. berth runs with bytecode caching on (this
environment sets PYTHONDONTWRITEBYTECODE, which would recompile every edited module on every call;
an installed berth has its .pyc files), so the warm-up leaves up-to-date .pyc files behind.

    .venv/bin/python bench/cli_startup.py [--pairs 30] [--run-pairs 10]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.dockerd import DOCKER, Dockerd  # noqa: E402  (the tests' private dockerd)

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"{argv} failed: {p.stderr.decode()}")
    return dt


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, round(0.9 * len(s)) - 1)]


def measure(name: str, args: list[str], env: dict[str, str], pairs: int) -> tuple[str, list[float], list[float]]:
    for _ in range(3):  # warm the page cache and .pyc files for both
        timed([DOCKER, *args], env)
        timed([BERTH, *args], env)
    d: list[float] = []
    b: list[float] = []
    for i in range(pairs):
        if i % 2 == 0:
            d.append(timed([DOCKER, *args], env))
            b.append(timed([BERTH, *args], env))
        else:
            b.append(timed([BERTH, *args], env))
            d.append(timed([DOCKER, *args], env))
    return name, d, b


def import_profile(env: dict[str, str]) -> list[tuple[int, str]]:
    """berth's own modules on the `ps` path, by cumulative import time (us), median of 5 runs."""
    runs: dict[str, list[int]] = {}
    for _ in range(5):
        err = subprocess.run([sys.executable, "-X", "importtime", BERTH, "ps"], env=env, capture_output=True,
                             text=True).stderr
        for line in err.splitlines():
            if "|" not in line or "imported package" in line:
                continue
            _self, cum, mod = (x.strip() for x in line.split(":", 1)[1].split("|"))
            runs.setdefault(mod, []).append(int(cum))
    return sorted(((int(statistics.median(v)), k) for k, v in runs.items() if k.startswith("berth")), reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--run-pairs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        print("needs root and dockerd (apt-get install docker.io)", file=sys.stderr)
        return 1
    d = Dockerd(tempfile.mkdtemp(prefix="berth-bench-cli-"))
    try:
        d.start()
        d.load_busybox()
        # the CLIs as users run them: with their .pyc caches
        env = {k: v for k, v in d.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([DOCKER, "run", "-d", "--network", "none", "--name", "bench-idle", "busybox", "sleep", "600"],
                       env=env, check=True, capture_output=True)
        results = [measure("version", ["version"], env, args.pairs),
                   measure("ps", ["ps"], env, args.pairs),
                   measure("ps -a --format '{{.Names}}'", ["ps", "-a", "--format", "{{.Names}}"], env, args.pairs),
                   measure("run --rm busybox true", ["run", "--rm", "--network", "none", "busybox", "true"], env,
                           args.run_pairs)]
        # the floor berth stands on: the venv's interpreter doing nothing (site on, as the console script runs)
        floor = [timed([sys.executable, "-c", "pass"], env) for _ in range(args.pairs)]
        load = os.getloadavg()[0]
        print(f"berth CLI vs docker CLI 28 on a private dockerd 20.10 (load average {load:.1f}), ms")
        print(f"{'command':32} {'n':>3} {'docker med':>10} {'docker p90':>10} {'berth med':>10} {'berth p90':>10}"
              f" {'berth/docker':>12}")
        for name, dt, bt in results:
            dm, bm = statistics.median(dt), statistics.median(bt)
            print(f"{name:32} {len(dt):>3} {dm:>10.1f} {p90(dt):>10.1f} {bm:>10.1f} {p90(bt):>10.1f} {bm / dm:>12.2f}")
        print(f"{'(python -c pass, the floor)':32} {len(floor):>3} {'':>10} {'':>10} {statistics.median(floor):>10.1f}"
              f" {p90(floor):>10.1f}")
        print("\nberth modules imported by `berth ps` (cumulative import time, median of 5, us):")
        for us, mod in import_profile(env)[:12]:
            print(f"  {us:>7}  {mod}")
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
