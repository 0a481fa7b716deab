"""Manifest validation on push: what a manifest references, and whether it is well formed.

The bytes are stored and served exactly as received (their digest is their identity); this module
only reads them to refuse what the spec says to refuse and to learn the references the registry
must check (config and layers present, index children present) and the `subject` for referrers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.oci.digest import Digest
from berth.oci.mediatypes import (
    DOCKER_LAYER_FOREIGN_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_LAYER_ND,
    OCI_LAYER_ND_GZIP,
    OCI_LAYER_ND_ZSTD,
    OCI_MANIFEST,
)
from berth.oci.mediatypes import DOCKER_SCHEMA1 as _SCHEMA1
from berth.registry import errors as rerr

DOCKER_LIST = DOCKER_MANIFEST_LIST
DOCKER_SCHEMA1 = (_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_MANIFEST = 4 << 20  # the spec's SHOULD-accept size; larger is refused with 413

# Layers a registry is not expected to hold (their bytes live at `urls`).
_FOREIGN = (DOCKER_LAYER_FOREIGN_GZIP, OCI_LAYER_ND, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD)


@dataclass
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    raw: dict[str, Any]

    @property
    def foreign(self) -> bool:
        return self.media_type in _FOREIGN or bool(self.raw.get("urls"))


@dataclass
class Manifest:
    media_type: str
    blobs: list[Descriptor] = field(default_factory=list)       # config + layers (image manifests)
    children: list[Descriptor] = field(default_factory=list)    # manifests (indexes)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    def referrer_descriptor(self, digest: Digest, size: int) -> dict[str, Any]:
        """The descriptor the referrers API lists for this manifest."""
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": str(digest), "size": size}
        if self.artifact_type:
            desc["artifactType"] = self.artifact_type
        if self.annotations:
            desc["annotations"] = self.annotations
        return desc


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise rerr.ManifestInvalid(f"{where}: descriptor must be an object")
    mt, dg, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(mt, str) or not mt:
        raise rerr.ManifestInvalid(f"{where}: mediaType missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise rerr.ManifestInvalid(f"{where}: size must be a non-negative integer")
    if not isinstance(dg, str):
        raise rerr.ManifestInvalid(f"{where}: digest missing")
    try:
        d = Digest.parse(dg)
    except InvalidArgument:
        raise rerr.ManifestInvalid(f"{where}: invalid digest {dg!r}")
    return Descriptor(mt, d, size, obj)


def parse(data: bytes, content_type: str | None) -> Manifest:
    """Validate a pushed manifest and return what it references. Raises MANIFEST_INVALID."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise rerr.ManifestInvalid(f"manifest is not valid JSON: {e}")
    if not isinstance(doc, dict):
        raise rerr.ManifestInvalid("manifest must be a JSON object")
    ct = (content_type or "").split(";")[0].strip()
    field_mt = doc.get("mediaType")
    if field_mt is not None and not isinstance(field_mt, str):
        raise rerr.ManifestInvalid("mediaType must be a string")
    if ct in DOCKER_SCHEMA1 or field_mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise rerr.ManifestInvalid("schema 1 manifests are not supported")
    if field_mt and ct and ct not in ("application/json", "application/octet-stream") and field_mt != ct:
        raise rerr.ManifestInvalid(f"mediaType {field_mt!r} does not match Content-Type {ct!r}")
    media_type = ct if ct and ct not in ("application/json", "application/octet-stream") else (field_mt or "")
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    known = media_type in IMAGE_TYPES or media_type in INDEX_TYPES
    if known and doc.get("schemaVersion") != 2:
        raise rerr.ManifestInvalid("schemaVersion must be 2")
    m = Manifest(media_type)
    if media_type in IMAGE_TYPES or (not known and "config" in doc):
        m.blobs.append(_descriptor(doc.get("config"), "config"))
        layers = doc.get("layers", [])
        if layers is None:
            layers = []
        if not isinstance(layers, list):
            raise rerr.ManifestInvalid("layers must be a list")
        m.blobs.extend(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers))
    elif media_type in INDEX_TYPES or (not known and "manifests" in doc):
        children = doc.get("manifests")
        if children is None:
            children = []
        if not isinstance(children, list):
            raise rerr.ManifestInvalid("manifests must be a list")
        m.children.extend(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children))
    if doc.get("subject") is not None:
        m.subject = _descriptor(doc["subject"], "subject")
    at = doc.get("artifactType")
    if isinstance(at, str) and at:
        m.artifact_type = at
    elif m.blobs and media_type == OCI_MANIFEST:
        # image-spec: without artifactType, the config's media type stands for it
        m.artifact_type = m.blobs[0].media_type
    ann = doc.get("annotations")
    if isinstance(ann, dict):
        m.annotations = ann
    return m
