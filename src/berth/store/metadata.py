"""Image metadata in sqlite: images, references (tags and digests), layers, the blob ↔ diff_id
mapping for push (Docker's `distribution/` metadata) and which containers use which image.

Why sqlite: one file, atomic transactions (a crash leaves the last committed state: WAL with
synchronous=FULL), indexed look-ups so start-up reads nothing up front (1,000 images cost nothing to
open), and the stdlib has it. Blobs and snapshots stay files; rows only point at them, and each is
written before the row that refers to it, so a crash leaves at worst an unreferenced file for GC.
One connection guarded by a lock: the daemon calls in from worker threads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS images(
  id TEXT PRIMARY KEY, manifest TEXT, manifest_type TEXT, created TEXT, parent TEXT,
  size INTEGER NOT NULL DEFAULT 0, chain TEXT NOT NULL, added REAL NOT NULL, last_tag_time TEXT);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
CREATE TABLE IF NOT EXISTS refs(
  ref TEXT PRIMARY KEY, repo TEXT NOT NULL, image_id TEXT NOT NULL, kind TEXT NOT NULL, added REAL NOT NULL);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS layers(
  chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, parent TEXT, size INTEGER NOT NULL, tar_size INTEGER NOT NULL,
  blob TEXT NOT NULL, media_type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dist(
  blob TEXT PRIMARY KEY, diff_id TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dist_diff ON dist(diff_id);
CREATE TABLE IF NOT EXISTS containers(id TEXT PRIMARY KEY, image_id TEXT NOT NULL, snapshot TEXT);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
"""


@dataclass
class ImageRow:
    id: str
    manifest: str | None
    manifest_type: str | None
    created: str
    parent: str | None
    size: int
    chain: list[str]
    added: float
    last_tag_time: str | None = None
    refs: list[str] = field(default_factory=list)


@dataclass
class LayerRow:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    tar_size: int
    blob: str
    media_type: str


class Metadata:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise RuntimeError(f"metadata schema {row[0]} is newer than this berth ({SCHEMA_VERSION})")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (re-entrant within a thread)."""
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def q(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- images ---------------------------------------------------------------------------------------
    def _image(self, r: tuple) -> ImageRow:
        return ImageRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8])

    _COLS = "id, manifest, manifest_type, created, parent, size, chain, added, last_tag_time"

    def get_image(self, image_id: str) -> ImageRow | None:
        rows = self.q(f"SELECT {self._COLS} FROM images WHERE id=?", (image_id,))
        return self._image(rows[0]) if rows else None

    def images(self) -> list[ImageRow]:
        imgs = {r[0]: self._image(r) for r in self.q(f"SELECT {self._COLS} FROM images")}
        for ref, image_id in self.q("SELECT ref, image_id FROM refs ORDER BY added, ref"):
            if image_id in imgs:
                imgs[image_id].refs.append(ref)
        return list(imgs.values())

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        return [r[0] for r in self.q("SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
                                     (prefix, prefix + "\uffff"))]

    def put_image(self, row: ImageRow) -> None:
        with self.tx() as db:
            db.execute(f"INSERT OR REPLACE INTO images({self._COLS}) VALUES(?,?,?,?,?,?,?,?,?)",
                       (row.id, row.manifest, row.manifest_type, row.created, row.parent, row.size,
                        json.dumps(row.chain), row.added, row.last_tag_time))

    def delete_image(self, image_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM images WHERE id=?", (image_id,))
            db.execute("DELETE FROM refs WHERE image_id=?", (image_id,))

    def children(self, image_id: str) -> list[str]:
        return [r[0] for r in self.q("SELECT id FROM images WHERE parent=?", (image_id,))]

    def set_parent(self, image_id: str, parent: str | None) -> None:
        with self.tx() as db:
            db.execute("UPDATE images SET parent=? WHERE id=?", (parent, image_id))

    # -- references -----------------------------------------------------------------------------------
    def refs_of(self, image_id: str) -> list[tuple[str, str, str]]:
        """(ref, repo, kind) of an image, oldest first."""
        sql = "SELECT ref, repo, kind FROM refs WHERE image_id=? ORDER BY added, ref"
        return [(r[0], r[1], r[2]) for r in self.q(sql, (image_id,))]

    def ref_target(self, ref: str) -> str | None:
        rows = self.q("SELECT image_id FROM refs WHERE ref=?", (ref,))
        return rows[0][0] if rows else None

    def set_ref(self, ref: str, repo: str, image_id: str, kind: str) -> str | None:
        """Point `ref` at `image_id`; returns the image it pointed at before (or None)."""
        now = time.time()
        with self.tx() as db:
            old = db.execute("SELECT image_id FROM refs WHERE ref=?", (ref,)).fetchone()
            db.execute("INSERT OR REPLACE INTO refs(ref, repo, image_id, kind, added) VALUES(?,?,?,?,?)",
                       (ref, repo, image_id, kind, now))
            if kind == "tag":
                db.execute("UPDATE images SET last_tag_time=? WHERE id=?",
                           (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z",
                            image_id))
        return old[0] if old else None

    def delete_ref(self, ref: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM refs WHERE ref=?", (ref,)).rowcount > 0

    def repo_refs(self, repo: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.q("SELECT ref, image_id FROM refs WHERE repo=?", (repo,))]

    # -- layers ---------------------------------------------------------------------------------------
    def get_layer(self, chain_id: str) -> LayerRow | None:
        rows = self.q("SELECT chain_id, diff_id, parent, size, tar_size, blob, media_type FROM layers WHERE chain_id=?",
                      (chain_id,))
        return LayerRow(*rows[0]) if rows else None

    def put_layer(self, row: LayerRow) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO layers VALUES(?,?,?,?,?,?,?)",
                       (row.chain_id, row.diff_id, row.parent, row.size, row.tar_size, row.blob, row.media_type))

    def layers(self) -> list[LayerRow]:
        sql = "SELECT chain_id, diff_id, parent, size, tar_size, blob, media_type FROM layers"
        return [LayerRow(*r) for r in self.q(sql)]

    def delete_layer(self, chain_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM layers WHERE chain_id=?", (chain_id,))

    # -- distribution: compressed blob <-> diff_id ----------------------------------------------------
    def put_dist(self, blob: str, diff_id: str, media_type: str, size: int) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO dist VALUES(?,?,?,?)", (blob, diff_id, media_type, size))

    def dist_for_diff(self, diff_id: str) -> list[tuple[str, str, int]]:
        """(blob digest, media type, size) of the blobs known to decompress to `diff_id`."""
        sql = "SELECT blob, media_type, size FROM dist WHERE diff_id=?"
        return [(r[0], r[1], r[2]) for r in self.q(sql, (diff_id,))]

    def diff_for_blob(self, blob: str) -> str | None:
        rows = self.q("SELECT diff_id FROM dist WHERE blob=?", (blob,))
        return rows[0][0] if rows else None

    def delete_dist(self, blob: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM dist WHERE blob=?", (blob,))

    # -- containers -----------------------------------------------------------------------------------
    def set_container(self, container_id: str, image_id: str, snapshot: str | None) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO containers VALUES(?,?,?)", (container_id, image_id, snapshot))

    def get_container(self, container_id: str) -> tuple[str, str | None] | None:
        rows = self.q("SELECT image_id, snapshot FROM containers WHERE id=?", (container_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def delete_container(self, container_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM containers WHERE id=?", (container_id,))

    def containers_of(self, image_id: str) -> list[str]:
        return [r[0] for r in self.q("SELECT id FROM containers WHERE image_id=? ORDER BY id", (image_id,))]

    def all_containers(self) -> list[tuple[str, str, str | None]]:
        return [(r[0], r[1], r[2]) for r in self.q("SELECT id, image_id, snapshot FROM containers")]
