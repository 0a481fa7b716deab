"""The daemon's event bus: `GET /events` (past events since a time, then live ones) with Docker's filters."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

JSON = dict[str, Any]
HISTORY = 1024  # moby keeps the last 256; a few more cost nothing


class EventBus:
    def __init__(self) -> None:
        self.history: deque[JSON] = deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue[JSON]] = set()

    def emit(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
             *, scope: str = "local") -> JSON:
        now = time.time_ns()
        ev: JSON = {"Type": type_, "Action": action,
                    "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                    "scope": scope, "time": now // 1_000_000_000, "timeNano": now}
        if type_ == "container":
            # deprecated fields docker-py and old CLIs still read
            ev = {"status": action, "id": actor_id, "from": (attributes or {}).get("image", ""), **ev}
        elif type_ == "image":
            ev = {"status": action, "id": actor_id, **ev}
        self.history.append(ev)
        for q in list(self.subscribers):
            q.put_nowait(ev)
        return ev

    async def stream(self, *, since: float | None, until: float | None, filters: dict[str, list[str]]
                     ) -> AsyncIterator[JSON]:
        q: asyncio.Queue[JSON] = asyncio.Queue()
        self.subscribers.add(q)  # before replaying history, so nothing falls in between
        try:
            seen_last = 0
            if since is not None:
                for ev in list(self.history):
                    if ev["timeNano"] >= since * 1e9 and (until is None or ev["timeNano"] <= until * 1e9):
                        seen_last = ev["timeNano"]
                        if matches(ev, filters):
                            yield ev
            while True:
                timeout = None
                if until is not None:
                    timeout = until - time.time()
                    if timeout <= 0:
                        return
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    return
                if ev["timeNano"] <= seen_last:
                    continue
                if matches(ev, filters):
                    yield ev
        finally:
            self.subscribers.discard(q)


def matches(ev: JSON, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters: each key must match one of its values (type, event/action, container,
    image, label, name, id…)."""
    attrs = ev["Actor"]["Attributes"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = ev["Type"] in values
        elif key == "event":
            ok = ev["Action"] in values or ev["Action"].split(":")[0] in values
        elif key in ("container", "network", "volume", "image", "plugin", "node", "service", "secret", "config"):
            ok = ev["Type"] == key and (ev["Actor"]["ID"] in values or attrs.get("name") in values
                                         or any(ev["Actor"]["ID"].startswith(v) for v in values))
            if key == "image" and not ok:
                ok = attrs.get("image") in values or ev["Actor"]["ID"] in values
        elif key == "label":
            ok = any(_label_match(attrs, v) for v in values)
        elif key == "scope":
            ok = ev.get("scope") in values
        elif key == "daemon":
            ok = ev["Type"] == "daemon"
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_match(attrs: dict[str, str], want: str) -> bool:
    k, eq, v = want.partition("=")
    return k in attrs and (not eq or attrs[k] == v)
