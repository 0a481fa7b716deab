"""TEMPORARY stand-in until berth.runtime.cgroups lands: puts nothing anywhere."""

from __future__ import annotations

import os
from typing import Any


class _M:
    version = "none"
    path = ""
    root = "/sys/fs/cgroup"

    def __init__(self, pid_hint: int = 0) -> None:
        self._pids: list[int] = []

    def create(self) -> None: ...
    def apply(self, resources: dict[str, Any]) -> None: ...
    def add_pid(self, pid: int) -> None: ...
    def pids(self) -> list[int]:
        return []
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def is_frozen(self) -> bool:
        return False
    def kill_all(self, sig: int) -> None: ...
    def destroy(self) -> None: ...


def manager_for(path: Any, cid: str, **kw: Any) -> _M:
    return _M()


_ = os
