"""berth.registry.client against skopeo, same registry (berth's), one run: the transfer half of pull and push.

  pull  `skopeo copy docker://… oci:<dir>`  vs  resolve + all blobs fetched in parallel, verified, into an
        OCI layout (what berthd's pull does before unpacking)
  push  `skopeo copy oci:<dir> docker://…`  vs  HEAD + monolithic upload of each blob in parallel + manifest PUT

Images: busybox (glibc) and a synthetic image of several large layers. Each timed `--repeat` times, median kept.

    .venv/bin/python bench/registry_client.py [--layers 4] [--layer-mb 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

from bench.registry_server import Berth, busybox_layout  # noqa: E402

from berth.registry.client import RegistryClient  # noqa: E402


def synthetic_layout(dest: str, layers: int, mb: int) -> str:
    os.makedirs(os.path.join(dest, "blobs", "sha256"))

    def put(data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(dest, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return f"sha256:{h}"

    descs = []
    for _ in range(layers):
        data = gzip.compress(os.urandom(mb << 20), compresslevel=1)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(data),
                      "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64] * layers}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                                      "size": len(config)}, "layers": descs}).encode()
    md = put(manifest)
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": md, "size": len(manifest)}]}, f)
    return dest


def skopeo(*args: str) -> None:
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)


async def berth_pull(host: str, repo: str, tag: str, dest: str) -> None:
    os.makedirs(os.path.join(dest, "blobs", "sha256"), exist_ok=True)
    async with RegistryClient(host) as c:
        r = await c.resolve(repo, tag)
        doc = r.json()

        async def one(desc: dict) -> None:
            path = os.path.join(dest, "blobs", "sha256", desc["digest"][7:])
            with open(path + ".part", "wb") as f:
                async for chunk in c.fetch_blob(repo, desc["digest"], size=desc["size"]):
                    f.write(chunk)
            os.rename(path + ".part", path)

        await asyncio.gather(*(one(d) for d in doc["layers"]))
        for d, data in ((str(r.digest), r.manifest), (doc["config"]["digest"], r.config or b"")):
            with open(os.path.join(dest, "blobs", "sha256", d[7:]), "wb") as f:
                f.write(data)


async def berth_push(host: str, repo: str, tag: str, src: str) -> None:
    with open(os.path.join(src, "index.json")) as f:
        md = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(src, "blobs", "sha256", md[7:]), "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    async with RegistryClient(host) as c:
        await c.ping()

        async def one(desc: dict) -> None:
            if await c.blob_exists(repo, desc["digest"]) is not None:
                return
            path = os.path.join(src, "blobs", "sha256", desc["digest"][7:])

            async def body():  # type: ignore[no-untyped-def]
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        yield chunk

            await c.upload_blob(repo, desc["digest"], body(), size=desc["size"])

        await asyncio.gather(*(one(d) for d in [doc["config"], *doc["layers"]]))
        await c.put_manifest(repo, tag, raw, doc["mediaType"])


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--layer-mb", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="berth-bench-regclient-")
    try:
        images = {"busybox": busybox_layout("latest-glibc", os.path.join(work, "src-bb")),
                  f"{args.layers}x{args.layer_mb}MiB": synthetic_layout(os.path.join(work, "src-big"), args.layers,
                                                                        args.layer_mb)}
        rows: dict[str, dict[str, list[float]]] = {}
        for rnd in range(args.repeat):
            for who in (("skopeo", "berth") if rnd % 2 == 0 else ("berth", "skopeo")):
                # a fresh registry (new port) per client and round: skopeo's blob-info cache would otherwise
                # turn its pushes into cross-repository mounts of what an earlier round pushed
                server = Berth(os.path.join(work, f"registry-{who}-{rnd}"))
                try:
                    for name, src in images.items():
                        repo, tag = f"bench/{name.lower()}", "t"
                        ref = f"docker://{server.host}/{repo}:{tag}"
                        if who == "skopeo":
                            t = timed(lambda s=src, r=ref: skopeo("copy", "--dest-tls-verify=false", f"oci:{s}", r))
                        else:
                            t = timed(lambda s=src, rp=repo, h=server.host: asyncio.run(berth_push(h, rp, "t", s)))
                        rows.setdefault(f"push {name}", {}).setdefault(who, []).append(t)
                        dest = os.path.join(work, f"pull-{who}-{name}-{rnd}")
                        if who == "skopeo":
                            t = timed(lambda r=ref, d=dest: skopeo("copy", "--src-tls-verify=false", r, f"oci:{d}:x"))
                        else:
                            t = timed(lambda d=dest, rp=repo, h=server.host: asyncio.run(berth_pull(h, rp, "t", d)))
                        rows.setdefault(f"pull {name}", {}).setdefault(who, []).append(t)
                        shutil.rmtree(dest, ignore_errors=True)
                finally:
                    server.stop()
                    shutil.rmtree(os.path.join(work, f"registry-{who}-{rnd}"), ignore_errors=True)
        print(f"{'workload':24} {'berth client (s)':>17} {'skopeo (s)':>11} {'ratio':>7}")
        for k, per in rows.items():
            b, s = statistics.median(per["berth"]), statistics.median(per["skopeo"])
            print(f"{k:24} {b:17.3f} {s:11.3f} {b / s:7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
