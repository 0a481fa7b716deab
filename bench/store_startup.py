"""Store start-up with many images: time to open `ImageService` on a data root holding N images
(default 1,000, each a distinct one-layer image made from a tiny tar), plus resolve and list timings.

    .venv/bin/python bench/store_startup.py [--images 1000]"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from berth.image.service import ImageService


def tiny_tar(i: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = f"image {i}\n".encode()
        ti = tarfile.TarInfo("id.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-", dir="/var/tmp") as root:
        svc = ImageService(root)
        t = time.perf_counter()
        for i in range(args.images):
            svc.import_image(io.BytesIO(tiny_tar(i)), ref=f"bench/img{i}:latest")
        print(f"made {args.images} images in {time.perf_counter() - t:.1f}s")
        del svc
        opens = []
        for _ in range(5):
            t = time.perf_counter()
            svc = ImageService(root)
            opens.append(time.perf_counter() - t)
        t = time.perf_counter()
        svc.resolve(f"bench/img{args.images // 2}")
        resolve = time.perf_counter() - t
        t = time.perf_counter()
        n = len(svc.list_images())
        listing = time.perf_counter() - t
        print(f"open with {args.images} images: median {sorted(opens)[2] * 1000:.1f} ms (min {min(opens) * 1000:.1f})"
              f" | resolve {resolve * 1000:.2f} ms | list {n} images {listing * 1000:.0f} ms")


if __name__ == "__main__":
    main()
