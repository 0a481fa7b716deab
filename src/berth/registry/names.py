"""Repository names and tags as the distribution spec defines them.

Private to berth.registry until `berth.oci.reference` lands; then this module delegates to it."""

from __future__ import annotations

import re

# distribution-spec: path components joined by "/", each lowercase alphanumerics with single
# separators ("." "_" "__" or runs of "-").
_NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Many clients cap "host[:port]/name" at 255 characters; distribution refuses longer names.
MAX_NAME = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_NAME_RE.match(name))


def valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))
