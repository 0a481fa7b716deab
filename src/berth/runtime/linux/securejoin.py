"""Resolve a path inside a root directory, following symlinks as if the root were `/`.

A container's rootfs is untrusted: `/dev -> /tmp/probe` or `etc -> ../../..` must never lead
the runtime outside it (CVE-2026-41579, CVE-2021-30465). Every absolute symlink target restarts
at the root and `..` never climbs above it. The result is a host path that was inside the root
at the time of the call; callers that mount on it open it with O_PATH|O_NOFOLLOW and re-check
through /proc/self/fd, so a later swap cannot redirect them.
"""

from __future__ import annotations

import os
import stat

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    root = os.path.abspath(root)
    parts = [p for p in unsafe.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, "too many levels of symbolic links", candidate)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p and p != "."] + parts
    return os.path.join(root, *resolved) if resolved else root


def within(root: str, path: str) -> bool:
    root = os.path.abspath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")
