"""Real inputs for image tests, from ../shared/fixtures (read-only: copied before use)."""

from __future__ import annotations

import os
import shutil

FIXTURES = os.environ.get("BERTH_FIXTURES") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures"))
BUSYBOX = os.path.join(FIXTURES, "busybox")
GGCR = os.path.join(FIXTURES, "ggcr", "pkg", "v1")
TARBALLS = os.path.join(GGCR, "tarball", "testdata")
MUTATE = os.path.join(GGCR, "mutate", "testdata")


def materialize_layout(src: str, dst: str, symlinks: bool = True) -> str:
    """Copy an OCI layout. The busybox layouts' blobs are symlinks upstream, but a checkout without
    symlink support stores them as small files holding the link target: turn those back into links
    (or, with symlinks=False, into copies of the target)."""
    shutil.copytree(src, dst, symlinks=True)
    blobs = os.path.join(dst, "blobs", "sha256")
    for name in os.listdir(blobs):
        p = os.path.join(blobs, name)
        if os.path.islink(p) or os.path.getsize(p) > 200:
            continue
        with open(p, "rb") as f:
            target = f.read().decode(errors="replace").strip()
        if target.startswith("../") and os.path.isfile(os.path.join(blobs, target)):
            os.chmod(p, 0o644)
            os.unlink(p)
            if symlinks:
                os.symlink(target, p)
            else:
                shutil.copyfile(os.path.join(blobs, target), p)
    for top, dirs, files in os.walk(dst):
        for n in dirs + files:
            if not os.path.islink(os.path.join(top, n)):
                os.chmod(os.path.join(top, n), 0o755 if n in dirs else 0o644)
    return dst
