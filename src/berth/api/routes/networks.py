"""Network routes."""

from __future__ import annotations

from berth.api import params
from berth.api.backends import NetworksBackend
from berth.api.responses import no_content, ok_empty
from berth.errors import InvalidArgument
from berth.httpd import Request, Response, Router, json_response

N = "/networks/{id:.*}"
_LIST_FILTERS = frozenset(("dangling", "driver", "id", "label", "name", "scope", "type"))


class NetworkRoutes:
    def __init__(self, backend: NetworksBackend) -> None:
        self.b = backend

    def register(self, r: Router) -> None:
        r.add("GET", "/networks", self.list)
        r.add("GET", "/networks/", self.list)
        r.add("POST", "/networks/create", self.create)
        r.add("POST", "/networks/prune", self.prune)
        r.add("GET", N, self.inspect)
        r.add("DELETE", N, self.remove)
        r.add("POST", N + "/connect", self.connect)
        r.add("POST", N + "/disconnect", self.disconnect)

    async def list(self, req: Request) -> Response:
        f = params.validate_filters(params.filters(req.arg("filters")), _LIST_FILTERS)
        return json_response(await self.b.list(filters=f))

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.b.inspect(req.params["id"], verbose=req.bool_arg("verbose"),
                                                  scope=req.arg("scope") or None))

    async def create(self, req: Request) -> Response:
        config = params.json_object(await params.json_body(req, required=True))
        if not config.get("Name"):
            raise InvalidArgument("network name must not be empty")
        return json_response(await self.b.create(config), status=201)

    async def remove(self, req: Request) -> Response:
        await self.b.remove(req.params["id"])
        return no_content()

    async def connect(self, req: Request) -> Response:
        body = params.json_object(await params.json_body(req, required=True))
        container = body.get("Container") or ""
        if not container:
            raise InvalidArgument("no container specified")
        await self.b.connect(req.params["id"], container=container, endpoint_config=body.get("EndpointConfig"))
        return ok_empty()

    async def disconnect(self, req: Request) -> Response:
        body = params.json_object(await params.json_body(req, required=True))
        container = body.get("Container") or ""
        if not container:
            raise InvalidArgument("no container specified")
        await self.b.disconnect(req.params["id"], container=container, force=bool(body.get("Force")))
        return ok_empty()

    async def prune(self, req: Request) -> Response:
        return json_response(await self.b.prune(filters=params.filters(req.arg("filters"))))
