"""Repository names and tags as the distribution spec defines them, for the registry's URL paths.

Kept apart from `berth.oci.reference` (which parses whole references, domain included): names and tags
become file names in the registry's storage, so they are matched in full, ASCII only (Go's regexp
`\\w` is ASCII; Python's is not), and a trailing newline is not forgiven as `$` would."""

from __future__ import annotations

import re

# distribution-spec: path components joined by "/", each lowercase alphanumerics with single
# separators ("." "_" "__" or runs of "-").
_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# Many clients cap "host[:port]/name" at 255 characters; distribution refuses longer names.
MAX_NAME = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_NAME_RE.fullmatch(name))


def valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.fullmatch(tag))
