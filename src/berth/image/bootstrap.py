"""Real base images made on this machine, as `docker save` tarballs (the Docker 25+ layout), since the
machine can't reach a registry: `busybox(out)` from Debian's busybox-static (applets as symlinks,
Cmd ["sh"], a PATH), tagged busybox:latest; `debian(out)` = debian:bookworm from mmdebstrap and the
machine's apt sources (about a minute and 170 MB: for the demo and benchmarks, not the tests).
Load either with `ImageService.load` (or `docker load`)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from typing import Any

from berth.errors import NotFound
from berth.image.archive import host_platform
from berth.image.diff import write_tree
from berth.image.timeutil import ZERO_TIME
from berth.oci import mediatypes as mt
from berth.oci import reference
from berth.oci.manifest import dumps

BUSYBOX_BIN = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _rfc3339(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ZERO_TIME


def write_archive(out_tar: str, layer_tar: str, config: dict[str, Any], ref: str, created_by: str) -> str:
    """Write a one-layer image as a Docker 25+ `docker save` tarball; returns the image id."""
    h = hashlib.sha256()
    size = 0
    with open(layer_tar, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    diff_id = "sha256:" + h.hexdigest()
    os_, arch = host_platform()
    created = config.pop("created", ZERO_TIME)
    cfg = dumps({"architecture": arch, "config": config, "created": created,
                 "history": [{"created": created, "created_by": created_by}], "os": os_,
                 "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    man = dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"mediaType": mt.OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
                 "layers": [{"mediaType": mt.OCI_LAYER, "digest": diff_id, "size": size}]})
    man_digest = "sha256:" + hashlib.sha256(man).hexdigest()
    r = reference.parse(ref).with_default_tag()
    index = dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": man_digest, "size": len(man),
         "annotations": {"io.containerd.image.name": str(r), "org.opencontainers.image.ref.name": r.tag}}]})
    manifest_json = dumps([{"Config": "blobs/sha256/" + cfg_digest[7:], "RepoTags": [r.familiar()],
                            "Layers": ["blobs/sha256/" + diff_id[7:]]}])
    repositories = dumps({r.familiar_name(): {r.tag: diff_id[7:]}})

    def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode = len(data), 0o644
        tf.addfile(ti, io.BytesIO(data))

    tmp = out_tar + ".tmp"
    with open(tmp, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        ti = tarfile.TarInfo("blobs/sha256/" + diff_id[7:])
        ti.size, ti.mode = size, 0o644
        with open(layer_tar, "rb") as f:
            tf.addfile(ti, f)
        add(tf, "blobs/sha256/" + cfg_digest[7:], cfg)
        add(tf, "blobs/sha256/" + man_digest[7:], man)
        add(tf, "index.json", index)
        add(tf, "manifest.json", manifest_json)
        add(tf, "oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
        add(tf, "repositories", repositories)
    os.replace(tmp, out_tar)
    return cfg_digest


def busybox_rootfs(dest: str, busybox: str = BUSYBOX_BIN) -> None:
    """A busybox root: /bin/busybox, every applet as a symlink to it, /etc/passwd and /etc/group."""
    if not os.path.exists(busybox):
        raise NotFound(f"{busybox} not found (apt-get install busybox-static)")
    mtime = int(os.stat(busybox).st_mtime)
    for d in ("bin", "etc", "home", "root", "tmp", "var", "usr/bin", "usr/sbin", "sbin", "proc", "sys", "dev"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and not os.path.lexists(os.path.join(dest, "bin", a)):
            os.symlink("busybox", os.path.join(dest, "bin", a))
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\ndaemon:x:1:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n",
    }
    for name, text in files.items():
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
    for top, dirs, names in os.walk(dest):
        for n in dirs + names:
            os.utime(os.path.join(top, n), (mtime, mtime), follow_symlinks=False)
    os.utime(dest, (mtime, mtime))


def busybox(out_tar: str, ref: str = "busybox:latest", busybox_bin: str = BUSYBOX_BIN) -> str:
    """Make busybox:latest as a `docker save` tarball at `out_tar`; returns the image id."""
    with tempfile.TemporaryDirectory(prefix="berth-bootstrap-") as tmp:
        root = os.path.join(tmp, "rootfs")
        busybox_rootfs(root, busybox_bin)
        layer = os.path.join(tmp, "layer.tar")
        with open(layer, "wb") as f:
            write_tree(root, f)
        version = subprocess.run([busybox_bin], capture_output=True, text=True).stdout.split("\n", 1)[0]
        created = _rfc3339(os.stat(busybox_bin).st_mtime)
        return write_archive(out_tar, layer, {"Env": [PATH_ENV], "Cmd": ["sh"], "created": created}, ref,
                             f"berth bootstrap: {version.strip() or 'busybox-static'}")


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 sources or sources.list)."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def debian(out_tar: str, ref: str = "debian:bookworm", suite: str = "bookworm") -> str:
    """Make debian:bookworm (minbase) with mmdebstrap as a `docker save` tarball; returns the image id."""
    if shutil.which("mmdebstrap") is None:
        raise NotFound("mmdebstrap not found (apt-get install mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="berth-bootstrap-") as tmp:
        layer = os.path.join(tmp, "rootfs.tar")
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", suite, layer, apt_mirror()],
                       check=True, stdin=subprocess.DEVNULL)
        return write_archive(out_tar, layer, {"Env": [PATH_ENV], "Cmd": ["bash"]}, ref, f"mmdebstrap {suite}")
