"""OCI / Docker v2.2 manifests, indexes (manifest lists), descriptors and image configs.

Parsing keeps the received bytes authoritative: digests are always of the bytes as received, never of
re-serialised JSON (notes/style.md B6). Writers produce canonical compact JSON for what berth creates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.oci import mediatypes as mt
from berth.oci.digest import Digest

MAX_MANIFEST_SIZE = 4 << 20  # registries and clients SHOULD handle up to 4 MB (image-spec)


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    os_version: str = ""

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        if self.os_version:
            d["os.version"] = self.os_version
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Platform | None:
        if not d:
            return None
        return cls(str(d.get("os", "")), str(d.get("architecture", "")), str(d.get("variant", "")),
                   str(d.get("os.version", "")))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    platform: Platform | None = field(default=None, compare=False, hash=False)
    urls: tuple[str, ...] = field(default=(), compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_json()
        return d

    @classmethod
    def from_json(cls, d: Any, what: str = "descriptor") -> Descriptor:
        if not isinstance(d, dict):
            raise InvalidArgument(f"invalid {what}: not an object")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid {what}: digest and size are required")
        Digest.parse(digest)
        ann = d.get("annotations") or {}
        if not isinstance(ann, dict):
            raise InvalidArgument(f"invalid {what}: annotations must be an object")
        return cls(str(d.get("mediaType", "")), digest, size, {str(k): str(v) for k, v in ann.items()},
                   Platform.from_json(d.get("platform")), tuple(d.get("urls") or ()))


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


def load_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_MANIFEST_SIZE:
        raise InvalidArgument(f"{what} is larger than {MAX_MANIFEST_SIZE} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid {what}: {e}") from None


def sniff(data: bytes, declared: str = "") -> str:
    """The media type of a manifest/index body: its `mediaType` field, else the declared one, else by shape."""
    doc = load_json(data, "manifest")
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not an object")
    mt_field = doc.get("mediaType")
    if isinstance(mt_field, str) and mt_field:
        if declared and declared != mt_field and declared in (mt.INDEXES | mt.MANIFESTS):
            raise InvalidArgument(f"manifest media type {mt_field!r} does not match {declared!r}")
        return mt_field
    if declared:
        return declared
    if doc.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in doc else mt.DOCKER_SCHEMA1
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    raise InvalidArgument("invalid manifest: unknown shape")


def parse_manifest(data: bytes, declared: str = "") -> Manifest:
    media_type = sniff(data, declared)
    if media_type not in mt.MANIFESTS:
        if media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
            raise InvalidArgument("unsupported manifest format: schema 1 (deprecated by Docker; not supported)")
        raise InvalidArgument(f"not an image manifest: {media_type}")
    doc = load_json(data, "manifest")
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported manifest schemaVersion: {doc.get('schemaVersion')!r}")
    layers = doc.get("layers")
    if layers is None:
        layers = []
    if not isinstance(layers, list):
        raise InvalidArgument("invalid manifest: layers must be a list")
    ann = doc.get("annotations") or {}
    return Manifest(media_type, Descriptor.from_json(doc.get("config"), "config descriptor"),
                    tuple(Descriptor.from_json(x, "layer descriptor") for x in layers), dict(ann))


def parse_index(data: bytes, declared: str = "") -> Index:
    media_type = sniff(data, declared)
    if media_type not in mt.INDEXES:
        raise InvalidArgument(f"not an image index: {media_type}")
    doc = load_json(data, "index")
    entries = doc.get("manifests") or []  # Docker 25.0.0-25.0.2 wrote "manifests": null
    if not isinstance(entries, list):
        raise InvalidArgument("invalid index: manifests must be a list")
    return Index(media_type, tuple(Descriptor.from_json(x, "manifest descriptor") for x in entries),
                 dict(doc.get("annotations") or {}))


def dumps(obj: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (so digests of what berth writes are stable)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_bytes(config: Descriptor, layers: list[Descriptor], media_type: str = mt.OCI_MANIFEST,
                   annotations: dict[str, str] | None = None) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
                           "layers": [x.to_json() for x in layers]}
    if annotations:
        doc["annotations"] = annotations
    return dumps(doc)


def index_bytes(manifests: list[Descriptor], media_type: str = mt.OCI_INDEX) -> bytes:
    return dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [m.to_json() for m in manifests]})


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(n))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass
class ImageConfig:
    """An image config kept as its received bytes plus the parsed document (read-only view)."""

    raw: bytes
    doc: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        doc = load_json(raw, "image config")
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid image config: not an object")
        rootfs = doc.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise InvalidArgument("invalid image config: rootfs.type must be \"layers\"")
        diff_ids = rootfs.get("diff_ids") or []
        if not isinstance(diff_ids, list):
            raise InvalidArgument("invalid image config: rootfs.diff_ids must be a list")
        for d in diff_ids:
            if not isinstance(d, str):
                raise InvalidArgument("invalid image config: diff_ids must be digests")
            Digest.parse(d)
        return cls(raw, doc)

    @property
    def id(self) -> str:
        return digest_of(self.raw)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.doc["rootfs"].get("diff_ids") or [])

    @property
    def config(self) -> dict[str, Any]:
        c = self.doc.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.doc.get("history")
        return [x for x in h if isinstance(x, dict)] if isinstance(h, list) else []

    @property
    def created(self) -> str:
        return str(self.doc.get("created") or "")

    def platform(self) -> Platform:
        return Platform(str(self.doc.get("os", "")), str(self.doc.get("architecture", "")),
                        str(self.doc.get("variant", "")), str(self.doc.get("os.version", "")))
