"""Layer apply: berth (decompress + verify diff_id + extract) vs GNU `tar -xzf` of the same gzip blob,
into empty dirs on the same file system, alternating, n runs each; prints medians and the ratio
(berth throughput / tar throughput; target ≥ 0.7).

    .venv/bin/python bench/layers.py [--debian /path/debian-save.tar] [--runs 5]

Layers: a synthetic 50k-file gzip layer (made here) and, with --debian, the layer of a debian image
(a `docker save` tarball, e.g. from `berth.image.bootstrap.debian`), gzipped here with `gzip -6`."""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from berth.image.apply import apply_tar
from berth.image.stream import VerifiedStream


def synthetic(path: str, files: int = 50_000) -> None:
    rnd = random.Random(1)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in range(files // 100):
            ti = tarfile.TarInfo(f"d{d:04}")
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
            for i in range(100):
                n = rnd.choice([0, 100, 1000, 4000, 12000])
                data = rnd.randbytes(n // 4) * 4
                ti = tarfile.TarInfo(f"d{d:04}/f{i:03}")
                ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
                tf.addfile(ti, io.BytesIO(data))


def diff_id_of(blob: str) -> str:
    with open(blob, "rb") as f:
        s = VerifiedStream(f, threaded=False)
        s.verify()
        return s.diff_id


def run_berth(blob: str, dest: str, diff_id: str) -> float:
    t = time.perf_counter()
    with open(blob, "rb") as f:
        s = VerifiedStream(f, diff_id=diff_id)
        try:
            apply_tar(s, dest, "overlay")
            s.verify()
        finally:
            s.close()
    return time.perf_counter() - t


def run_tar(blob: str, dest: str) -> float:
    t = time.perf_counter()
    subprocess.run(["tar", "-xzf", blob, "-C", dest], check=True)
    return time.perf_counter() - t


def bench(name: str, blob: str, runs: int, work: str) -> None:
    diff_id = diff_id_of(blob)
    size = os.path.getsize(blob)
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(runs):
        for who in ("berth", "tar") if i % 2 == 0 else ("tar", "berth"):
            d = os.path.join(work, f"{who}-{i}")
            os.mkdir(d)
            (ours if who == "berth" else theirs).append(run_berth(blob, d, diff_id) if who == "berth"
                                                      else run_tar(blob, d))
            shutil.rmtree(d)
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"{name}: blob {size / 1e6:.1f} MB | berth median {mo:.2f}s ({size / mo / 1e6:.1f} MB/s) | "
          f"tar -xzf median {mt:.2f}s | berth/tar throughput {mt / mo:.2f}x (target >= 0.7) | n={runs}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debian", help="a docker save tarball of a one-layer debian image")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-", dir="/var/tmp") as work:
        blob = os.path.join(work, "synthetic.tar.gz")
        if args.files:
            synthetic(blob, args.files)
            bench(f"synthetic {args.files} files", blob, args.runs, work)
        if args.debian:
            with tarfile.open(args.debian) as tf:
                import json

                man = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
                layer = tf.extractfile(man[0]["Layers"][0])
                plain = os.path.join(work, "debian.tar")
                with open(plain, "wb") as out:
                    shutil.copyfileobj(layer, out)  # type: ignore[arg-type]
            subprocess.run(["gzip", "-6", "-n", plain], check=True)
            gz = plain + ".gz"
            bench("debian:bookworm layer", gz, args.runs, work)


if __name__ == "__main__":
    main()
