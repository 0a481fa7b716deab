#!/usr/bin/env python3
"""berth-runtime vs runc vs crun: `<runtime> run` of `true` on the same busybox bundle and config.

The config is made by `berth-runtime spec` (Docker's defaults, seccomp included), so all three
apply the same policy. Runs alternate (berth, runc, crun, berth, …) so machine noise hits all
equally; we report medians, the ratio to runc and crun, and each runtime's peak RSS (GNU time's %M).

crun 1.8 refuses this host's hybrid cgroups unless the cgroup2 mount is hidden, so the whole
benchmark runs in a private mount namespace with /sys/fs/cgroup/unified unmounted (the host is
unchanged; runc measured inside it matches runc outside, notes/handson.md §4).

    sudo .venv/bin/python bench/runtime.py [--pairs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
BERTH = os.path.join(os.path.dirname(sys.executable), "berth-runtime")


def in_private_mount_ns() -> bool:
    return os.environ.get("BERTH_BENCH_NS") == "1"


def reexec_in_private_ns() -> None:
    env = dict(os.environ, BERTH_BENCH_NS="1")
    script = ("mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; "
              f'exec {sys.executable} {" ".join(map(repr, sys.argv))}')
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script], env)


def run_one(cmd: list[str], cwd: str, rss_file: str) -> tuple[float, int, int]:
    """Wall time (ms), exit code and peak RSS (KiB) of one command.

    Peak RSS comes from GNU time (its %M): a process's ru_maxrss counts the memory it had before its
    execve, so a runtime spawned straight from this Python would report our RSS, not its own."""
    cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd]
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
    ]) if cwd == os.getcwd() else -1
    if pid < 0:
        raise RuntimeError("cwd mismatch")
    _, status, _usage = os.wait4(pid, 0)
    ms = (time.perf_counter() - t0) * 1000
    with open(rss_file) as f:
        kib = int(f.read().split()[-1])
    return ms, os.waitstatus_to_exitcode(status), kib


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    if not os.path.exists("/usr/bin/time"):
        print("GNU time is needed for peak RSS (apt-get install time)", file=sys.stderr)
        return 1
    if not in_private_mount_ns():
        reexec_in_private_ns()
    from tests.rootfs import make_busybox_rootfs

    peers = {"berth": BERTH}
    for name in [n for n in ("runc", "crun") if n not in os.environ.get("BENCH_SKIP", "").split(",")]:
        path = shutil.which(name)
        if path:
            peers[name] = path
        else:
            print(f"# {name} not installed (apt-get install {name}): skipped")
    work = tempfile.mkdtemp(prefix="berth-bench-rt-")
    try:
        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle)
        make_busybox_rootfs(os.path.join(bundle, "rootfs"))
        subprocess.run([BERTH, "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["args"] = ["true"]
        spec["root"]["readonly"] = True
        spec["ociVersion"] = "1.0.2"  # crun 1.8 refuses newer spec versions ("unknown version specified")
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        os.chdir(bundle)
        results: dict[str, list[float]] = {n: [] for n in peers}
        rss: dict[str, int] = dict.fromkeys(peers, 0)
        n = 0
        for i in range(args.warmup + args.pairs):
            for name, exe in peers.items():
                n += 1
                cid = f"berth-bench-{name}-{os.getpid()}-{n}"
                cmd = [exe, "--root", os.path.join(work, f"state-{name}"), "run", cid]
                spec["linux"]["cgroupsPath"] = f"/{cid}"
                with open("config.json", "w") as f:
                    json.dump(spec, f)
                ms, code, kib = run_one(cmd, bundle, os.path.join(work, "rss"))
                if code != 0:
                    print(f"{name} run failed with exit code {code}: {' '.join(cmd)}", file=sys.stderr)
                    return 1
                if i >= args.warmup:
                    results[name].append(ms)
                    rss[name] = max(rss[name], kib)
        print(f"# {args.pairs} alternating runs of `<runtime> run` (true, Docker's default spec with seccomp)")
        print(f"{'runtime':8} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13}")
        med = {}
        for name, xs in results.items():
            xs.sort()
            med[name] = statistics.median(xs)
            p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
            print(f"{name:8} {med[name]:10.1f} {p90:8.1f} {rss[name] / 1024:13.1f}")
        for peer in ("runc", "crun"):
            if peer in med:
                print(f"berth/{peer} median ratio: {med['berth'] / med[peer]:.2f}"
                      + ("  (target <= 1.00)" if peer == "runc" else ""))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
