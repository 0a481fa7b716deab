"""save/load of the debian image: berth vs Docker (a private dockerd, same machine, same run).

    .venv/bin/python bench/saveload.py --debian /var/tmp/debian.tar [--runs 5]

`--debian` is a `docker save` tarball of debian:bookworm (make it once with
`python -c 'from berth.image import bootstrap; bootstrap.debian("/var/tmp/debian.tar")'`, about a minute).
Each run: load into an empty store (berth: a fresh data root; Docker: after `docker rmi -f`), then save
to a file. Medians are printed with the ratio berth/docker (lower is faster; target: no slower)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from berth.image.service import ImageService


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debian", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-", dir="/var/tmp") as work:
        sock = os.path.join(work, "docker.sock")
        proc = subprocess.Popen(["dockerd", "--data-root", f"{work}/droot", "--exec-root", f"{work}/dexec",
                                 "--pidfile", f"{work}/pid", "-H", f"unix://{sock}", "--bridge=none",
                                 "--iptables=false", "--ip6tables=false", "--log-level=error"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while not os.path.exists(sock):
                time.sleep(0.1)
            docker = ["/usr/bin/docker", "-H", f"unix://{sock}"]
            times: dict[str, list[float]] = {k: [] for k in ("berth load", "docker load", "berth save", "docker save")}
            for i in range(args.runs):
                root = os.path.join(work, f"berth{i}")
                t = time.perf_counter()
                svc = ImageService(root)
                with open(args.debian, "rb") as f:
                    svc.load(f)
                times["berth load"].append(time.perf_counter() - t)
                t = time.perf_counter()
                with open(os.path.join(work, "b.tar"), "wb") as out:
                    svc.save(["debian:bookworm"], out)
                times["berth save"].append(time.perf_counter() - t)
                shutil.rmtree(root)
                subprocess.run([*docker, "rmi", "-f", "debian:bookworm"], capture_output=True)
                t = time.perf_counter()
                subprocess.run([*docker, "load", "-q", "-i", args.debian], check=True, capture_output=True)
                times["docker load"].append(time.perf_counter() - t)
                t = time.perf_counter()
                subprocess.run([*docker, "save", "-o", os.path.join(work, "d.tar"), "debian:bookworm"], check=True)
                times["docker save"].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            for op in ("load", "save"):
                b, d = med[f"berth {op}"], med[f"docker {op}"]
                print(f"{op}: berth median {b:.2f}s | docker 20.10 median {d:.2f}s | berth/docker {b / d:.2f} "
                      f"(<= 1.0 is the target) | runs berth {[round(x, 2) for x in times[f'berth {op}']]} "
                      f"docker {[round(x, 2) for x in times[f'docker {op}']]}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
