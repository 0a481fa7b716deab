import glob
import hashlib
import json
import os

import pytest

from berth.errors import InvalidArgument
from berth.oci import mediatypes as mt
from berth.oci.compression import Compressor, Decompressor, detect
from berth.oci.manifest import ImageConfig, chain_ids, parse_index, parse_manifest, sniff
from tests.image.fixtures import BUSYBOX, FIXTURES


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


CIMAGE = os.path.join(FIXTURES, "c-image", "manifest", "fixtures")


def test_busybox_manifest_and_config_parse_and_digests_match() -> None:
    for layout in sorted(glob.glob(os.path.join(BUSYBOX, "*"))):
        man = _read(os.path.join(layout, "image-manifest.json"))
        m = parse_manifest(man)
        assert m.media_type == mt.OCI_MANIFEST
        cfg_raw = _read(os.path.join(layout, "image-config.json"))
        assert m.config.digest == "sha256:" + hashlib.sha256(cfg_raw).hexdigest()
        cfg = ImageConfig.parse(cfg_raw)
        assert cfg.config["Cmd"] == ["sh"]
        assert len(cfg.diff_ids) == len(m.layers) == 1
        blob = _read(os.path.join(layout, "rootfs.tar.gz"))
        assert m.layers[0].digest == "sha256:" + hashlib.sha256(blob).hexdigest()
        d = Decompressor(detect(blob))
        plain = b"".join(d.feed(blob))
        d.finish()
        assert cfg.diff_ids[0] == "sha256:" + hashlib.sha256(plain).hexdigest()


def test_chain_ids() -> None:
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b])[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def _fixture(name: str) -> bytes:
    return _read(os.path.join(CIMAGE, name))


def test_manifest_variants_from_containers_image() -> None:
    v2s2 = parse_manifest(_fixture("v2s2.everything.json"))
    assert v2s2.media_type == mt.DOCKER_MANIFEST and v2s2.layers
    plain = parse_manifest(_fixture("v2s2.uncompressed.manifest.json"))
    assert plain.media_type == mt.DOCKER_MANIFEST
    zstd = parse_manifest(_fixture("ociv1.zstd.manifest.json"))
    assert all(mt.LAYER_COMPRESSION[x.media_type] == "zstd" for x in zstd.layers)
    nd = parse_manifest(_fixture("ociv1.nondistributable.zstd.manifest.json"))
    assert all(mt.is_layer(x.media_type) for x in nd.layers)
    oci = parse_manifest(_fixture("ociv1.uncompressed.manifest.json"))
    assert oci.media_type == mt.OCI_MANIFEST and all(mt.LAYER_COMPRESSION[x.media_type] == "" for x in oci.layers)
    nomime = parse_manifest(_fixture("ociv1.invalid.mediatype.manifest.json"), mt.OCI_MANIFEST)
    assert nomime.media_type == mt.OCI_MANIFEST
    with pytest.raises(InvalidArgument, match="schema 1"):
        parse_manifest(_fixture("v2s1.everything.json"))
    with pytest.raises(InvalidArgument, match="not an image index"):
        parse_index(_fixture("v2s2.everything.json"))


def test_null_manifests_in_index_is_tolerated() -> None:
    data = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": None}).encode()
    assert parse_index(data).manifests == ()
    assert sniff(data) == mt.OCI_INDEX


def test_bad_descriptor_and_config_are_refused() -> None:
    bad = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": {"digest": "sha256:zz", "size": 1}, "layers": []}).encode()
    with pytest.raises(InvalidArgument):
        parse_manifest(bad)
    with pytest.raises(InvalidArgument, match="rootfs"):
        ImageConfig.parse(b'{"rootfs": {"type": "x"}}')


@pytest.mark.parametrize("kind", ["gzip", "zstd", ""])
def test_compression_round_trip_and_truncation(kind: str) -> None:
    data = os.urandom(1000) * 300
    c = Compressor(kind)
    blob = c.feed(data) + c.flush()
    assert detect(blob) == kind
    d = Decompressor(kind)
    assert b"".join(d.feed(blob)) == data
    d.finish()
    if kind:
        d = Decompressor(kind)
        b"".join(d.feed(blob[: len(blob) // 2]))
        with pytest.raises(InvalidArgument, match="unexpected EOF"):
            d.finish()


def test_zstd_twin_of_a_real_layer() -> None:
    base = os.path.join(FIXTURES, "ggcr", "pkg", "crane", "testdata")
    plain = _read(os.path.join(base, "content.tar"))
    z = _read(os.path.join(base, "content.tar.zst"))
    d = Decompressor(detect(z))
    assert b"".join(d.feed(z)) == plain
