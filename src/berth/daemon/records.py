"""Container records: what berthd knows about each container, persisted as one JSON file per
container (written to a temp file and renamed, so a crash never leaves half a record), indexed in
memory by id and name. Shapes for `inspect` and `ps` live here too, with moby's wording."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from berth.errors import Conflict, NotFound
from berth.units import human_duration

JSON = dict[str, Any]
ZERO_TIME = "0001-01-01T00:00:00Z"


def now_iso(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def parse_iso(s: str) -> float:
    """RFC3339(Nano) -> unix seconds (0 for Docker's zero time)."""
    if not s or s.startswith("0001-"):
        return 0.0
    import calendar

    base, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def new_state() -> JSON:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
            "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


class Container:
    """One container: `data` is persisted; the rest is live state of this daemon process."""

    def __init__(self, data: JSON, path: str) -> None:
        self.data = data
        self.path = path  # the container's directory under <data-root>/containers
        # live state
        self.lock = asyncio.Lock()
        self.monitor: Any = None  # MonitorConnection while running
        self.subscribers: set[asyncio.Queue[tuple[int, bytes] | None]] = set()
        self.exit_waiters: list[asyncio.Future[tuple[int, str | None]]] = []
        self.removed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending_stdin = bytearray()
        self.stdin_closed = False
        self.health: Any = None
        self.restart_task: asyncio.Task[None] | None = None
        self.stopping = False

    # -- identity ---------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"]).lstrip("/")

    @property
    def state(self) -> JSON:
        return self.data["State"]

    @property
    def config(self) -> JSON:
        return self.data["Config"]

    @property
    def host_config(self) -> JSON:
        return self.data["HostConfig"]

    @property
    def running(self) -> bool:
        return bool(self.state["Running"])

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def save(self) -> None:
        tmp = os.path.join(self.path, "config.v2.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, os.path.join(self.path, "config.v2.json"))

    # -- output fan-out -----------------------------------------------------------------------------
    def publish(self, stream: int, data: bytes) -> None:
        for q in list(self.subscribers):
            q.put_nowait((stream, data))

    def end_output(self) -> None:
        for q in list(self.subscribers):
            q.put_nowait(None)

    # -- shapes -------------------------------------------------------------------------------------
    def status_word(self) -> str:
        st = self.state
        if st.get("Restarting"):
            return "restarting"
        if st["Running"]:
            return "paused" if st["Paused"] else "running"
        if st.get("Dead"):
            return "dead"
        return str(st.get("Status") or "created")

    def status_text(self) -> str:
        st = self.state
        now = time.time()
        if st["Running"]:
            if st.get("Restarting"):
                return f"Restarting ({st['ExitCode']}) {human_duration(now - parse_iso(st['FinishedAt']))} ago"
            up = human_duration(now - parse_iso(st["StartedAt"]))
            if st["Paused"]:
                return f"Up {up} (Paused)"
            health = (st.get("Health") or {}).get("Status")
            if health:
                return f"Up {up} ({'health: starting' if health == 'starting' else health})"
            return f"Up {up}"
        if st.get("Dead"):
            return "Dead"
        if st["StartedAt"] == ZERO_TIME:
            return "Created"
        if st["FinishedAt"] == ZERO_TIME:
            return ""
        return f"Exited ({st['ExitCode']}) {human_duration(now - parse_iso(st['FinishedAt']))} ago"

    def command(self) -> str:
        """moby's list.go: the path, then the arguments, those holding a space in single quotes."""
        path = self.data.get("Path") or ""
        args = [f"'{a}'" if " " in a else a for a in self.data.get("Args") or []]
        return f"{path} {' '.join(args)}" if args else path

    def inspect(self) -> JSON:
        d = dict(self.data)
        d["State"] = dict(self.state, Status=self.status_word())
        for k in ("HasBeenStartedBefore", "HasBeenManuallyStopped", "ImageRef", "ImageName",
                  "DefaultReadOnlyNonRecursive"):
            d.pop(k, None)
        return d

    def summary(self) -> JSON:
        d = self.data
        return {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": d.get("ImageName") or d["Config"].get("Image", ""),
            "ImageID": d["Image"],
            "Command": self.command(),
            "Created": int(parse_iso(d["Created"])),
            "Ports": [],
            "Labels": d["Config"].get("Labels") or {},
            "State": self.status_word(),
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": d["HostConfig"].get("NetworkMode", "default")},
            "NetworkSettings": {"Networks": dict((d.get("NetworkSettings") or {}).get("Networks") or {})},
            "Mounts": list(d.get("Mounts") or []),
        }


class ContainerStore:
    """All containers, by id and by name; resolves what users type (id, unique prefix, name)."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, 0o711, exist_ok=True)
        self.by_id: dict[str, Container] = {}
        self.by_name: dict[str, Container] = {}

    def load(self) -> list[Container]:
        for cid in os.listdir(self.root):
            path = os.path.join(self.root, cid)
            try:
                with open(os.path.join(path, "config.v2.json")) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue
            self.add(Container(data, path))
        return list(self.by_id.values())

    def add(self, c: Container) -> None:
        self.by_id[c.id] = c
        self.by_name[c.name] = c

    def remove(self, c: Container) -> None:
        self.by_id.pop(c.id, None)
        if self.by_name.get(c.name) is c:
            del self.by_name[c.name]

    def rename(self, c: Container, new: str) -> None:
        if new in self.by_name and self.by_name[new] is not c:
            other = self.by_name[new]
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by container "{other.id}". '
                           "You have to remove (or rename) that container to be able to reuse that name.")
        self.by_name.pop(c.name, None)
        c.data["Name"] = "/" + new
        self.by_name[new] = c

    def get(self, ref: str) -> Container:
        if not ref:
            raise NotFound("No such container: ")
        c = self.by_id.get(ref) or self.by_name.get(ref.lstrip("/"))
        if c is not None:
            return c
        matches = [c for cid, c in self.by_id.items() if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(f"Multiple IDs found with provided prefix: {ref}")  # moby: ambiguous → 404-ish
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return list(self.by_id.values())
