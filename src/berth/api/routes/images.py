"""Image routes: list, inspect, history, pull/import, push, tag, remove, save, load, prune, search,
and the legacy builder's `POST /build`."""

from __future__ import annotations

from typing import Any

from berth.api import params, version
from berth.api.backends import BuildBackend, ImagesBackend
from berth.api.jsonstream import json_stream_response
from berth.api.responses import primed_stream
from berth.errors import InvalidArgument
from berth.httpd import Request, Response, Router, json_response

IMG = "/images/{name:.*}"
_LIST_FILTERS = frozenset(("before", "dangling", "label", "reference", "since", "until"))


class ImageRoutes:
    def __init__(self, backend: ImagesBackend) -> None:
        self.b = backend

    def register(self, r: Router) -> None:
        r.add("GET", "/images/json", self.list)
        r.add("POST", "/images/create", self.create)
        r.add("POST", "/images/load", self.load)
        r.add("GET", "/images/get", self.save_many)
        r.add("GET", "/images/search", self.search)
        r.add("POST", "/images/prune", self.prune)
        r.add("GET", IMG + "/json", self.inspect)
        r.add("GET", IMG + "/history", self.history)
        r.add("GET", IMG + "/get", self.save_one)
        r.add("POST", IMG + "/push", self.push)
        r.add("POST", IMG + "/tag", self.tag)
        r.add("DELETE", IMG, self.remove)
        r.add("GET", "/distribution/{name:.*}/json", self.distribution)

    async def list(self, req: Request) -> Response:
        f = params.validate_filters(params.filters(req.arg("filters")), _LIST_FILTERS)
        shared = version.at_least(req.api_version, "1.42") and req.bool_arg("shared-size")
        return json_response(await self.b.list(all=req.bool_arg("all"), filters=f, digests=req.bool_arg("digests"),
                                               shared_size=shared))

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.b.inspect(req.params["name"]))

    async def history(self, req: Request) -> Response:
        return json_response(await self.b.history(req.params["name"]))

    async def create(self, req: Request) -> Response:
        image = req.arg("fromImage") or ""
        source = req.arg("fromSrc") or ""
        tag = req.arg("tag") or None
        platform = req.arg("platform") or None
        if image:
            auth = params.registry_auth(req.headers.get("x-registry-auth"))
            return await json_stream_response(self.b.pull(image=image, tag=tag, platform=platform, auth=auth))
        if source:
            data = req.stream() if source == "-" else None
            return await json_stream_response(self.b.import_image(
                source=source, data=data, repo=req.arg("repo") or None, tag=tag, message=req.arg("message") or None,
                changes=req.query.get("changes", []), platform=platform,
            ))
        raise InvalidArgument("either fromImage or fromSrc is required")

    async def push(self, req: Request) -> Response:
        auth = params.registry_auth(req.headers.get("x-registry-auth"))
        return await json_stream_response(self.b.push(req.params["name"], tag=req.arg("tag") or None, auth=auth))

    async def tag(self, req: Request) -> Response:
        repo = req.arg("repo") or ""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        await self.b.tag(req.params["name"], repo=repo, tag=req.arg("tag") or None)
        return Response(201, [], b"")

    async def remove(self, req: Request) -> Response:
        return json_response(await self.b.remove(req.params["name"], force=req.bool_arg("force"),
                                                 noprune=req.bool_arg("noprune")))

    async def save_many(self, req: Request) -> Response:
        return await primed_stream(self.b.save(req.query.get("names", [])), "application/x-tar")

    async def save_one(self, req: Request) -> Response:
        return await primed_stream(self.b.save([req.params["name"]]), "application/x-tar")

    async def load(self, req: Request) -> Response:
        # moby always answers 200 here, with errors in the stream (docker-py expects ImageLoadError).
        return await json_stream_response(self.b.load(req.stream(), quiet=req.bool_arg("quiet")),
                                          in_band_errors=True)

    async def prune(self, req: Request) -> Response:
        return json_response(await self.b.prune(filters=params.filters(req.arg("filters"))))

    async def search(self, req: Request) -> Response:
        term = req.arg("term") or ""
        return json_response(await self.b.search(term, limit=params.int_or(req, "limit", None),
                                                 filters=params.filters(req.arg("filters"))))

    async def distribution(self, req: Request) -> Response:
        auth = params.registry_auth(req.headers.get("x-registry-auth"))
        return json_response(await self.b.distribution(req.params["name"], auth=auth))


class BuildRoutes:
    def __init__(self, backend: BuildBackend) -> None:
        self.b = backend

    def register(self, r: Router) -> None:
        r.add("POST", "/build", self.build)
        r.add("POST", "/build/prune", self.prune)

    async def build(self, req: Request) -> Response:
        if (req.arg("version") or "1") != "1":
            raise InvalidArgument("BuildKit is not supported by this daemon: use the legacy builder "
                                  "(DOCKER_BUILDKIT=0)")
        options = build_options(req)
        auth_configs = params.registry_config(req.headers.get("x-registry-config"))
        return await json_stream_response(self.b.build(req.stream(), options=options, auth_configs=auth_configs))

    async def prune(self, req: Request) -> Response:
        keep = params.int_or(req, "keep-storage", None)
        return json_response(await self.b.prune(filters=params.filters(req.arg("filters")), all=req.bool_arg("all"),
                                                keep_storage=keep))


_BUILD_BOOLS = ("q", "nocache", "pull", "forcerm", "squash")
_BUILD_INTS = ("memory", "memswap", "cpushares", "cpuperiod", "cpuquota", "shmsize")
_BUILD_STRS = ("dockerfile", "target", "platform", "networkmode", "cpusetcpus", "cpusetmems", "cgroupparent",
               "isolation", "remote", "outputs")
_BUILD_JSON = ("buildargs", "labels", "cachefrom", "ulimits")


def build_options(req: Request) -> dict[str, Any]:
    """The legacy build query as a dict; absent options are left out (rm defaults to true)."""
    opts: dict[str, Any] = {"t": req.query.get("t", []), "rm": req.bool_arg("rm", default=True)}
    for k in _BUILD_BOOLS:
        if k in req.query:
            opts[k] = req.bool_arg(k)
    for k in _BUILD_INTS:
        v = params.int_or(req, k, None)
        if v is not None:
            opts[k] = v
    for k in _BUILD_STRS:
        v2 = req.arg(k)
        if v2:
            opts[k] = v2
    for k in _BUILD_JSON:
        v3 = params.json_query(req, k)
        if v3 is not None:
            opts[k] = v3
    if "extrahosts" in req.query:
        opts["extrahosts"] = [h for v in req.query["extrahosts"] for h in v.split(",") if h]
    opts.setdefault("dockerfile", "Dockerfile")
    return opts
