"""Platforms (`linux/amd64`, `linux/arm64/v8`) and picking an index entry for one, as containerd's matcher does."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidArgument

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm",
         "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# GOARCH values whose variant has a default (containerd's platforms.Normalize)
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
        arch = _ARCH.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        return cls("linux", _ARCH.get(_platform.machine().lower(), _platform.machine().lower()))

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    def matches(self, spec: dict[str, Any]) -> bool:
        if str(spec.get("os", "")).lower() != self.os:
            return False
        if _ARCH.get(str(spec.get("architecture", "")), str(spec.get("architecture", ""))) != self.architecture:
            return False
        default = _DEFAULT_VARIANT.get(self.architecture)
        want = self.variant or default
        have = spec.get("variant") or default
        return want is None or have == want


def choose(entries: list[dict[str, Any]], want: Platform) -> dict[str, Any] | None:
    """The first index entry for `want` (entries without a platform, e.g. attestations, never match)."""
    for e in entries:
        p = e.get("platform")
        if isinstance(p, dict) and want.matches(p):
            return e
    return None
