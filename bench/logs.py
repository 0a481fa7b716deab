"""json-file logs: berth's writer and reader against Docker's (a private dockerd 20.10) and GNU tail.

    .venv/bin/python bench/logs.py [--size-mb 100] [--runs 5] [--no-docker]

Makes a container output of mixed lines (10–300 bytes, some long) whose json-file log is --size-mb, then,
alternating berth and its peer, n runs each, medians:
- write: berth's JSONFileWriter fed the output in 64 KiB reads (what the monitor does) vs dockerd logging
  a container that `cat`s the same output (wall time of `docker run` minus that of `docker run true`);
- tail=10 on the whole log: berth's read_all(tail=10) vs `tail -n 10` (GNU, one process) and
  `docker logs --tail 10` (CLI + API on the log dockerd wrote);
- reading everything: berth's read_all vs `docker logs` (to /dev/null);
- follow latency (no peer): a writer process appends a line every 5 ms, an async follower receives it;
  time from the entry's timestamp to its arrival, median and p99."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from berth.logs import JSONFileWriter
from berth.logs.reader import read_all
from berth.logs.stream import read_logs

BUSYBOX = "/work/shared/fixtures/busybox/latest-musl/rootfs.tar.gz"


def make_output(path: str, log_bytes: int) -> None:
    """Container output whose json-file log is about `log_bytes` (each entry adds ~60 bytes of JSON)."""
    rnd = random.Random(7)
    words = [rnd.randbytes(rnd.randint(2, 9)).hex().encode() for _ in range(2000)]
    size = 0
    with open(path, "wb") as f:
        while size < log_bytes:
            n = rnd.choice((2, 5, 10, 20, 40)) if rnd.random() > 0.001 else 3000  # a rare 20 KB line
            line = b" ".join(rnd.choice(words) for _ in range(n)) + b"\n"
            f.write(line)
            size += len(line) + 62


def berth_write(output: str, log: str) -> float:
    if os.path.exists(log):
        os.unlink(log)
    t = time.perf_counter()
    w = JSONFileWriter(log)
    with open(output, "rb", buffering=0) as f:
        while data := f.read(65536):
            w.write("stdout", data)
    w.close()
    return time.perf_counter() - t


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


async def follow_latency(path: str, n: int = 200) -> list[float]:
    code = ("import sys, time\nfrom berth.logs import JSONFileWriter\nw = JSONFileWriter(sys.argv[1])\n"
            f"for i in range({n}):\n    w.write('stdout', b'ping %d\\n' % i)\n    time.sleep(0.005)\nw.close()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, path], env={**os.environ, "PYTHONPATH": "src"})
    while not os.path.exists(path):
        await asyncio.sleep(0.001)
    lags = []
    async for _, _, t in read_logs(path, follow=True, is_running=lambda: proc.poll() is None):
        lags.append((time.time_ns() - t) / 1e6)
    proc.wait()
    return lags


class Dockerd:
    def __init__(self, work: str) -> None:
        self.sock = os.path.join(work, "docker.sock")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{work}/droot", "--exec-root", f"{work}/dexec", "--pidfile", f"{work}/pid",
             "-H", f"unix://{self.sock}", "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--log-level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while not os.path.exists(self.sock):
            time.sleep(0.1)
        self("import", BUSYBOX, "bb:1")

    def __call__(self, *args: str, out: int | None = subprocess.PIPE) -> bytes:
        r = subprocess.run(["/usr/bin/docker", "-H", f"unix://{self.sock}", *args], stdout=out,
                           stderr=subprocess.PIPE, check=True)
        return r.stdout or b""

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def line(name: str, b: list[float], peers: dict[str, list[float]], unit: str = "s", scale: float = 1.0) -> None:
    mb = statistics.median(b) * scale
    text = f"{name}: berth median {mb:.4f}{unit} {[round(x * scale, 4) for x in b]}"
    for peer, ts in peers.items():
        mp = statistics.median(ts) * scale
        text += f" | {peer} median {mp:.4f}{unit} (berth/{peer.split()[0]} {mb / mp:.2f})"
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-logs-", dir="/var/tmp") as work:
        output = os.path.join(work, "out")
        os.mkdir(output + ".d")
        output = os.path.join(output + ".d", "out")
        make_output(output, args.size_mb * 1_000_000)
        log = os.path.join(work, "berth.log")
        docker = None if args.no_docker else Dockerd(work)
        try:
            w_b: list[float] = []
            w_d: list[float] = []
            for i in range(args.runs):
                w_b.append(berth_write(output, log))
                if docker:
                    base = timed(lambda: docker("run", "--rm", "--network", "none", "bb:1", "true"))
                    name = f"w{i}"
                    total = timed(lambda name=name: docker(
                        "run", "--name", name, "--network", "none", "-v", f"{os.path.dirname(output)}:/data:ro",
                        "bb:1", "cat", "/data/out"))
                    w_d.append(total - base)
            size = os.path.getsize(log)
            with open(log, "rb") as f:
                print(f"log: {size / 1e6:.1f} MB, {sum(1 for _ in f):,} entries")
            line("write", w_b, {"dockerd json-file": w_d} if docker else {})
            print(f"  berth {size / 1e6 / statistics.median(w_b):.0f} MB/s of log written")
            dlog = docker("inspect", "-f", "{{.LogPath}}", "w0").decode().strip() if docker else None

            t_b, t_g, t_d = [], [], []
            for _ in range(args.runs):
                t_b.append(timed(lambda: read_all(log, tail=10)))
                t_g.append(timed(lambda: subprocess.run(["tail", "-n", "10", log], stdout=subprocess.DEVNULL)))
                if docker:
                    t_d.append(timed(lambda: docker("logs", "--tail", "10", "w0", out=subprocess.DEVNULL)))
            assert len(read_all(log, tail=10)) == 10
            line("tail=10", t_b, {"GNU tail": t_g, **({"docker logs": t_d} if docker else {})}, "ms", 1000)

            r_b, r_d = [], []
            for _ in range(max(1, args.runs // 2)):
                r_b.append(timed(lambda: read_all(log)))
                if docker:
                    r_d.append(timed(lambda: docker("logs", "w0", out=subprocess.DEVNULL)))
            line("read all", r_b, {"docker logs": r_d} if docker else {})
            if dlog:
                print(f"  (dockerd's log of the same output: {os.path.getsize(dlog) / 1e6:.1f} MB)")

            lags = asyncio.run(follow_latency(os.path.join(work, "follow.log")))
            lags.sort()
            print(f"follow latency: median {statistics.median(lags):.2f} ms, p99 {lags[int(len(lags) * 0.99)]:.2f} ms "
                  f"({len(lags)} entries, writer in another process, inotify wake-up + thread hop + decode)")
        finally:
            if docker:
                docker.stop()


if __name__ == "__main__":
    main()
