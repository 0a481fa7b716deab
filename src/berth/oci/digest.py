"""Content digests (`sha256:<hex>`, `sha512:<hex>`): parsing, verification while streaming."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate; the hex part is safe to use as a file name afterwards."""
        m = _DIGEST_RE.match(text)
        if not m or len(m.group(2)) != _HEX_LEN[m.group(1)]:
            raise InvalidArgument(f"invalid digest: {text!r}")
        return cls(m.group(1), m.group(2))

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @property
    def encoded(self) -> str:
        return self.hex


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_valid(text: str) -> bool:
    try:
        Digest.parse(text)
    except InvalidArgument:
        return False
    return True
