"""Volume routes."""

from __future__ import annotations

from berth.api import params
from berth.api.backends import VolumesBackend
from berth.api.responses import no_content
from berth.httpd import Request, Response, Router, json_response

V = "/volumes/{name:.*}"
_LIST_FILTERS = frozenset(("dangling", "driver", "label", "name"))
_TRUE = frozenset(("1", "true", "True"))


class VolumeRoutes:
    def __init__(self, backend: VolumesBackend) -> None:
        self.b = backend

    def register(self, r: Router) -> None:
        r.add("GET", "/volumes", self.list)
        r.add("POST", "/volumes/create", self.create)
        r.add("POST", "/volumes/prune", self.prune)
        r.add("GET", V, self.inspect)
        r.add("DELETE", V, self.remove)

    async def list(self, req: Request) -> Response:
        f = params.validate_filters(params.filters(req.arg("filters")), _LIST_FILTERS)
        return json_response(await self.b.list(filters=f))

    async def create(self, req: Request) -> Response:
        config = params.json_object(await params.json_body(req))
        return json_response(await self.b.create(config), status=201)

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.b.inspect(req.params["name"]))

    async def remove(self, req: Request) -> Response:
        await self.b.remove(req.params["name"], force=req.bool_arg("force"))
        return no_content()

    async def prune(self, req: Request) -> Response:
        f = params.filters(req.arg("filters"))
        # API 1.42 made `all` a filter: without it only anonymous volumes are pruned.
        all_ = any(v in _TRUE for v in f.pop("all", []))
        return json_response(await self.b.prune(filters=f, all=all_))
