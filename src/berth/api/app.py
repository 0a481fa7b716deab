"""The Engine API application: version prefix handling, common headers, error mapping, routes."""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Callable
from dataclasses import dataclass

import berth
from berth.api import version
from berth.api.backends import (
    BuildBackend,
    ContainersBackend,
    ExecBackend,
    ImagesBackend,
    NetworksBackend,
    SystemBackend,
    VolumesBackend,
)
from berth.api.responses import error_response
from berth.api.routes import unsupported
from berth.api.routes.containers import ContainerRoutes
from berth.api.routes.exec import ExecRoutes
from berth.api.routes.images import BuildRoutes, ImageRoutes
from berth.api.routes.networks import NetworkRoutes
from berth.api.routes.system import SystemRoutes
from berth.api.routes.volumes import VolumeRoutes
from berth.errors import BerthError
from berth.httpd import Address, Request, Response, Router, Server, serve


@dataclass
class Backends:
    """The daemon's services. A missing one leaves its routes unregistered (404 page not found)."""

    system: SystemBackend | None = None
    containers: ContainersBackend | None = None
    exec: ExecBackend | None = None
    images: ImagesBackend | None = None
    build: BuildBackend | None = None
    networks: NetworksBackend | None = None
    volumes: VolumesBackend | None = None


class EngineAPI:
    """A `berth.httpd` handler serving Docker's Engine API over the given backends.

        api = EngineAPI(Backends(containers=..., images=..., system=...))
        await api.serve(unix="/run/berth.sock")

    Every response carries `Api-Version`, `Ostype: linux`, `Server: Berth/<version> (linux)` and
    `Docker-Experimental: false`; handlers see `request.api_version` (the prefix's, or ours for a
    bare path) and `request.path` without the prefix.
    """

    def __init__(
        self,
        backends: Backends,
        *,
        engine_version: str = berth.__version__,
        platform_name: str = "Berth Engine",
        git_commit: str = "",
        build_time: str = "",
    ) -> None:
        self.backends = backends
        self.common_headers: list[tuple[str, str]] = [
            ("Api-Version", version.API_VERSION),
            ("Docker-Experimental", "false"),
            ("Ostype", "linux"),
            ("Server", f"Berth/{engine_version} (linux)"),
        ]
        self.router = Router()
        SystemRoutes(backends.system, platform_name=platform_name, engine_version=engine_version,
                     git_commit=git_commit, build_time=build_time).register(self.router)
        if backends.containers is not None:
            ContainerRoutes(backends.containers).register(self.router)
        if backends.exec is not None:
            ExecRoutes(backends.exec, self.common_headers).register(self.router)
        if backends.images is not None:
            ImageRoutes(backends.images).register(self.router)
        if backends.build is not None:
            BuildRoutes(backends.build).register(self.router)
        if backends.networks is not None:
            NetworkRoutes(backends.networks).register(self.router)
        if backends.volumes is not None:
            VolumeRoutes(backends.volumes).register(self.router)
        unsupported.register(self.router)

    async def __call__(self, request: Request) -> Response:
        requested, path = version.split_path(request.path)
        request.api_version = requested or version.API_VERSION
        request.path = path
        try:
            handler, request.params = self.router.resolve(request.method, path)
            if requested is not None:
                version.check(requested)
            response = await handler(request)
        except BerthError as e:
            response = self._error(request, e, requested)
        response.headers.extend(self.common_headers)
        return response

    def _error(self, request: Request, err: BerthError, requested: str | None) -> Response:
        if requested is not None and version.less_than(requested, version.MIN_API_VERSION) and err.status != 304:
            # moby answers clients older than it supports in plain text, which they can print.
            body = (str(err) + "\n").encode()
            return Response(err.status, [("Content-Type", "text/plain; charset=utf-8"),
                                         ("X-Content-Type-Options", "nosniff")], body)
        return error_response(request, err)

    def error_handler(self, request: Request, err: BerthError) -> Response:
        """For errors the server core raises outside a handler (a body over its limit)."""
        response = error_response(request, err)
        response.headers.extend(self.common_headers)
        return response

    def server(self, *, unix: str | None = None, host: str | None = None, port: int = 0,
               ssl: _ssl.SSLContext | None = None) -> Server:
        return Server(self, unix=unix, host=host, port=port, ssl=ssl, error_handler=self.error_handler)

    async def serve(self, *, unix: str | None = None, host: str | None = None, port: int = 0,
                    ssl: _ssl.SSLContext | None = None, ready: Callable[[list[Address]], None] | None = None) -> None:
        await serve(self, unix=unix, host=host, port=port, ssl=ssl, ready=ready, error_handler=self.error_handler)
