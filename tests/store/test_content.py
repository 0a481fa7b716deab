"""The content store: verified writes, no half blobs, resumable ingests, sha512 on read."""

import hashlib
import io
import os

import pytest

from berth.errors import NotFound
from berth.store.content import ContentStore, DigestMismatchError


def _visible(cs: ContentStore) -> list[str]:
    return sorted(d for d, _ in cs.walk())


def test_put_and_read_back(tmp_path) -> None:
    cs = ContentStore(str(tmp_path))
    d = cs.put(b"hello")
    assert d == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert cs.read(d) == b"hello" and cs.has(d) and cs.size(d) == 5
    with pytest.raises(NotFound):
        cs.read("sha256:" + "0" * 64)


def test_bad_digest_or_size_leaves_nothing(tmp_path) -> None:
    cs = ContentStore(str(tmp_path))
    with pytest.raises(DigestMismatchError, match="digest mismatch"):
        cs.ingest(io.BytesIO(b"data"), expected="sha256:" + "1" * 64)
    with pytest.raises(DigestMismatchError, match="size mismatch"):
        cs.ingest(io.BytesIO(b"data"), expected=cs_digest(b"data"), size=5)
    with pytest.raises(DigestMismatchError, match="larger than"):
        cs.ingest(io.BytesIO(b"data"), size=3)
    assert _visible(cs) == [] and os.listdir(tmp_path / "ingest") == []


def cs_digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def test_resumable_ingest(tmp_path) -> None:
    cs = ContentStore(str(tmp_path))
    data = os.urandom(100_000)
    w = cs.writer(cs_digest(data), len(data), ref="pull-1")
    w.write(data[:40_000])
    w.abort()  # e.g. the connection dropped
    assert _visible(cs) == []
    w2 = cs.writer(cs_digest(data), len(data), ref="pull-1")
    assert w2.offset == 40_000
    w2.write(data[40_000:])
    assert w2.commit() == cs_digest(data)
    assert cs.read(cs_digest(data)) == data and cs.ingests() == []


def test_sha512_blobs(tmp_path) -> None:
    cs = ContentStore(str(tmp_path))
    d = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert cs.put(b"x", expected=d) == d
    assert cs.read(d) == b"x" and d in _visible(cs)


def test_anonymous_leftovers_are_removed_at_open(tmp_path) -> None:
    ContentStore(str(tmp_path))
    os.makedirs(tmp_path / "ingest" / "anon-x")
    (tmp_path / "ingest" / "anon-x" / "data").write_bytes(b"half")
    ContentStore(str(tmp_path))
    assert os.listdir(tmp_path / "ingest") == []
