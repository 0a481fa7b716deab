"""`docker load` and `docker save`: image archives in and out of the store.

Load reads the archive once, as a stream: every regular file goes straight into the content store
(hashed as it is written), symlinks and hard links are remembered as names, and nothing is extracted
to disk. Then `manifest.json` (Docker's format, every version since 1.10, Docker 25+ included) or
else `index.json` (an OCI layout, e.g. `podman save --format oci-archive` or the official busybox
layouts) says which blobs make which images. Layers are applied with their diff_ids verified, all
images are staged first and recorded in one transaction, so a broken archive changes nothing: what
it added is removed again. Pre-1.10 archives (`repositories` only) are refused as Docker now does.

Save writes what Docker 25+ writes: an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…` with
config, OCI manifest and *uncompressed* layers) plus the legacy `manifest.json` and `repositories`,
so that both old (20.10) and new Dockers, podman and skopeo read it.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from berth.errors import InvalidArgument, NotFound
from berth.image.apply import ApplyError, clean_name
from berth.image.stream import VerifiedStream
from berth.image.tar import DIRTYPE, LNKTYPE, SYMTYPE, TarReader
from berth.oci import mediatypes as mt
from berth.oci import reference
from berth.oci.compression import detect, open_reader
from berth.oci.digest import Digest
from berth.oci.manifest import Descriptor, digest_of, dumps, parse_index, parse_manifest, sniff

if TYPE_CHECKING:
    from berth.image.service import ImageService, PendingImage

_MAX_JSON = 32 << 20


class ArchiveError(InvalidArgument):
    pass


@dataclass
class Archive:
    """An archive's names: regular files as blob digests, links as names."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256 digest, size)
    links: dict[str, str] = field(default_factory=dict)  # name -> target name (already resolved lexically)

    def lookup(self, name: str) -> tuple[str, int]:
        try:
            key = clean_name(name)
        except ApplyError as e:
            raise ArchiveError(f"invalid archive: {e}") from None
        for _ in range(40):
            if key in self.files:
                return self.files[key]
            if key not in self.links:
                break
            key = self.links[key]
        raise ArchiveError(f"invalid archive: {name} not found in the archive")

    def has(self, name: str) -> bool:
        try:
            self.lookup(name)
            return True
        except ArchiveError:
            return False


@dataclass
class LoadResult:
    images: list[str]
    messages: list[str]


def _link_target(name: str, target: str, hard: bool) -> str:
    base = "" if hard or target.startswith("/") else posixpath.dirname(name)
    joined = posixpath.normpath(posixpath.join("/", base, target))
    return joined.lstrip("/")


def read_archive(svc: ImageService, fileobj: BinaryIO, new_blobs: set[str]) -> Archive:
    """Stream a (possibly compressed) tar into the content store; returns its names."""
    _, plain = open_reader(fileobj)
    reader = TarReader(plain.read)
    arc = Archive()
    for e in reader:
        try:
            name = clean_name(e.name)
        except ApplyError as err:
            raise ArchiveError(f"invalid archive: {err}") from None
        if e.type == DIRTYPE or not name:
            continue
        if e.type in (SYMTYPE, LNKTYPE):
            arc.links[name] = _link_target(name, e.linkname, e.type == LNKTYPE)
            continue
        if not e.is_file():
            continue
        with svc.content.writer() as w:
            for chunk in reader.iter_data():
                w.write(chunk)
            digest = w.commit()
        new_blobs.add(digest)
        arc.files[name] = (digest, e.size)
    return arc


def read_dir(svc: ImageService, path: str, new_blobs: set[str]) -> Archive:
    """The same as read_archive for a directory (an OCI layout on disk; symlinks stay inside it)."""
    arc = Archive()
    root = os.path.realpath(path)
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top
        for n in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            p = os.path.join(top, n)
            name = f"{rel_top}/{n}" if rel_top else n
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                arc.links[name] = _link_target(name, os.readlink(p), False)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = svc.content.ingest(f)
                new_blobs.add(digest)
                arc.files[name] = (digest, st.st_size)
    return arc


class _Loader:
    def __init__(self, svc: ImageService, arc: Archive) -> None:
        self.svc = svc
        self.arc = arc

    def json(self, name: str) -> Any:
        digest, size = self.arc.lookup(name)
        if size > _MAX_JSON:
            raise ArchiveError(f"invalid archive: {name} is too large")
        try:
            return json.loads(self.svc.content.read(digest))
        except ValueError as e:
            raise ArchiveError(f"invalid archive: {name}: {e}") from None

    def blob(self, desc_digest: str) -> str:
        """Make sure the content store has `desc_digest` from the layout's blobs/ (verifying it)."""
        d = Digest.parse(desc_digest)
        name = f"blobs/{d.algorithm}/{d.hex}"
        digest, _ = self.arc.lookup(name)
        if d.algorithm == "sha256":
            if digest != desc_digest:
                raise ArchiveError(f"invalid archive: {name}: digest mismatch (content is {digest})")
            return digest
        if not self.svc.content.has(desc_digest):
            with self.svc.content.open(digest) as f:
                self.svc.content.ingest(f, expected=desc_digest)
        return desc_digest

    def layer_desc(self, digest: str, size: int, declared: str = "") -> Descriptor:
        with self.svc.content.open(digest) as f:
            kind = detect(f.read(8))
        if kind not in ("", "gzip", "zstd"):
            if kind in ("bzip2", "xz"):
                return Descriptor(declared or mt.OCI_LAYER, digest, size)  # applied by magic all the same
            raise ArchiveError(f"invalid archive: unsupported layer compression {kind}")
        media_type = declared if declared and mt.LAYER_COMPRESSION.get(declared) == kind else mt.layer_type(kind)
        return Descriptor(media_type, digest, size)

    def from_manifest_json(self) -> list[PendingImage]:
        doc = self.json("manifest.json")
        if not isinstance(doc, list) or not doc:
            raise ArchiveError("invalid archive: manifest.json holds no images")
        items = []
        for i, m in enumerate(doc):
            if not isinstance(m, dict) or not isinstance(m.get("Config"), str):
                raise ArchiveError(f"invalid archive: manifest.json entry {i} has no Config")
            layers = m.get("Layers") or []
            tags = m.get("RepoTags") or []
            if not isinstance(layers, list) or not isinstance(tags, list):
                raise ArchiveError(f"invalid archive: manifest.json entry {i} is malformed")
            cdigest, _ = self.arc.lookup(m["Config"])
            descs = [self.layer_desc(*self.arc.lookup(str(p))) for p in layers]
            for t in tags:
                reference.parse(str(t))
            parent = m.get("Parent") if isinstance(m.get("Parent"), str) else None
            items.append((self.svc.content.read(cdigest), descs, [str(t) for t in tags], parent))
        return [self.svc.stage_image(raw, descs, refs=tags, parent=parent) for raw, descs, tags, parent in items]

    def from_index(self) -> list[PendingImage]:
        layout = self.json("oci-layout")
        if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
            raise ArchiveError("invalid archive: oci-layout is malformed")
        digest, _ = self.arc.lookup("index.json")
        found: list[tuple[Descriptor, list[str]]] = []
        self._walk_index(self.svc.content.read(digest), [], found, depth=0)
        if not found:
            raise ArchiveError("invalid archive: index.json names no image for this platform")
        staged = []
        for desc, refs in found:
            data = self.svc.content.read(self.blob(desc.digest))
            m = parse_manifest(data, desc.media_type)
            config_raw = self.svc.content.read(self.blob(m.config.digest))
            layers = [Descriptor(d.media_type, self.blob(d.digest), d.size) for d in m.layers
                      if mt.is_layer(d.media_type)]
            staged.append(self.svc.stage_image(config_raw, layers, manifest=data, manifest_type=m.media_type,
                                               refs=refs))
        return staged

    def _walk_index(self, data: bytes, inherited: list[str], found: list[tuple[Descriptor, list[str]]],
                    depth: int) -> None:
        if depth > 8:
            raise ArchiveError("invalid archive: indexes nested too deep")
        idx = parse_index(data, mt.OCI_INDEX if depth == 0 else "")
        multi = len(idx.manifests) > 1
        for d in idx.manifests:
            refs = _refs_from_annotations(d.annotations) or inherited
            if d.media_type in mt.INDEXES:
                self._walk_index(self.svc.content.read(self.blob(d.digest)), refs, found, depth + 1)
            elif d.media_type in mt.MANIFESTS or not d.media_type:
                if multi and d.platform is not None and (d.platform.os, d.platform.architecture) != host_platform():
                    continue
                if not d.media_type:
                    d = Descriptor(sniff(self.svc.content.read(self.blob(d.digest))), d.digest, d.size,
                                   d.annotations, d.platform)
                    if d.media_type not in mt.MANIFESTS:
                        continue
                found.append((d, refs))


def host_platform() -> tuple[str, str]:
    machine = os.uname().machine
    return "linux", {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _refs_from_annotations(ann: dict[str, str]) -> list[str]:
    """containerd's full name, else ref.name when it is a full reference (busybox writes "busybox:1.38")."""
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        v = ann.get(key, "")
        if v and (":" in v or "/" in v or "@" in v):
            try:
                reference.parse(v)
                return [v]
            except InvalidArgument:
                continue
    return []


def load(svc: ImageService, fileobj: BinaryIO | None = None, *, path: str | None = None) -> LoadResult:
    """Load a `docker save` tarball (or an OCI layout tar, or with `path` a layout directory)."""
    before = {d for d, _ in svc.content.walk()}
    new_blobs: set[str] = set()
    try:
        with svc.lease() as hold:
            arc = read_dir(svc, path, new_blobs) if path is not None else read_archive(svc, fileobj, new_blobs)  # type: ignore[arg-type]
            for d, _ in arc.files.values():
                hold(d)
            loader = _Loader(svc, arc)
            if arc.has("manifest.json"):
                staged = loader.from_manifest_json()
            elif arc.has("index.json"):
                staged = loader.from_index()
            else:
                raise ArchiveError("invalid archive: does not contain a manifest.json")
            moved = svc.commit_images(staged)
    except BaseException:
        svc.discard_new(before)
        raise
    messages = list(moved)
    for p in staged:
        if p.refs:
            messages += [f"Loaded image: {reference.parse(r).with_default_tag().familiar()}" for r in p.refs]
        else:
            messages.append(f"Loaded image ID: {p.id}")
    return LoadResult([p.id for p in staged], messages)


# -- save -----------------------------------------------------------------------------------------------
class _PlainLayer(io.RawIOBase):
    """A layer blob read as its uncompressed tar (verified against its diff_id at the end)."""

    def __init__(self, f: BinaryIO, diff_id: str) -> None:
        self._f = f
        self._s = VerifiedStream(f, diff_id=diff_id, name=f"layer {diff_id}")
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            self._buf = self._s.read()
            if not self._buf:
                self._s.verify()
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._s.close()
        self._f.close()
        super().close()


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    tf.addfile(ti)


def save(svc: ImageService, names: list[str], out: BinaryIO) -> None:
    """Write `names` (refs or ids) to `out` in the `docker save` format of Docker 25+."""
    images: dict[str, list[reference.Reference]] = {}
    order: list[str] = []
    for n in names:
        rec = svc.resolve(n)
        if rec.id not in images:
            images[rec.id] = []
            order.append(rec.id)
        try:
            ref = reference.parse(n).with_default_tag()
        except InvalidArgument:
            continue
        if str(ref) in rec.refs and ref not in images[rec.id]:
            images[rec.id].append(ref)
    written: set[str] = set()
    index: list[dict[str, Any]] = []
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    with svc.lease(*order) as hold, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_dir(tf, "blobs")
        _add_dir(tf, "blobs/sha256")
        for image_id in order:
            rec = svc._record(image_id)
            cfg_raw = svc.content.read(image_id)
            layers: list[Descriptor] = []
            for diff_id, chain_id in zip(rec.config.diff_ids, rec.chain, strict=True):
                hold(chain_id)
                row = svc.meta.get_layer(chain_id)
                if row is None:
                    raise NotFound(f"layer {chain_id} of image {image_id} is missing")
                layers.append(Descriptor(mt.OCI_LAYER, diff_id, row.tar_size))
                if diff_id in written:
                    continue
                written.add(diff_id)
                ti = tarfile.TarInfo("blobs/sha256/" + Digest.parse(diff_id).hex)
                ti.size = row.tar_size
                ti.mode = 0o644
                if row.blob == diff_id:
                    with svc.content.open(row.blob) as f:
                        tf.addfile(ti, f)
                else:
                    with _PlainLayer(svc.content.open(row.blob), diff_id) as pf:
                        tf.addfile(ti, io.BufferedReader(pf, 1 << 20))
            if image_id not in written:
                written.add(image_id)
                _add_bytes(tf, "blobs/sha256/" + Digest.parse(image_id).hex, cfg_raw)
            cfg_desc = Descriptor(mt.OCI_CONFIG, image_id, len(cfg_raw))
            man = dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg_desc.to_json(),
                         "layers": [d.to_json() for d in layers]})
            man_digest = digest_of(man)
            if man_digest not in written:
                written.add(man_digest)
                _add_bytes(tf, "blobs/sha256/" + Digest.parse(man_digest).hex, man)
            refs = images[image_id]
            base = {"mediaType": mt.OCI_MANIFEST, "digest": man_digest, "size": len(man)}
            if refs:
                for ref in refs:
                    index.append({**base, "annotations": {"io.containerd.image.name": str(ref),
                                                          "org.opencontainers.image.ref.name": ref.tag or ""}})
                    if layers and ref.tag:
                        repositories.setdefault(ref.familiar_name(), {})[ref.tag] = Digest.parse(layers[-1].digest).hex
            else:
                index.append(base)
            manifest_json.append({"Config": "blobs/sha256/" + Digest.parse(image_id).hex,
                                  "RepoTags": [r.familiar() for r in refs] or None,
                                  "Layers": ["blobs/sha256/" + Digest.parse(d.digest).hex for d in layers]})
        _add_bytes(tf, "index.json", dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index}))
        _add_bytes(tf, "manifest.json", dumps(manifest_json))
        _add_bytes(tf, "oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            _add_bytes(tf, "repositories", dumps(repositories))


def iter_save(svc: ImageService, names: list[str], chunk: int = 1 << 20) -> Iterator[bytes]:
    """`save` as a stream of chunks (for an HTTP response), written by a thread through a pipe."""
    import threading

    r, w = os.pipe()
    err: list[BaseException] = []

    def run() -> None:
        try:
            with os.fdopen(w, "wb") as out:
                save(svc, names, out)
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=run, name="image-save", daemon=True)
    t.start()
    with os.fdopen(r, "rb") as f:
        while data := f.read(chunk):
            yield data
    t.join()
    if err:
        raise err[0]
