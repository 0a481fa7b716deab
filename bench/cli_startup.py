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
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.rootfs import make_busybox_rootfs  # noqa: E402

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


class PrivateDockerd:
    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="berth-bench-cli-")
        self.exec_root = tempfile.mkdtemp(prefix="bbx", dir="/tmp")
        self.sock = os.path.join(self.base, "docker.sock")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DOCKER_", "BERTH_")) and k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update(DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=os.path.join(self.base, "cfg"))
        cfg = os.path.join(self.base, "daemon.json")
        with open(cfg, "w") as f:
            f.write("{}")
        log = os.open(os.path.join(self.base, "dockerd.log"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(self.base, "root"), "--exec-root", self.exec_root,
             "--pidfile", os.path.join(self.base, "pid"), "-H", f"unix://{self.sock}", "--config-file", cfg,
             "--bridge=none", "--iptables=false", "--ip6tables=false", "--containerd-namespace", "berth-bench-cli"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        os.close(log)
        deadline = time.monotonic() + 60
        while subprocess.run([DOCKER, "version"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start; see " + os.path.join(self.base, "dockerd.log"))
            time.sleep(0.1)
        root = make_busybox_rootfs(os.path.join(self.base, "bb"))
        tar = os.path.join(self.base, "bb.tar")
        with tarfile.open(tar, "w") as tf:
            for e in sorted(os.listdir(root)):
                tf.add(os.path.join(root, e), arcname=e)
        subprocess.run([DOCKER, "import", "-c", 'CMD ["sh"]', tar, "busybox:latest"], env=self.env,
                       check=True, capture_output=True)

    def stop(self) -> None:
        ids = subprocess.run([DOCKER, "ps", "-aq"], env=self.env, capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([DOCKER, "rm", "-f", *ids], env=self.env, capture_output=True)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)


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
    d = PrivateDockerd()
    try:
        subprocess.run([DOCKER, "run", "-d", "--network", "none", "--name", "bench-idle", "busybox", "sleep", "600"],
                       env=d.env, check=True, capture_output=True)
        results = [measure("version", ["version"], d.env, args.pairs),
                   measure("ps", ["ps"], d.env, args.pairs),
                   measure("ps -a --format '{{.Names}}'", ["ps", "-a", "--format", "{{.Names}}"], d.env, args.pairs),
                   measure("run --rm busybox true", ["run", "--rm", "--network", "none", "busybox", "true"], d.env,
                           args.run_pairs)]
        # the floor berth stands on: the venv's interpreter doing nothing (site on, as the console script runs)
        floor = [timed([sys.executable, "-c", "pass"], d.env) for _ in range(args.pairs)]
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
        for us, mod in import_profile(d.env)[:12]:
            print(f"  {us:>7}  {mod}")
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
