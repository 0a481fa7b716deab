"""`ImageService`: berth's image store, the one object the daemon (and the registry client) uses.

    svc = ImageService("/var/lib/berth")         # opens content store, snapshotter, metadata; cheap
    svc.load(fileobj) / svc.load_dir(path)        # `docker save` tarballs (Docker 25+ and legacy), OCI layouts
    svc.save(["busybox"], fileobj)                # `docker save` format (OCI layout + manifest.json + repositories)
    svc.resolve("busybox") -> ImageRecord         # names, name@digest, sha256:<id>, id, unique id prefix
    svc.list_images() / svc.inspect(ref) / svc.history(ref)   # Docker's JSON shapes (/images/json, …/json, …/history)
    svc.tag(ref, new) / svc.delete(ref, force=, prune=) / svc.prune(all_unused=) / svc.disk_usage()
    svc.import_image(src, changes=, ref=, message=) / svc.export_image(ref, fileobj)
    svc.prepare_rootfs(cid, image_id) -> [Mount]; mount(mounts, target) / unmount(target) (berth.store.mount)
    svc.remove_rootfs(cid); svc.changes(cid); svc.diff_tar(cid, fileobj); svc.rw_size(cid)
    svc.export_container(cid, fileobj); svc.commit(cid, changes=, ref=, message=, author=, config=)
    svc.set_in_use(cid, image_id) / svc.release(cid); svc.running = callable(cid) -> bool
    registry client: svc.content.writer(digest, size, ref) (verifying, resumable), svc.has_blob(d),
                     svc.store_manifest(bytes, media_type, ref), svc.unpack(image_id),
                     svc.layer_for_push(diff_id) -> Descriptor (compressed blob + recorded mapping)

Thread-safe: metadata changes happen under one lock; long work (extraction, copying) runs outside it
where it can, and in-flight blobs/snapshots are leased so a concurrent GC never takes them.
Errors: NotFound "No such image: x", Conflict with Docker's rmi messages, InvalidArgument for bad input.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.image import archive, ops
from berth.image import inspect as shapes
from berth.image.apply import apply_tar
from berth.image.archive import LoadResult
from berth.image.stream import VerifiedStream
from berth.oci import mediatypes as mt
from berth.oci import reference
from berth.oci.manifest import Descriptor, ImageConfig, chain_ids, manifest_bytes, parse_manifest
from berth.oci.reference import Reference
from berth.store import snapshot
from berth.store.content import ContentStore
from berth.store.metadata import ImageRow, LayerRow, Metadata
from berth.store.mount import Mount, mount, unmount

__all__ = ["ImageRecord", "ImageService", "Mount", "mount", "unmount"]


@dataclass
class ImageRecord:
    """An image as the daemon sees it: its row, its parsed config and its references (full form)."""

    id: str
    config: ImageConfig
    row: ImageRow
    refs: list[str]

    @property
    def chain(self) -> list[str]:
        return self.row.chain

    def repo_tags(self) -> list[str]:
        return [reference.parse(r).familiar() for r in self.refs if "@" not in r]

    def repo_digests(self) -> list[str]:
        return [reference.parse(r).familiar() for r in self.refs if "@" in r]


@dataclass
class PendingImage:
    """An image whose layers are unpacked and blobs stored, not yet recorded (see stage_image)."""

    id: str
    config: ImageConfig
    chain: list[str]
    size: int
    manifest: str
    manifest_type: str
    refs: list[str]
    parent: str | None


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class ImageService:
    def __init__(self, root: str, snapshotter: str | None = None) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.content = ContentStore(os.path.join(root, "content"))
        self.meta = Metadata(os.path.join(root, "metadata.db"))
        self.snapshots = snapshot.new(os.path.join(root, "snapshots"), snapshotter)
        self._lock = threading.RLock()
        self._leases: Counter[str] = Counter()
        self._unpack_locks: dict[str, threading.Lock] = {}
        self._configs: dict[str, ImageConfig] = {}
        self.running: Callable[[str], bool] = lambda cid: False  # the daemon sets this: is a container running?
        self.tmp = os.path.join(root, "tmp")
        os.makedirs(self.tmp, exist_ok=True)

    # -- leases: what an operation in flight holds against GC ------------------------------------------
    @contextmanager
    def lease(self, *keys: str) -> Iterator[Callable[[str], None]]:
        held: list[str] = []

        def add(key: str) -> None:
            with self._lock:
                self._leases[key] += 1
            held.append(key)

        for k in keys:
            add(k)
        try:
            yield add
        finally:
            with self._lock:
                for k in held:
                    self._leases[k] -= 1
                    if self._leases[k] <= 0:
                        del self._leases[k]

    # -- look-ups -------------------------------------------------------------------------------------
    def config(self, image_id: str) -> ImageConfig:
        c = self._configs.get(image_id)
        if c is None:
            c = ImageConfig.parse(self.content.read(image_id))
            self._configs[image_id] = c
        return c

    def _record(self, image_id: str) -> ImageRecord:
        row = self.meta.get_image(image_id)
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        refs = [r for r, _, _ in self.meta.refs_of(image_id)]
        return ImageRecord(image_id, self.config(image_id), row, refs)

    def resolve(self, ref_or_id: str) -> ImageRecord:
        """Find an image the way Docker's GetImage does: full id, name[:tag|@digest], then short id."""
        text = ref_or_id.strip()
        not_found = NotFound(f"No such image: {text}")
        if text.startswith(("sha256:", "sha512:")) or (len(text) == 64 and reference.is_full_id(text)):
            image_id = text if ":" in text else "sha256:" + text
            if self.meta.get_image(image_id) is None:
                raise not_found
            return self._record(image_id)
        try:
            ref = reference.parse(text)
        except InvalidArgument:
            ref = None
        if ref is not None:
            ref = ref.with_default_tag()
            not_found = NotFound(f"No such image: {ref.familiar()}")
            target = self.meta.ref_target(str(ref))
            if target is not None:
                return self._record(target)
            if ref.digest is not None:  # name@digest may also name the config digest (an image id)
                if self.meta.get_image(ref.digest) is not None:
                    return self._record(ref.digest)
                raise not_found
        if all(c in "0123456789abcdef" for c in text) and text:
            ids = self.meta.image_ids_with_prefix("sha256:" + text)
            if len(ids) == 1:
                return self._record(ids[0])
        raise not_found

    def exists(self, ref_or_id: str) -> bool:
        try:
            self.resolve(ref_or_id)
            return True
        except NotFound:
            return False

    # -- recording images -----------------------------------------------------------------------------
    def unpack_layer(self, chain_id: str, parent: str | None, diff_id: str, blob: str, media_type: str) -> LayerRow:
        """Apply one layer blob as snapshot `chain_id` (verifying its diff_id), unless already there.
        Concurrent callers for one chain (simultaneous pulls) wait for a single unpacking."""
        with self._lock:
            lock = self._unpack_locks.setdefault(chain_id, threading.Lock())
        with lock:
            return self._unpack_layer(chain_id, parent, diff_id, blob, media_type)

    def _unpack_layer(self, chain_id: str, parent: str | None, diff_id: str, blob: str, media_type: str) -> LayerRow:
        have = self.meta.get_layer(chain_id)
        if have is not None and self.snapshots.exists(chain_id):
            return have
        result: dict[str, int] = {}

        def fn(target: str, mode: str) -> int:
            with self.content.open(blob) as f:
                # compression is detected from the bytes, as docker load does, whatever the media type says
                s = VerifiedStream(f, diff_id=diff_id, name=f"layer {diff_id}")
                try:
                    r = apply_tar(s, target, mode)  # type: ignore[arg-type]
                    s.verify()
                finally:
                    s.close()
                result["tar_size"] = s.size
                return r.size

        info = self.snapshots.apply(chain_id, parent, fn)
        if "tar_size" not in result and have is not None:
            return have  # the snapshot was there already and so is its row
        tar_size = result.get("tar_size", 0)
        row = LayerRow(chain_id, diff_id, parent, info.size, tar_size, blob, media_type)
        self.meta.put_layer(row)
        self.meta.put_dist(blob, diff_id, media_type, self.content.size(blob))
        return row

    def stage_image(self, config_raw: bytes, layers: list[Descriptor], *, manifest: bytes | None = None,
                    manifest_type: str = mt.OCI_MANIFEST, refs: list[str] | None = None,
                    parent: str | None = None) -> PendingImage:
        """First half of adding an image whose blobs are stored: unpack its layers (verifying each
        diff_id) and store its config and manifest. Nothing refers to it until `commit_images`."""
        cfg = ImageConfig.parse(config_raw)
        diff_ids = cfg.diff_ids
        if len(diff_ids) != len(layers):
            raise InvalidArgument(f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, "
                                  f"got {len(layers)}")
        for r in refs or []:
            reference.parse(r)
        config_id = self.content.put(config_raw)
        chains = chain_ids(diff_ids)
        size = 0
        with self.lease(config_id, *chains, *(d.digest for d in layers)):
            parent_chain = None
            for diff_id, chain_id, desc in zip(diff_ids, chains, layers, strict=True):
                row = self.unpack_layer(chain_id, parent_chain, diff_id, desc.digest, desc.media_type)
                size += row.size
                parent_chain = chain_id
        if manifest is None:
            cdesc = Descriptor(mt.OCI_CONFIG, config_id, len(config_raw))
            manifest = manifest_bytes(cdesc, list(layers))
            manifest_type = mt.OCI_MANIFEST
        manifest_digest = self.content.put(manifest)
        return PendingImage(config_id, cfg, chains, size, manifest_digest, manifest_type, list(refs or []), parent)

    def commit_images(self, pending: list[PendingImage]) -> list[str]:
        """Second half: record staged images and their tags in one transaction. Returns messages
        about tags moved away from other images."""
        moved: list[str] = []
        with self._lock, self.meta.tx():
            for p in pending:
                old = self.meta.get_image(p.id)
                parent = p.parent if p.parent and self.meta.get_image(p.parent) else (old.parent if old else None)
                self.meta.put_image(ImageRow(p.id, p.manifest, p.manifest_type, p.config.created, parent, p.size,
                                             p.chain, old.added if old else time.time(),
                                             old.last_tag_time if old else None))
                self._configs[p.id] = p.config
                for r in p.refs:
                    prev = self._set_tag(reference.parse(r).with_default_tag(), p.id)
                    if prev:
                        moved.append(prev)
        return moved

    def add_image(self, config_raw: bytes, layers: list[Descriptor], *, manifest: bytes | None = None,
                  manifest_type: str = mt.OCI_MANIFEST, refs: list[str] | None = None,
                  parent: str | None = None) -> tuple[str, list[str]]:
        """Stage and commit one image; returns (image id, messages about moved tags)."""
        p = self.stage_image(config_raw, layers, manifest=manifest, manifest_type=manifest_type, refs=refs,
                             parent=parent)
        return p.id, self.commit_images([p])

    def discard_new(self, blobs_before: set[str]) -> None:
        """Undo a failed load/import: drop blobs that appeared since `blobs_before` and the snapshots
        and layers nothing refers to."""
        with self._lock:
            keep = self._referenced_chains()
            for layer in self.meta.layers():
                if layer.chain_id not in keep and layer.blob not in blobs_before:
                    self.meta.delete_layer(layer.chain_id)
            for info in sorted(self.snapshots.all(), key=lambda i: -len(self._safe_chain(i.key))):
                if info.kind == "committed" and info.key not in keep and self.meta.get_layer(info.key) is None:
                    try:
                        self.snapshots.remove(info.key)
                    except Conflict:
                        pass
            referenced = {layer.blob for layer in self.meta.layers()} | set(self._leases)
            for row in self.meta.images():
                referenced.update(x for x in (row.id, row.manifest) if x)
            for digest, _ in list(self.content.walk()):
                if digest not in blobs_before and digest not in referenced:
                    self.content.delete(digest)
                    self.meta.delete_dist(digest)

    def _set_tag(self, ref: Reference, image_id: str) -> str | None:
        kind = "digest" if ref.digest else "tag"
        prev = self.meta.set_ref(str(ref), ref.name, image_id, kind)
        if prev and prev != image_id:
            return f"The image {ref.familiar()} already exists, renaming the old one with ID {prev} to empty string"
        return None

    def add_repo_digest(self, name: str, manifest_digest: str, image_id: str) -> None:
        """Record `name@digest` for an image (what a pull or push does)."""
        ref = reference.parse(name).repo().with_digest(manifest_digest)
        self.meta.set_ref(str(ref), ref.name, image_id, "digest")

    # -- registry-facing helpers ----------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return self.content.has(digest)

    def store_manifest(self, data: bytes, media_type: str = "", expected: str | None = None) -> str:
        """Store a manifest or index by its received bytes; returns its digest."""
        return self.content.put(data, expected)

    def image_from_manifest(self, manifest_digest: str, refs: list[str] | None = None) -> str:
        """Record an image from a stored manifest whose config and layers are stored (after a pull)."""
        data = self.content.read(manifest_digest)
        m = parse_manifest(data)
        image_id, _ = self.add_image(self.content.read(m.config.digest), list(m.layers), manifest=data,
                                     manifest_type=m.media_type, refs=refs)
        return image_id

    def unpack(self, image_id: str) -> None:
        """Make sure every layer snapshot of an image exists (re-applying from blobs when missing)."""
        rec = self._record(image_id)
        parent = None
        with self.lease(*rec.chain):
            for diff_id, chain_id in zip(rec.config.diff_ids, rec.chain, strict=True):
                row = self.meta.get_layer(chain_id)
                if row is None:
                    raise NotFound(f"layer {chain_id} of image {image_id} is unknown")
                self.unpack_layer(chain_id, parent, diff_id, row.blob, row.media_type)
                parent = chain_id

    def layer_for_push(self, diff_id: str, compression: str = "gzip") -> Descriptor:
        """A compressed blob for layer `diff_id` (made once and remembered), as pushes need."""
        want = mt.layer_type(compression, docker=False)
        for blob, media_type, size in self.meta.dist_for_diff(diff_id):
            if mt.LAYER_COMPRESSION.get(media_type) == compression and self.content.has(blob):
                return Descriptor(media_type, blob, size)
        src = next((b for b, _, _ in self.meta.dist_for_diff(diff_id) if self.content.has(b)), None)
        if src is None:
            raise NotFound(f"no blob for layer {diff_id}")
        from berth.oci.compression import Compressor

        comp = Compressor(compression)
        with self.content.open(src) as f:
            s = VerifiedStream(f, diff_id=diff_id, threaded=False)
            with self.content.writer() as w:
                while chunk := s.read(1 << 20):
                    w.write(comp.feed(chunk))
                w.write(comp.flush())
                s.verify()
                digest = w.commit()
        size = self.content.size(digest)
        self.meta.put_dist(digest, diff_id, want, size)
        return Descriptor(want, digest, size)

    # -- references -----------------------------------------------------------------------------------
    def tag(self, source: str, target: str) -> None:
        rec = self.resolve(source)
        ref = reference.parse(target)
        if ref.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self._lock:
            self._set_tag(ref.with_default_tag(), rec.id)

    # -- containers -----------------------------------------------------------------------------------
    def set_in_use(self, container_id: str, image_id: str) -> None:
        rec = self.resolve(image_id)
        existing = self.meta.get_container(container_id)
        self.meta.set_container(container_id, rec.id, existing[1] if existing else None)

    def release(self, container_id: str) -> None:
        self.meta.delete_container(container_id)

    def prepare_rootfs(self, container_id: str, image_id: str) -> list[Mount]:
        """A writable snapshot for a container on top of the image's layers; returns its mounts."""
        rec = self.resolve(image_id)
        self.unpack(rec.id)
        top = rec.chain[-1] if rec.chain else None
        with self.lease(container_id):
            mounts = self.snapshots.prepare(container_id, top)
            self.meta.set_container(container_id, rec.id, container_id)
        return mounts

    def rootfs_mounts(self, container_id: str) -> list[Mount]:
        return self.snapshots.mounts(container_id)

    def remove_rootfs(self, container_id: str) -> None:
        """Drop a container's writable layer and its in-use mark."""
        with self._lock:
            if self.snapshots.exists(container_id):
                self.snapshots.remove(container_id)
            self.meta.delete_container(container_id)

    # -- shapes for the API ---------------------------------------------------------------------------
    def list_images(self, all_images: bool = True, dangling: bool | None = None) -> list[dict[str, Any]]:
        """GET /images/json (newest first)."""
        rows = self.meta.images()
        children = {r.parent for r in rows if r.parent}
        out = []
        for row in rows:
            if dangling is True and row.refs:
                continue
            if dangling is False and not row.refs:
                continue
            if not all_images and not row.refs and row.id in children:
                continue  # intermediate images are hidden unless all=1
            rec = ImageRecord(row.id, self.config(row.id), row, row.refs)
            out.append(shapes.summary(rec, len(self.meta.containers_of(row.id))))
        out.sort(key=lambda d: (d["Created"], d["Id"]), reverse=True)
        return out

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        rec = self.resolve(ref_or_id)
        return shapes.inspect(rec, self._graph_driver(rec))

    def _graph_driver(self, rec: ImageRecord) -> dict[str, Any]:
        data: dict[str, str] = {}
        if rec.chain and self.snapshots.exists(rec.chain[-1]):
            dirs = [self.snapshots.stat(k).path for k in reversed(self.snapshots.chain(rec.chain[-1]))]
            data = {"MergedDir": "", "UpperDir": dirs[-1], "WorkDir": ""}
            if len(dirs) > 1:
                data["LowerDir"] = ":".join(reversed(dirs[:-1]))
        return {"Data": data or None, "Name": "overlay2" if self.snapshots.name == "overlayfs" else "vfs"}

    def history(self, ref_or_id: str) -> list[dict[str, Any]]:
        rec = self.resolve(ref_or_id)
        sizes = [self.meta.get_layer(c) for c in rec.chain]
        out = shapes.history(rec, [s.size if s else 0 for s in sizes])
        parent = rec.row.parent
        while parent:  # entries that belong to local ancestors show their ids and tags, as Docker does
            anc = self.meta.get_image(parent)
            if anc is None:
                break
            n = len(self.config(parent).history)
            if 0 < n <= len(out):
                entry = out[len(out) - n]
                entry["Id"] = parent
                entry["Tags"] = [reference.parse(r).familiar() for r, _, k in self.meta.refs_of(parent)
                                 if k == "tag"] or None
            parent = anc.parent
        return out

    # -- delete, prune, gc ----------------------------------------------------------------------------
    def _users(self, image_id: str) -> tuple[list[str], list[str]]:
        """(running, stopped) containers using an image."""
        cids = self.meta.containers_of(image_id)
        running = [c for c in cids if self.running(c)]
        return running, [c for c in cids if c not in running]

    def _conflict(self, image_id: str, hard_only: bool, check_refs: bool = False) -> str | None:
        """Docker's checkImageDeleteConflict: child images and running containers are hard conflicts;
        references and stopped containers soft ones (ignored with force)."""
        msg = "conflict: unable to delete {} ({}) - {}"
        if self.meta.children(image_id):
            return msg.format(short(image_id), "cannot be forced", "image has dependent child images")
        running, stopped = self._users(image_id)
        if running:
            return msg.format(short(image_id), "cannot be forced",
                              f"image is being used by running container {running[0][:12]}")
        if hard_only:
            return None
        if check_refs and self.meta.refs_of(image_id):
            return msg.format(short(image_id), "must be forced", "image is referenced in multiple repositories")
        if stopped:
            return msg.format(short(image_id), "must be forced",
                              f"image is being used by stopped container {stopped[0][:12]}")
        return None

    @staticmethod
    def _single_reference(refs: list[tuple[str, str, str]]) -> bool:
        """All references in one repository and at most one tag (Docker's isSingleReference)."""
        repos = {repo for _, repo, _ in refs}
        tags = [r for r, _, kind in refs if kind == "tag"]
        return len(repos) <= 1 and len(tags) <= 1

    def delete(self, ref_or_id: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """DELETE /images/{name}: Docker's list of {"Untagged": …} / {"Deleted": …}."""
        with self._lock:
            rec = self.resolve(ref_or_id)
            records: list[dict[str, str]] = []
            refs = self.meta.refs_of(rec.id)
            text = ref_or_id.strip()
            by_id = rec.id.startswith(text) or rec.id.removeprefix("sha256:").startswith(text)  # isImageIDPrefix
            removed_repo_ref = False
            if not by_id:
                ref = reference.parse(text).with_default_tag()
                if not force and self._single_reference(refs):
                    users = self.meta.containers_of(rec.id)
                    if users:
                        raise Conflict(f"conflict: unable to remove repository reference \"{text}\" (must force) - "
                                       f"container {users[0][:12]} is using its referenced image {short(rec.id)}")
                key = str(ref) if self.meta.ref_target(str(ref)) == rec.id else None
                if key is None:
                    raise NotFound(f"No such image: {ref.familiar()}")
                self.meta.delete_ref(key)
                records.append({"Untagged": ref.familiar()})
                refs = self.meta.refs_of(rec.id)
                if ref.digest is None and not any(kind == "tag" and repo == ref.name for _, repo, kind in refs):
                    for r, repo, kind in list(refs):
                        if kind == "digest" and repo == ref.name:
                            self.meta.delete_ref(r)
                            records.append({"Untagged": reference.parse(r).familiar()})
                    refs = self.meta.refs_of(rec.id)
                if refs:
                    return records
                removed_repo_ref = True
            elif self._single_reference(refs):
                c = self._conflict(rec.id, hard_only=force)
                if c:
                    raise Conflict(c)
                for r, _, _ in refs:
                    self.meta.delete_ref(r)
                    records.append({"Untagged": reference.parse(r).familiar()})
            self._delete_helper(rec.id, records, force, prune, quiet=removed_repo_ref)
            self.gc()
            return records

    def _delete_helper(self, image_id: str, records: list[dict[str, str]], force: bool, prune: bool,
                       quiet: bool) -> None:
        conflict = self._conflict(image_id, hard_only=force, check_refs=True)
        if conflict:
            dangling = not self.meta.refs_of(image_id)
            used = bool(self.meta.containers_of(image_id))
            if quiet and (not dangling or used):
                return
            raise Conflict(conflict)
        row = self.meta.get_image(image_id)
        if row is None:
            return
        for r, _, _ in self.meta.refs_of(image_id):
            self.meta.delete_ref(r)
            records.append({"Untagged": reference.parse(r).familiar()})
        self.meta.delete_image(image_id)
        self._configs.pop(image_id, None)
        records.append({"Deleted": image_id})
        for chain_id in self._unreferenced_layers(row.chain):
            records.append({"Deleted": chain_id})
        if prune and row.parent and self.meta.get_image(row.parent):
            self._delete_helper(row.parent, records, False, True, True)

    def _referenced_chains(self) -> set[str]:
        keep: set[str] = set()
        for row in self.meta.images():
            keep.update(row.chain)
        for _, _, snap in self.meta.all_containers():
            if snap and self.snapshots.exists(snap):
                keep.update(self.snapshots.chain(snap))
        keep.update(k for k in self._leases)
        return keep

    def _unreferenced_layers(self, chain: list[str]) -> list[str]:
        """Remove the layers of `chain` no other image or container uses; returns them, top first."""
        keep = self._referenced_chains()
        removed = []
        for chain_id in reversed(chain):
            if chain_id in keep:
                break
            if self.snapshots.exists(chain_id):
                self.snapshots.remove(chain_id)
            self.meta.delete_layer(chain_id)
            removed.append(chain_id)
        return removed

    def gc(self) -> dict[str, int]:
        """Remove blobs, layers and snapshots nothing refers to. Returns counts and bytes reclaimed."""
        with self._lock:
            keep_chains = self._referenced_chains()
            keep_blobs: set[str] = set(self._leases)
            for row in self.meta.images():
                keep_blobs.add(row.id)
                if row.manifest:
                    keep_blobs.add(row.manifest)
                    try:
                        m = parse_manifest(self.content.read(row.manifest))
                        keep_blobs.update(d.digest for d in m.layers)
                    except (NotFound, InvalidArgument):
                        pass
            for layer in self.meta.layers():
                if layer.chain_id in keep_chains:
                    keep_blobs.add(layer.blob)
                else:
                    self.meta.delete_layer(layer.chain_id)
            removed_snaps = 0
            infos = sorted(self.snapshots.all(), key=lambda i: -len(self._safe_chain(i.key)))
            for info in infos:
                if info.kind == "committed" and info.key not in keep_chains:
                    try:
                        self.snapshots.remove(info.key)
                        removed_snaps += 1
                    except Conflict:
                        pass
            reclaimed = blobs = 0
            for digest, size in list(self.content.walk()):
                if digest not in keep_blobs:
                    diff = self.meta.diff_for_blob(digest)
                    if diff is not None and any(diff == layer.diff_id for layer in self.meta.layers()):
                        continue  # another form of a kept layer (e.g. its gzip for push): keep
                    if self.content.delete(digest):
                        self.meta.delete_dist(digest)
                        reclaimed += size
                        blobs += 1
            return {"blobs": blobs, "snapshots": removed_snaps, "reclaimed": reclaimed}

    def _safe_chain(self, key: str) -> list[str]:
        try:
            return self.snapshots.chain(key)
        except NotFound:
            return []

    def prune(self, all_unused: bool = False) -> dict[str, Any]:
        """POST /images/prune: dangling images (or every image no container uses, with all_unused)."""
        deleted: list[dict[str, str]] = []
        before = sum(s for _, s in self.content.walk())
        with self._lock:
            for row in self.meta.images():
                if self.meta.get_image(row.id) is None or self.meta.containers_of(row.id):
                    continue
                refs = self.meta.refs_of(row.id)
                if refs and not all_unused:
                    continue
                if self.meta.children(row.id):
                    continue
                try:
                    if refs:
                        for r, _, _ in refs:
                            self.meta.delete_ref(r)
                            deleted.append({"Untagged": reference.parse(r).familiar()})
                    self._delete_helper(row.id, deleted, False, True, False)
                except Conflict:
                    continue
            self.gc()
        after = sum(s for _, s in self.content.walk())
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": max(0, before - after)}

    def disk_usage(self) -> dict[str, Any]:
        """Numbers for GET /system/df: LayersSize and each image's summary with Containers counts."""
        images = self.list_images()
        layers_size = sum(layer.size for layer in self.meta.layers())
        blobs_size = sum(s for _, s in self.content.walk())
        return {"LayersSize": layers_size, "Images": images, "BlobsSize": blobs_size}

    # -- operations (see ops.py and archive.py) -------------------------------------------------------
    def load(self, fileobj: BinaryIO) -> LoadResult:
        """`docker load` of a tarball stream (Docker 25+ or legacy `docker save`, or an OCI layout tar)."""
        return archive.load(self, fileobj)

    def load_dir(self, path: str) -> LoadResult:
        """Load an OCI image layout directory."""
        return archive.load(self, path=path)

    def save(self, names: list[str], out: BinaryIO) -> None:
        archive.save(self, names, out)

    def iter_save(self, names: list[str]) -> Iterator[bytes]:
        return archive.iter_save(self, names)

    def import_image(self, src: BinaryIO | str, changes: list[str] | None = None, ref: str | None = None,
                     message: str = "", platform: str | None = None) -> str:
        return ops.import_image(self, src, changes, ref, message, platform)

    def export_image(self, ref: str, out: BinaryIO) -> None:
        ops.export_image(self, ref, out)

    def export_container(self, container_id: str, out: BinaryIO) -> None:
        ops.export_container(self, container_id, out)

    def changes(self, container_id: str) -> list[dict[str, object]]:
        return ops.changes(self, container_id)

    def diff_tar(self, container_id: str, out: BinaryIO) -> None:
        ops.diff_tar(self, container_id, out)

    def rw_size(self, container_id: str) -> int:
        return ops.rw_size(self, container_id)

    def commit(self, container_id: str, *, changes: list[str] | None = None, ref: str | None = None,
               message: str = "", author: str = "", config: dict[str, Any] | None = None,
               created_by: str = "") -> str:
        return ops.commit(self, container_id, changes_=changes, ref=ref, message=message, author=author,
                          config=config, created_by=created_by)
