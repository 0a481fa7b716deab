"""Garbage collection of unreferenced blobs, while the registry keeps serving.

distribution's GC is stop-the-world (read-only mode or a stopped registry). Here:
1. mark (in a thread, read-only): every manifest revision of every repository, and what each
   references (config, layers, index children), is live;
2. sweep (on the event loop, in small batches): a blob that is not live is deleted only if its mtime
   is older than the GC's start minus a grace period.
Storage refreshes a blob's mtime whenever something starts depending on it (upload completion,
HEAD, mount, a manifest put that references it), and the handlers do that without yielding between
the check and the write, while each sweep batch runs without yielding between its stat and unlink.
So a blob referenced by a push racing the GC is always seen as fresh and kept; only blobs nobody
touched for the whole grace period go. Repository links to swept blobs are removed too, and
uploads abandoned for a day are purged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass

from berth.errors import InvalidArgument
from berth.oci.digest import Digest
from berth.registry.server.storage import Storage
from berth.registry.server.uploads import Uploads

log = logging.getLogger("berth.registry.gc")
UPLOAD_MAX_AGE = 24 * 3600.0
_BATCH = 256


@dataclass
class GcStats:
    live: int = 0
    deleted: int = 0
    freed: int = 0
    links: int = 0
    uploads: int = 0


def mark(storage: Storage) -> set[Digest]:
    live: set[Digest] = set()
    for name in storage.repositories():
        for d in storage.iter_manifests(name):
            live.add(d)
            try:
                doc = json.loads(storage.read_blob(d))
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            refs = [doc.get("config"), *(doc.get("layers") or []), *(doc.get("manifests") or [])]
            for ref in refs:
                if isinstance(ref, dict) and isinstance(ref.get("digest"), str):
                    with contextlib.suppress(InvalidArgument):
                        live.add(Digest.parse(ref["digest"]))
    return live


async def collect(storage: Storage, uploads: Uploads | None = None, grace: float = 3600.0) -> GcStats:
    """One mark-and-sweep pass; safe to run while the registry serves pushes and pulls."""
    cutoff = time.time() - grace
    live = await asyncio.to_thread(mark, storage)
    stats = await sweep(storage, live, cutoff)
    if uploads is not None:
        stats.uploads = uploads.purge(UPLOAD_MAX_AGE)
    log.info("gc: %d live, %d blobs deleted (%d bytes), %d links, %d uploads purged",
             stats.live, stats.deleted, stats.freed, stats.links, stats.uploads)
    return stats


async def sweep(storage: Storage, live: set[Digest], cutoff: float) -> GcStats:
    """Delete blobs not in `live` and untouched since `cutoff`, and the repository links to them."""
    stats = GcStats(live=len(live))
    candidates = await asyncio.to_thread(lambda: [(d, p) for d, p in storage.iter_blobs() if d not in live])
    deleted: set[Digest] = set()
    for i, (d, path) in enumerate(candidates):
        if i % _BATCH == _BATCH - 1:
            await asyncio.sleep(0)
        # no await between this stat and the unlink: a handler touching the blob runs before or after both
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_mtime >= cutoff:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            deleted.add(d)
            stats.freed += st.st_size
    stats.deleted = len(deleted)
    if deleted:
        links = await asyncio.to_thread(lambda: list(storage.iter_layer_links()))
        for _name, d, link in links:
            # a blob re-uploaded since the sweep has a new file: keep its links
            if d in deleted and storage.blob_size(d) is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
                    stats.links += 1
    return stats


async def run_periodically(storage: Storage, uploads: Uploads, interval: float, grace: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await collect(storage, uploads, grace)
        except Exception:
            log.exception("garbage collection failed")
