"""Per-container state under the runtime root: `<root>/<id>/state.json` and `exec.fifo`.

The status is derived, never stored: created while the exec fifo exists and the init is alive;
running once started; paused when the cgroup is frozen; stopped when the init is gone (checked
with its start time, so a recycled pid is not mistaken for the container).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from berth.runtime.errors import ConfigError, ContainerNotFound

OCI_VERSION = "1.2.0"
_ID_RE = re.compile(r"^[\w+\-.]+$")


def validate_id(cid: str) -> None:
    if not cid or not _ID_RE.match(cid) or cid in (".", ".."):
        raise ConfigError(f"invalid container id format: {cid}" if cid else "container id cannot be empty")


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/pid/stat), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


@dataclass
class State:
    id: str
    bundle: str
    rootfs: str
    created: str
    pid: int = 0
    start_time: int = 0
    owner: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    cgroup_path: str = ""
    cgroup_version: str = ""
    cgroup_root: str = "/sys/fs/cgroup"
    # set once `start` has opened the exec fifo
    started: bool = False

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class StateDir:
    def __init__(self, root: str, cid: str) -> None:
        validate_id(cid)
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)

    @property
    def state_file(self) -> str:
        return os.path.join(self.path, "state.json")

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, "exec.fifo")

    def exists(self) -> bool:
        return os.path.exists(self.state_file)

    def load(self) -> State:
        try:
            with open(self.state_file, "rb") as f:
                return State.from_json(json.loads(f.read()))
        except FileNotFoundError:
            raise ContainerNotFound() from None
        except ValueError:
            raise ContainerNotFound(f"container {self.id}: corrupt state file") from None

    def save(self, st: State) -> None:
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st.to_json(), f)
        os.replace(tmp, self.state_file)


def alive(st: State) -> bool:
    return st.pid > 0 and proc_start_time(st.pid) == st.start_time


def list_ids(root: str) -> list[str]:
    try:
        return sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "state.json")))
    except FileNotFoundError:
        return []
