"""The Engine API version berth speaks, and the per-request version check.

berth advertises **1.44** (and accepts 1.24 through 1.44). Why 1.44 and not 1.50:
- It is the version Podman's Docker-compatible API has advertised for years, so CLI 28, docker-py 7,
  Compose v1/v2 and testcontainers are proven against it; CLI 28 negotiates down to it by itself.
- It has every behaviour clients need: wait conditions (1.30), 101 media types and ConsoleSize
  (1.42), and Compose v2's multi-network create (1.44).
- It avoids the 1.45-1.50 changes we would otherwise have to honour exactly (image inspect
  descriptors and manifests, `ImageManifestDescriptor` in container lists, removed fields and
  changed defaults), none of which the target clients need.
docker-py 7.1's explicit default is 1.44 too; 7.2 asks for 1.45 only when told not to negotiate.

A path may carry a version prefix (`/v1.44/containers/json`) or none (then the request is
treated as 1.44). Out-of-range versions get moby's 400 messages.
"""

from __future__ import annotations

import re

from berth.errors import InvalidArgument

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"

_PREFIX = re.compile(r"/v([0-9.]+)(/.*)\Z", re.S)
_cache: dict[str, tuple[int, ...]] = {}


def parse(version: str) -> tuple[int, ...]:
    """"1.44" -> (1, 44); non-numeric parts count as 0, as moby's versions.compare does."""
    v = _cache.get(version)
    if v is None:
        v = tuple(int(p) if p.isdigit() else 0 for p in version.split("."))
        if len(_cache) < 256:
            _cache[version] = v
    return v


def less_than(a: str, b: str) -> bool:
    return _cmp(parse(a), parse(b)) < 0


def at_least(a: str, b: str) -> bool:
    return _cmp(parse(a), parse(b)) >= 0


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a = a + (0,) * (n - len(a))
    b = b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def split_path(path: str) -> tuple[str | None, str]:
    """("1.41", "/containers/json") for "/v1.41/containers/json"; (None, path) without a prefix."""
    if path.startswith("/v") and len(path) > 2 and path[2].isdigit():
        m = _PREFIX.match(path)
        if m is not None:
            return m.group(1), m.group(2)
    return None, path


def check(version: str) -> None:
    """InvalidArgument with moby's wording when `version` is outside what berth serves."""
    if less_than(version, MIN_API_VERSION):
        raise InvalidArgument(
            f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version"
        )
    if less_than(API_VERSION, version):
        raise InvalidArgument(f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
