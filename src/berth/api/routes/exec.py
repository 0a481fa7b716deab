"""Exec routes: create, start (hijacked unless detached), resize, inspect."""

from __future__ import annotations

from typing import Any

from berth.api import hijack, params, version
from berth.api.backends import ExecBackend
from berth.api.responses import ok_empty
from berth.errors import InvalidArgument
from berth.httpd import Request, Response, Router, json_response


class ExecRoutes:
    def __init__(self, backend: ExecBackend, common_headers: list[tuple[str, str]]) -> None:
        self.b = backend
        # moby copies the middleware's headers (Server, Api-Version, ...) into the hijacked reply.
        self.common_headers = common_headers

    def register(self, r: Router) -> None:
        r.add("POST", "/containers/{name:.*}/exec", self.create)
        r.add("POST", "/exec/{id:.*}/start", self.start)
        r.add("POST", "/exec/{id:.*}/resize", self.resize)
        r.add("GET", "/exec/{id:.*}/json", self.inspect)

    async def create(self, req: Request) -> Response:
        config = params.json_object(await params.json_body(req, required=True))
        if not config.get("Cmd"):
            raise InvalidArgument("No exec command specified")
        if version.less_than(req.api_version, "1.42"):
            config.pop("ConsoleSize", None)
        exec_id = await self.b.create(req.params["name"], config=config)
        return json_response({"Id": exec_id}, status=201)

    async def start(self, req: Request) -> Response:
        opts = params.json_object(await params.json_body(req))
        detach = bool(opts.get("Detach")) or req.bool_arg("Detach")
        tty = bool(opts.get("Tty"))
        console = _console_size(opts.get("ConsoleSize")) if tty and version.at_least(req.api_version, "1.42") else None
        session = await self.b.start(req.params["id"], detach=detach, tty=tty, console_size=console)
        if detach or session is None:
            return ok_empty()
        return await hijack.serve_session(req, session, list(self.common_headers))

    async def resize(self, req: Request) -> Response:
        h = params.uint32(req, "h", "height")
        w = params.uint32(req, "w", "width")
        await self.b.resize(req.params["id"], height=h, width=w)
        return ok_empty()

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.b.inspect(req.params["id"]))


def _console_size(v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v):
        return int(v[0]), int(v[1])
    raise InvalidArgument("invalid ConsoleSize: expected [height, width]")
