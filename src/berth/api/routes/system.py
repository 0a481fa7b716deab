"""System routes: ping, version, info, disk usage, events, auth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from berth.api import hostinfo, params, version
from berth.api.backends import SystemBackend
from berth.api.responses import json_lines
from berth.errors import InvalidArgument, NotImplementedYet
from berth.httpd import Request, Response, Router, json_response

_PING_HEADERS = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Builder-Version", "1"),  # the legacy builder: berth has no BuildKit
    ("Swarm", "inactive"),
]
_PING_GET = Response(200, [*_PING_HEADERS, ("Content-Type", "text/plain; charset=utf-8")], b"OK")
_PING_HEAD = Response(200, [*_PING_HEADERS, ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")],
                      b"")
_DF_TYPES = {"container", "image", "volume", "build-cache"}
_EVENT_FILTERS = frozenset(("config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
                            "scope", "secret", "service", "type", "volume"))


class SystemRoutes:
    def __init__(self, backend: SystemBackend | None, *, platform_name: str, engine_version: str,
                 git_commit: str, build_time: str) -> None:
        self.backend = backend
        self.platform_name = platform_name
        self.engine_version = engine_version
        self.git_commit = git_commit
        self.build_time = build_time

    def register(self, r: Router) -> None:
        r.add(["GET", "HEAD"], "/_ping", self.ping)
        r.add("GET", "/version", self.version)
        r.add("GET", "/info", self.info)
        r.add("GET", "/system/df", self.df)
        r.add("GET", "/events", self.events)
        r.add("POST", "/auth", self.auth)

    async def ping(self, req: Request) -> Response:
        # Copies: the app appends its common headers to each response.
        src = _PING_HEAD if req.method == "HEAD" else _PING_GET
        return Response(200, src.headers, src.body)

    async def version(self, req: Request) -> Response:
        details = {
            "ApiVersion": version.API_VERSION,
            "Arch": hostinfo.goarch(),
            "BuildTime": self.build_time,
            "Experimental": "false",
            "GitCommit": self.git_commit,
            "GoVersion": hostinfo.python_version(),
            "KernelVersion": hostinfo.kernel_version(),
            "MinAPIVersion": version.MIN_API_VERSION,
            "Os": "linux",
        }
        components: list[dict[str, Any]] = [{"Name": "Engine", "Version": self.engine_version, "Details": details}]
        if self.backend is not None:
            components.extend(await self.backend.version_components())
        return json_response({
            "Platform": {"Name": self.platform_name},
            "Components": components,
            "Version": self.engine_version,
            "ApiVersion": version.API_VERSION,
            "MinAPIVersion": version.MIN_API_VERSION,
            "GitCommit": self.git_commit,
            "GoVersion": hostinfo.python_version(),
            "Os": "linux",
            "Arch": hostinfo.goarch(),
            "KernelVersion": hostinfo.kernel_version(),
            "BuildTime": self.build_time,
        })

    async def info(self, req: Request) -> Response:
        info = self.default_info()
        if self.backend is not None:
            info.update(await self.backend.info())
        return json_response(info)

    def default_info(self) -> dict[str, Any]:
        """Every field the docker CLI and docker-py read, with the host's facts and neutral values;
        the backend's numbers override them."""
        os_name, os_version = hostinfo.os_release()
        return {
            "ID": "", "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
            "Images": 0, "Driver": "overlay2", "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                        "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
            "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True, "Debug": False, "NFd": 0,
            "OomKillDisable": False, "NGoroutines": 0,
            "SystemTime": datetime.now(UTC).astimezone().isoformat(timespec="microseconds"),
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0,
            "KernelVersion": hostinfo.kernel_version(), "OperatingSystem": os_name, "OSVersion": os_version,
            "OSType": "linux", "Architecture": hostinfo.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"], "IndexConfigs": {},
                               "Mirrors": []},
            "NCPU": hostinfo.ncpu(), "MemTotal": hostinfo.mem_total(), "GenericResources": None,
            "DockerRootDir": "/var/lib/berth", "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": hostinfo.hostname(), "Labels": [], "ExperimentalBuild": False,
            "ServerVersion": self.engine_version,
            "Runtimes": {"berth-runtime": {"path": "berth-runtime"}}, "DefaultRuntime": "berth-runtime",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                      "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"], "CDISpecDirs": [], "Warnings": None,
        }

    async def df(self, req: Request) -> Response:
        backend = _need(self.backend)
        types: list[str] | None = None
        if version.at_least(req.api_version, "1.42"):
            types = req.query.get("type") or None
            for t in types or ():
                if t not in _DF_TYPES:
                    raise InvalidArgument(f"unknown object type: {t}")
        return json_response(await backend.df(types=types))

    async def events(self, req: Request) -> Response:
        backend = _need(self.backend)
        since = params.timestamp(req.arg("since", "") or "", "since")
        until = params.timestamp(req.arg("until", "") or "", "until")
        if since is not None and until is not None and until < since:
            raise InvalidArgument(
                f"`since` time ({req.arg('since')}) cannot be after `until` time ({req.arg('until')})")
        f = params.validate_filters(params.filters(req.arg("filters")), _EVENT_FILTERS)
        return json_lines(backend.events(since=since, until=until, filters=f))

    async def auth(self, req: Request) -> Response:
        backend = _need(self.backend)
        config = params.json_object(await params.json_body(req, required=True))
        return json_response(await backend.auth(config))


def _need(backend: SystemBackend | None) -> SystemBackend:
    if backend is None:
        raise NotImplementedYet("this daemon has no system backend")
    return backend

