"""Image operations built from the store's parts: import, export, commit, and a container's
changes, diff and writable size. `ImageService` exposes each as a method."""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from berth.errors import InvalidArgument, NotFound
from berth.image import changes as change_cmds
from berth.image import diff
from berth.image.archive import host_platform
from berth.image.stream import VerifiedStream
from berth.image.timeutil import now_rfc3339
from berth.oci import mediatypes as mt
from berth.oci.compression import detect
from berth.oci.manifest import Descriptor, dumps, parse_manifest
from berth.store.mount import mount, unmount

if TYPE_CHECKING:
    from berth.image.service import ImageService

IMPORT_COMMENT = "Imported from -"


def _layer_blob_from_tar(svc: ImageService, write: Any) -> tuple[str, int]:
    """Run `write(fileobj)` into a new uncompressed blob; returns (digest = diff_id, size)."""
    with svc.content.writer() as w:
        class _Out:
            def write(self, b: bytes) -> int:
                w.write(b)
                return len(b)

            def flush(self) -> None:
                pass

        write(_Out())
        digest = w.commit()
    return digest, svc.content.size(digest)


def import_image(svc: ImageService, src: BinaryIO | str, changes: list[str] | None = None, ref: str | None = None,
                 message: str = "", platform: str | None = None) -> str:
    """`docker import`: a rootfs tar (any compression) or a folder → a one-layer image."""
    before = {d for d, _ in svc.content.walk()}
    try:
        if isinstance(src, str):
            if not os.path.isdir(src):
                raise InvalidArgument(f"{src} is not a directory")
            blob, size = _layer_blob_from_tar(svc, lambda out: diff.write_tree(src, out))
        else:
            blob = svc.content.ingest(src)
            size = svc.content.size(blob)
        with svc.lease(blob):
            with svc.content.open(blob) as f:
                kind = detect(f.read(8))
                f.seek(0)
                s = VerifiedStream(f, threaded=False)
                s.verify()
                diff_id = s.diff_id
            if kind not in ("", "gzip", "zstd"):  # no layer media type for these: store the plain tar
                with svc.content.open(blob) as f:
                    s = VerifiedStream(f, threaded=False)
                    with svc.content.writer(diff_id) as w:
                        while chunk := s.read():
                            w.write(chunk)
                        blob = w.commit()
                kind = ""
                size = svc.content.size(blob)
            os_, arch = host_platform()
            if platform:
                os_, _, arch = platform.partition("/")
                arch = arch.split("/")[0] or host_platform()[1]
            created = now_rfc3339()
            comment = message or IMPORT_COMMENT
            config = change_cmds.apply({}, changes or [])
            doc: dict[str, Any] = {"architecture": arch, "comment": comment, "config": config, "created": created,
                                   "history": [{"created": created, "comment": comment}], "os": os_,
                                   "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
            image_id, _ = svc.add_image(dumps(doc), [Descriptor(mt.layer_type(kind), blob, size)],
                                        refs=[ref] if ref else [])
            return image_id
    except BaseException:
        svc.discard_new(before)
        raise


@contextmanager
def mounted(svc: ImageService, mounts: list[Any]) -> Iterator[str]:
    """Mount `mounts` on a scratch dir for the duration (read-only tree access for export)."""
    target = tempfile.mkdtemp(prefix="mnt-", dir=svc.tmp)
    try:
        mount(mounts, target)
        try:
            yield target
        finally:
            unmount(target)
    finally:
        os.rmdir(target)


def _container_view(svc: ImageService, container_id: str) -> list[Any]:
    """Read-only mounts of a container's merged rootfs that don't disturb its own (running) mount."""
    from berth.store.mount import Mount

    info = svc.snapshots.stat(container_id)
    if svc.snapshots.name != "overlayfs":
        return [Mount("bind", info.path, ["rbind", "ro"])]
    lowers = [info.path, *svc.snapshots.lower_dirs(container_id)]
    if len(lowers) == 1:
        return [Mount("bind", info.path, ["rbind", "ro"])]
    return [Mount("overlay", "overlay", ["ro", "index=off", "lowerdir=" + ":".join(lowers)])]


def export_container(svc: ImageService, container_id: str, out: BinaryIO) -> None:
    """`docker export`: the container's merged rootfs as a flat tar."""
    if not svc.snapshots.exists(container_id):
        raise NotFound(f"No such container: {container_id}")
    with mounted(svc, _container_view(svc, container_id)) as root:
        diff.write_tree(root, out)


def export_image(svc: ImageService, ref: str, out: BinaryIO) -> None:
    """A flat tar of an image's filesystem (what `crane export` does)."""
    rec = svc.resolve(ref)
    svc.unpack(rec.id)
    if not rec.chain:
        diff.write_tree(tempfile.mkdtemp(dir=svc.tmp), out)
        return
    with mounted(svc, svc.snapshots.view(rec.chain[-1])) as root:
        diff.write_tree(root, out)


def changes(svc: ImageService, container_id: str) -> list[dict[str, object]]:
    """`docker diff`: [{"Path", "Kind"}] with 0 modified, 1 added, 2 deleted."""
    if not svc.snapshots.exists(container_id):
        raise NotFound(f"No such container: {container_id}")
    upper = svc.snapshots.upper(container_id)
    lowers = svc.snapshots.lower_dirs(container_id)
    if svc.snapshots.name == "overlayfs":
        return diff.overlay_changes(upper, lowers)
    return [{"Path": "/" + p, "Kind": k} for p, k in diff.tree_changes(upper, lowers[0] if lowers else None)]


def diff_tar(svc: ImageService, container_id: str, out: BinaryIO) -> None:
    """The container's writable layer as a layer tar (with whiteouts)."""
    if not svc.snapshots.exists(container_id):
        raise NotFound(f"No such container: {container_id}")
    upper = svc.snapshots.upper(container_id)
    if svc.snapshots.name == "overlayfs":
        diff.overlay_diff(upper, out)
    else:
        lowers = svc.snapshots.lower_dirs(container_id)
        diff.copy_diff(upper, lowers[0] if lowers else None, out)


def rw_size(svc: ImageService, container_id: str) -> int:
    """Bytes in the container's writable layer (SizeRw)."""
    if svc.snapshots.name == "overlayfs":
        return svc.snapshots.usage(container_id)
    total = 0
    upper = svc.snapshots.upper(container_id)
    for c in changes(svc, container_id):
        p = os.path.join(upper, str(c["Path"]).lstrip("/"))
        if c["Kind"] != diff.KIND_DELETED and os.path.isfile(p) and not os.path.islink(p):
            total += os.lstat(p).st_size
    return total


def commit(svc: ImageService, container_id: str, *, changes_: list[str] | None = None, ref: str | None = None,
           message: str = "", author: str = "", config: dict[str, Any] | None = None,
           created_by: str = "") -> str:
    """`docker commit`: the container's writable layer as a new layer on its image."""
    row = svc.meta.get_container(container_id)
    if row is None or not svc.snapshots.exists(container_id):
        raise NotFound(f"No such container: {container_id}")
    base = svc._record(row[0])
    before = {d for d, _ in svc.content.walk()}
    try:
        blob, size = _layer_blob_from_tar(svc, lambda out: diff_tar(svc, container_id, out))
        with svc.lease(blob):
            doc = copy.deepcopy(base.config.doc)
            cfg = copy.deepcopy(config) if config is not None else copy.deepcopy(base.config.config)
            doc["config"] = change_cmds.apply(cfg, changes_ or [])
            created = now_rfc3339()
            doc["created"] = created
            doc["container"] = container_id
            doc["parent"] = base.id
            if author:
                doc["author"] = author
            else:
                doc.pop("author", None)
            if message:
                doc["comment"] = message
            else:
                doc.pop("comment", None)
            doc["rootfs"] = {"type": "layers", "diff_ids": [*base.config.diff_ids, blob]}
            entry: dict[str, Any] = {"created": created, "created_by": created_by}
            if author:
                entry["author"] = author
            if message:
                entry["comment"] = message
            doc["history"] = [*base.config.history, entry]
            layers = _layer_descriptors(svc, base.id)
            layers.append(Descriptor(mt.OCI_LAYER, blob, size))
            image_id, _ = svc.add_image(json.dumps(doc, separators=(",", ":")).encode(), layers,
                                        refs=[ref] if ref else [], parent=base.id)
            return image_id
    except BaseException:
        svc.discard_new(before)
        raise


def _layer_descriptors(svc: ImageService, image_id: str) -> list[Descriptor]:
    row = svc.meta.get_image(image_id)
    if row is None:
        raise NotFound(f"No such image: {image_id}")
    if row.manifest and svc.content.has(row.manifest):
        m = parse_manifest(svc.content.read(row.manifest))
        return [d for d in m.layers if mt.is_layer(d.media_type)]
    out = []
    for chain_id in row.chain:
        layer = svc.meta.get_layer(chain_id)
        if layer is None:
            raise NotFound(f"layer {chain_id} is missing")
        out.append(Descriptor(layer.media_type, layer.blob, svc.content.size(layer.blob)))
    return out


def scratch_dir(svc: ImageService) -> str:
    d = os.path.join(svc.tmp, "scratch-" + secrets.token_hex(6))
    os.makedirs(d)
    return d


def remove_scratch(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
