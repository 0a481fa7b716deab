"""berth's registry server against Debian's docker-registry (distribution 2.8.2 = registry:2), same clients, one run.

Workloads (each timed `--repeat` times, median kept; every server on a free loopback port, fresh storage):
  skopeo push   `skopeo copy oci:<layout> docker://…` of the busybox layouts and a synthetic big image
  skopeo pull   `skopeo copy docker://… oci:<dir>` of the same
  blob put/get  one large blob, monolithic PUT and GET, through httpx (keep-alive)
  head x N      N sequential HEADs of a blob on one connection (per-request overhead)

    .venv/bin/python bench/registry_server.py [--big-mb 64] [--repeat 3] [--heads 500]

Prints a table and berth/peer ratios (< 1.0 means berth is faster)."""

from __future__ import annotations

import argparse
import gzip
import hashlib
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
from collections.abc import Callable

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX = os.path.join(ROOT, "..", "shared", "fixtures", "busybox")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Berth:
    name = "berth"

    def __init__(self, root: str) -> None:
        cmd = [sys.executable, "-c", "import sys; from berth.registry.server import main; sys.exit(main(sys.argv[1:]))",
               "serve", "--addr", "127.0.0.1:0", "--root", root, "--log-level", "warning", "--gc-interval", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.host = line.rsplit("//", 1)[1].strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


class DockerRegistry:
    name = "docker-registry"

    def __init__(self, root: str) -> None:
        port = free_port()
        cfg = os.path.join(root, "config.yml")
        os.makedirs(root, exist_ok=True)
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root}/data}}, "
                    f"delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.host = f"127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"http://{self.host}/v2/")
                return
            except httpx.TransportError:
                time.sleep(0.02)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def busybox_layout(variant: str, dest: str) -> str:
    src = os.path.join(BUSYBOX, variant)
    os.makedirs(os.path.join(dest, "blobs", "sha256"))
    for n in ("oci-layout", "index.json"):
        shutil.copyfile(os.path.join(src, n), os.path.join(dest, n))
    for entry in os.listdir(os.path.join(src, "blobs", "sha256")):
        path = os.path.join(src, "blobs", "sha256", entry)
        with open(path, "rb") as f:
            head = f.read(256)
        if head.startswith(b"../"):
            path = os.path.normpath(os.path.join(os.path.dirname(path), head.decode().strip()))
        shutil.copyfile(path, os.path.join(dest, "blobs", "sha256", entry))
    return dest


def big_layout(dest: str, mb: int) -> str:
    """An image whose one layer is `mb` MiB of gzip (incompressible data, so size stays)."""
    os.makedirs(os.path.join(dest, "blobs", "sha256"))

    def put(data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(dest, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return f"sha256:{h}"

    layer = gzip.compress(os.urandom(mb << 20), compresslevel=1)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
        "sha256:" + "0" * 64]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                                      "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": put(layer), "size": len(layer)}]}).encode()
    md = put(manifest)
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": md, "size": len(manifest)}]}, f)
    return dest


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def skopeo(*args: str) -> None:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)


def workloads(host: str, layouts: dict[str, str], work: str, big: bytes, heads: int, rnd: int) -> dict[str, float]:
    out: dict[str, float] = {}
    os.makedirs(work, exist_ok=True)
    for name, path in layouts.items():
        ref = f"docker://{host}/bench/{name}:r{rnd}"
        out[f"skopeo push {name}"] = timed(lambda p=path, r=ref: skopeo("copy", "--dest-tls-verify=false",
                                                                        f"oci:{p}", r))
        dest = os.path.join(work, f"pull-{name}-{rnd}")
        out[f"skopeo pull {name}"] = timed(lambda r=ref, d=dest: skopeo("copy", "--src-tls-verify=false", r,
                                                                        f"oci:{d}:x"))
    d = "sha256:" + hashlib.sha256(big).hexdigest()
    with httpx.Client(base_url=f"http://{host}", timeout=120) as c:
        repo = f"bench/blob{rnd}"

        def put() -> None:
            loc = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            r = c.put(loc + ("&" if "?" in loc else "?") + f"digest={d}", content=big)
            assert r.status_code == 201, r.text

        def get() -> None:
            n = 0
            with c.stream("GET", f"/v2/{repo}/blobs/{d}") as r:
                for chunk in r.iter_raw(1 << 20):
                    n += len(chunk)
            assert n == len(big)

        def head() -> None:
            for _ in range(heads):
                assert c.head(f"/v2/{repo}/blobs/{d}").status_code == 200

        out[f"blob PUT {len(big) >> 20} MiB"] = timed(put)
        out[f"blob GET {len(big) >> 20} MiB"] = timed(get)
        out[f"HEAD x{heads}"] = timed(head)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--heads", type=int, default=500)
    args = ap.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install skopeo docker-registry)", file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="berth-bench-registry-")
    try:
        layouts = {v: busybox_layout(f"latest-{v}", os.path.join(work, "src", v)) for v in ("musl", "glibc")}
        layouts[f"big{args.big_mb}"] = big_layout(os.path.join(work, "src", "big"), args.big_mb)
        big = os.urandom(args.big_mb << 20)
        results: dict[str, dict[str, list[float]]] = {}
        for rnd in range(args.repeat):
            # alternate who goes first, so caches and noise favour neither
            order = [Berth, DockerRegistry] if rnd % 2 == 0 else [DockerRegistry, Berth]
            for cls in order:
                root = os.path.join(work, f"{cls.name}-{rnd}")
                server = cls(root)
                try:
                    res = workloads(server.host, layouts, os.path.join(work, f"{cls.name}-pull-{rnd}"), big,
                                    args.heads, rnd)
                finally:
                    server.stop()
                for k, v in res.items():
                    results.setdefault(k, {}).setdefault(cls.name, []).append(v)
                shutil.rmtree(root, ignore_errors=True)
        print(f"{'workload':28} {'berth (s)':>10} {'docker-registry (s)':>20} {'ratio':>7}")
        ratios = []
        for k, per in results.items():
            b, p = statistics.median(per["berth"]), statistics.median(per["docker-registry"])
            ratios.append(b / p)
            print(f"{k:28} {b:10.3f} {p:20.3f} {b / p:7.2f}")
        geo = statistics.geometric_mean(ratios)
        print(f"geometric mean ratio (berth/docker-registry, < 1 is faster): {geo:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
