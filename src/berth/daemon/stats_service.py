"""`GET /containers/{id}/stats`: frames sampled from the container's cgroup, as moby streams them
(one per second; `stream=0` waits for a second sample so `precpu_stats` is filled, unless one-shot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from berth.daemon import stats
from berth.errors import BerthError

JSON = dict[str, Any]
INTERVAL = 1.0


async def stats_frames(service: Any, c: Any, *, stream: bool, one_shot: bool) -> AsyncIterator[JSON]:
    name = "/" + c.name
    net = c.host_config.get("NetworkMode") != "host"

    async def take(prev: JSON | None) -> JSON | None:
        if not c.running:
            return None
        try:
            manager = await asyncio.to_thread(lambda: service._runtime_container(c).cgroup())
            return await asyncio.to_thread(stats.sample, manager, pid=c.state["Pid"], name=name, id=c.id, prev=prev,
                                           network=net)
        except (BerthError, OSError):
            return None

    first = await take(None)
    if first is None:
        yield stats.empty_frame(name, c.id)
        return
    if not stream:
        if one_shot:
            yield first
            return
        await asyncio.sleep(INTERVAL)
        second = await take(first)
        yield second if second is not None else first
        return
    yield first
    prev = first
    while True:
        await asyncio.sleep(INTERVAL)
        cur = await take(prev)
        if cur is None:
            yield stats.empty_frame(name, c.id)
            return
        yield cur
        prev = cur
