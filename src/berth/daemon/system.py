"""`/info`, `/system/df`, `/events`, `/auth` and `/version` components: berthd's SystemBackend."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import berth
from berth.daemon.events import EventBus

JSON = dict[str, Any]


class SystemService:
    def __init__(self, *, containers: Any, images: Any, events: EventBus, config: Any, auth: Any = None,
                 registry_info: Any = None) -> None:
        self.containers = containers
        self.images = images
        self.bus = events
        self.config = config
        self._auth = auth
        self._registry_info = registry_info
        self.id = _daemon_id(config.data_root)

    async def info(self) -> JSON:
        cs = self.containers.store.all()
        running = sum(1 for c in cs if c.running and not c.state["Paused"])
        paused = sum(1 for c in cs if c.running and c.state["Paused"])
        images = await asyncio.to_thread(lambda: len(self.images.list_images()))
        from berth.runtime import cgroups

        cgv = cgroups.detect()
        return {
            "ID": self.id,
            "Containers": len(cs),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": len(cs) - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "DockerRootDir": self.config.data_root,
            "Name": socket.gethostname(),
            "ServerVersion": berth.__version__,
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "2" if cgv == "v2" else "1",
            "DefaultRuntime": self.config.default_runtime,
            "Runtimes": {name: {"path": path} for name, path in self.config.runtimes.items()},
            "LiveRestoreEnabled": self.config.live_restore,
            "InitBinary": "docker-init",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "RegistryConfig": self._registry_info() if self._registry_info else {
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"], "IndexConfigs": {},
                "Mirrors": list(self.config.registry_mirrors)},
            "Labels": [],
            "ExperimentalBuild": False,
            "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": "", "NodeAddr": "",
                      "Error": "", "RemoteManagers": None},
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Authorization": None,
                        "Log": ["json-file"]},
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "OomKillDisable": cgv == "v1",
            "IPv4Forwarding": True,
            "Debug": self.config.log_level == "debug",
        }

    async def df(self, *, types: list[str] | None) -> JSON:
        usage = await asyncio.to_thread(self.images.disk_usage)
        out: JSON = {"LayersSize": usage.get("LayersSize", 0), "Images": usage.get("Images", []),
                     "BuildCache": [], "Volumes": []}
        containers = []
        for c in self.containers.store.all():
            s = c.summary()
            s["SizeRw"] = await asyncio.to_thread(self.images.rw_size, c.id)
            s["SizeRootFs"] = s["SizeRw"]
            containers.append(s)
        out["Containers"] = containers
        if types:
            keep = {"container": "Containers", "image": "Images", "volume": "Volumes", "build-cache": "BuildCache"}
            out = {k: v for k, v in out.items() if k == "LayersSize" or k in {keep.get(t) for t in types}}
        return out

    def events(self, *, since: float | None, until: float | None,
               filters: dict[str, list[str]]) -> AsyncIterator[JSON]:
        return self.bus.stream(since=since, until=until, filters=filters)

    async def auth(self, config: JSON) -> JSON:
        if self._auth is None:
            from berth.errors import NotImplementedYet

            raise NotImplementedYet("login is not supported by this daemon yet")
        result: JSON = await self._auth(config)
        return result

    async def version_components(self) -> list[JSON]:
        return [{"Name": "berth-runtime", "Version": berth.__version__, "Details": {"GitCommit": ""}},
                {"Name": "docker-init", "Version": _tini_version(self.config.init_path), "Details": {"GitCommit": ""}}]


def _daemon_id(data_root: str) -> str:
    path = os.path.join(data_root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        import uuid

        eid = str(uuid.uuid4())
        os.makedirs(data_root, exist_ok=True)
        with open(path, "w") as f:
            f.write(eid)
        return eid


def _tini_version(path: str) -> str:
    return "0.19.0" if os.path.exists(path) else ""
