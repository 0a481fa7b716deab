"""Per-container state under the runtime root: `<root>/<id>/state.json` and `exec.fifo`.

The status is derived, never stored: created while the exec fifo exists and the init is alive;
running once started; paused when the cgroup is frozen; stopped when the init is gone (checked
with its start time, so a recycled pid is not mistaken for the container).
"""

from __future__ import annotations

import os

from berth import fastjson
from berth.runtime.errors import ConfigError, ContainerNotFound

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.2.0"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(cid: str) -> None:
    """runc's rule: letters, digits, `_+-.`, and not `.` or `..` (ids become directory names)."""
    if not cid:
        raise ConfigError("container id cannot be empty")
    if not set(cid) <= _ID_CHARS or cid in (".", ".."):
        raise ConfigError(f"invalid container id format: {cid}")


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


class State:
    """What the runtime keeps about one container (its config included, for delete's hooks)."""

    FIELDS = ("id", "bundle", "rootfs", "created", "pid", "start_time", "owner", "config", "cgroup_paths",
              "cgroup_version", "cgroup_root", "started")

    def __init__(self, id: str, bundle: str, rootfs: str, created: str, pid: int = 0, start_time: int = 0,
                 owner: str = "", config: dict[str, Any] | None = None, cgroup_paths: dict[str, str] | None = None,
                 cgroup_version: str = "", cgroup_root: str = "/sys/fs/cgroup", started: bool = False) -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.pid = pid
        self.start_time = start_time
        self.owner = owner
        self.config: dict[str, Any] = config if config is not None else {}
        self.cgroup_paths: dict[str, str] = cgroup_paths or {}
        self.cgroup_version = cgroup_version
        self.cgroup_root = cgroup_root
        self.started = started

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FIELDS}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(**{k: v for k, v in d.items() if k in cls.FIELDS})


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
                return State.from_json(fastjson.loads(f.read()))  # type: ignore[arg-type]
        except FileNotFoundError:
            raise ContainerNotFound() from None
        except ValueError:
            raise ContainerNotFound(f"container {self.id}: corrupt state file") from None

    def save(self, st: State) -> None:
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(st.to_json(), compact=True))
        os.replace(tmp, self.state_file)


def alive(st: State) -> bool:
    return st.pid > 0 and proc_start_time(st.pid) == st.start_time


def list_ids(root: str) -> list[str]:
    try:
        return sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "state.json")))
    except FileNotFoundError:
        return []
