"""berthd's pull and push (the images backend) against skopeo (+ umoci), and a no-op pull against Docker.

    .venv/bin/python bench/pull_push.py [--repeat 3] [--layers 4] [--layer-mb 25] [--no-docker]

Same machine, same run, same registry (berth's, on loopback), alternating who goes first each round:

  pull   berth: `Distribution.pull` into an empty image store (resolve, parallel downloads verified into
         the content store, unpack into snapshots)   vs   `skopeo copy docker://… oci:<dir>` followed by
         `umoci raw unpack` of the same image (download + verify, then extract a root filesystem)
  push   berth: `Distribution.push` of the image just pulled to a fresh registry   vs   `skopeo copy
         oci:<dir> docker://…` of what skopeo pulled, to a fresh registry (fresh registries: nothing to
         mount or skip, and skopeo's blob-info cache cannot turn uploads into mounts)
  noop   `docker pull` (CLI 28) of an image already present, through berth's Engine API (a unix socket,
         served in this process) and through a private dockerd 20.10 (its own data root and socket; never
         /var/run/docker.sock)

Images: Alpine 3.20's minirootfs (the fixture, one real gzip layer) and a synthetic image of `--layers`
layers of `--layer-mb` MiB of files (half random, half text). Medians are printed with berth/peer ratios
(below 1: berth is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

from bench.registry_server import Berth  # noqa: E402

from berth.api import EngineAPI  # noqa: E402
from berth.api.app import Backends  # noqa: E402
from berth.daemon.distribution import Distribution  # noqa: E402
from berth.daemon.images import Images  # noqa: E402
from berth.image.service import ImageService  # noqa: E402

ALPINE = os.path.join(ROOT, "..", "shared", "fixtures", "alpine-3.20", "x86_64",
                      "alpine-minirootfs-3.20.3-x86_64.tar.gz")
CLI = "/usr/local/bin/docker"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# -- images as OCI layouts -----------------------------------------------------------------------------


def layout(dest: str, gz_layers: list[bytes]) -> str:
    """An OCI layout (tag "t") of gzip layers, with a real config (diff_ids of the plain tars)."""
    os.makedirs(os.path.join(dest, "blobs", "sha256"))

    def put(data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(dest, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return f"sha256:{h}"

    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(g)).hexdigest() for g in gz_layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(g), "size": len(g)}
              for g in gz_layers]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)}, "layers": layers}).encode()
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": put(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "t"}}]}, f)
    return dest


def synthetic_layer(mb: int, seed: int) -> bytes:
    """`mb` MiB of files of 16-256 KiB, half random, half text: gzip has real work on half of it."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w") as tf:
        i = 0
        while total < mb << 20:
            size = rng.randrange(16 << 10, 256 << 10)
            data = rng.randbytes(size) if i % 2 else (f"line {i} of layer {seed}\n" * (size // 24)).encode()
            ti = tarfile.TarInfo(f"data/{seed}/{i:05d}")
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
            total += len(data)
            i += 1
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


# -- the two sides -------------------------------------------------------------------------------------


def run(cmd: list[str], **kw: Any) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]}: {p.stderr.strip()}")


async def _drain(it: Any) -> list[dict[str, Any]]:
    msgs = [m async for m in it]
    for m in msgs:
        if "error" in m:
            raise RuntimeError(m["error"])
    return msgs


def berth_pull(store: ImageService, host: str, repo: str) -> None:
    async def go() -> None:
        dist = Distribution(store)
        try:
            await _drain(dist.pull(image=f"{host}/{repo}", tag="t", platform=None, auth=None))
        finally:
            await dist.aclose()

    asyncio.run(go())


def berth_push(store: ImageService, src: str, dest: str) -> None:
    store.tag(src, dest)

    async def go() -> None:
        dist = Distribution(store)
        try:
            await _drain(dist.push(dest, tag=None, auth=None))
        finally:
            await dist.aclose()

    asyncio.run(go())


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def berth_round(work: str, seed: str, target: str, repo: str) -> tuple[float, float]:
    """Pull `repo` from `seed` into an empty store, then push it to `target`: (pull s, push s)."""
    store = ImageService(work)
    try:
        pull_s = timed(lambda: berth_pull(store, seed, repo))
        push_s = timed(lambda: berth_push(store, f"{seed}/{repo}:t", f"{target}/{repo}:t"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pull_s, push_s


def skopeo_round(work: str, seed: str, target: str, repo: str) -> tuple[float, float]:
    """skopeo copy to an OCI layout + umoci raw unpack, then skopeo copy of that layout to `target`."""
    layout_dir, rootfs = work + "-layout", work + "-rootfs"

    def pull() -> None:
        run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{seed}/{repo}:t", f"oci:{layout_dir}:t"])
        run(["umoci", "raw", "unpack", "--image", f"{layout_dir}:t", rootfs])

    def push() -> None:
        run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout_dir}:t", f"docker://{target}/{repo}:t"])

    try:
        return timed(pull), timed(push)
    finally:
        shutil.rmtree(layout_dir, ignore_errors=True)
        shutil.rmtree(rootfs, ignore_errors=True)


class ServedImages:
    """berth's Engine API with the images backend over `store`, on a unix socket, served from a thread."""

    def __init__(self, store: ImageService, sock: str) -> None:
        self.sock = sock
        self.api = EngineAPI(Backends(images=Images(store)))
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_ev = asyncio.Event()
            server = self.api.server(unix=self.sock)
            await server.start()
            self.ready.set()
            await self.stop_ev.wait()
            await server.close()

        self.loop.run_until_complete(main())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_ev.set)
        self.thread.join(10)


class PrivateDockerd:
    def __init__(self, work: str) -> None:
        self.work = work
        self.sock = os.path.join(work, "docker.sock")
        self.exec_root = tempfile.mkdtemp(prefix="bpp-")  # short: containerd's socket paths are limited
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(work, "root"), "--exec-root", self.exec_root,
             "--pidfile", os.path.join(work, "pid"), "-H", f"unix://{self.sock}", "--bridge=none",
             "--iptables=false", "--ip6tables=false", "--log-level=error",
             "--containerd-namespace", "berth-bench-pp", "--containerd-plugins-namespace", "berth-bench-ppp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run([CLI, "-H", f"unix://{self.sock}", "version"], capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.exec_root, ignore_errors=True)


# -- main ----------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--layer-mb", type=int, default=25)
    ap.add_argument("--noop-runs", type=int, default=7)
    ap.add_argument("--no-docker", action="store_true", help="skip the no-op pull against dockerd")
    args = ap.parse_args()
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="berth-bench-pullpush-")
    rows: dict[str, dict[str, list[float]]] = {}
    servers: list[Berth] = []

    def registry(name: str) -> Berth:
        s = Berth(os.path.join(work, name))
        servers.append(s)
        return s

    try:
        with open(ALPINE, "rb") as f:
            alpine = f.read()
        big = [synthetic_layer(args.layer_mb, i) for i in range(args.layers)]
        images = {"alpine": layout(os.path.join(work, "src-alpine"), [alpine]),
                  f"synthetic {args.layers}x{args.layer_mb}MiB": layout(os.path.join(work, "src-big"), big)}
        for name, path in images.items():
            size = sum(os.path.getsize(os.path.join(path, "blobs", "sha256", b))
                       for b in os.listdir(os.path.join(path, "blobs", "sha256")))
            print(f"{name}: {size / 1e6:.1f} MB of blobs")
        seed = registry("seed")
        repos = {}
        for name, path in images.items():
            repo = "seed/" + name.split()[0]
            run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{path}:t", f"docker://{seed.host}/{repo}:t"])
            repos[name] = repo
        for rnd in range(args.repeat):
            for who in (("berth", "skopeo") if rnd % 2 == 0 else ("skopeo", "berth")):
                target = registry(f"push-{who}-{rnd}")
                for name, repo in repos.items():
                    side = berth_round if who == "berth" else skopeo_round
                    pull_s, push_s = side(os.path.join(work, f"{who}-{rnd}-{repo.replace('/', '-')}"), seed.host,
                                          target.host, repo)
                    rows.setdefault(f"pull {name}", {}).setdefault(who, []).append(pull_s)
                    rows.setdefault(f"push {name}", {}).setdefault(who, []).append(push_s)
                target.stop()
                servers.remove(target)
                shutil.rmtree(os.path.join(work, f"push-{who}-{rnd}"), ignore_errors=True)
        if not args.no_docker and shutil.which("dockerd") and os.path.exists(CLI):
            noop(rows, work, seed.host, repos["alpine"], args.noop_runs)
        print(f"\n{'workload':34} {'berth (s)':>10} {'peer (s)':>10} {'berth/peer':>11}  peer")
        for k, per in rows.items():
            peer = next(p for p in per if p != "berth")
            mine, theirs = statistics.median(per["berth"]), statistics.median(per[peer])
            print(f"{k:34} {mine:10.3f} {theirs:10.3f} {mine / theirs:11.2f}  {peer}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def noop(rows: dict[str, dict[str, list[float]]], work: str, host: str, repo: str, runs: int) -> None:
    """`docker pull` of a present image: berth's Engine API vs a private dockerd, same CLI binary."""
    ref = f"{host}/{repo}:t"
    store = ImageService(os.path.join(work, "noop-store"))
    served = ServedImages(store, os.path.join(work, "berth.sock"))
    dockerd = PrivateDockerd(os.path.join(work, "dockerd"))
    hosts = {"berth": f"unix://{served.sock}", "dockerd": f"unix://{dockerd.sock}"}
    try:
        for h in hosts.values():
            run([CLI, "-H", h, "pull", "-q", ref])
        for i in range(runs):
            for who in (("berth", "dockerd") if i % 2 == 0 else ("dockerd", "berth")):
                took = timed(functools.partial(run, [CLI, "-H", hosts[who], "pull", ref]))
                rows.setdefault("no-op pull (docker CLI) alpine", {}).setdefault(who, []).append(took)
    finally:
        served.stop()
        dockerd.stop()


if __name__ == "__main__":
    sys.exit(main())
