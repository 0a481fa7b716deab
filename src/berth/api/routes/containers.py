"""Container routes: create, inspect, list, lifecycle, wait, attach, logs, stats, archive, prune."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from berth.api import hijack, params, stdcopy, version
from berth.api.backends import AttachOptions, ContainersBackend, LogRecord, LogsOptions, WaitResult
from berth.api.responses import deferred_json, json_lines, no_content, ok_empty, prime, primed_stream
from berth.errors import BerthError, InvalidArgument
from berth.httpd import Request, Response, Router, dumps, json_response, stream_response

C = "/containers/{name:.*}"
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
_LIST_FILTERS = frozenset(("ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label",
                           "name", "network", "publish", "since", "status", "volume"))


class ContainerRoutes:
    def __init__(self, backend: ContainersBackend) -> None:
        self.b = backend

    def register(self, r: Router) -> None:
        r.add("GET", "/containers/json", self.list)
        r.add("POST", "/containers/create", self.create)
        r.add("POST", "/containers/prune", self.prune)
        r.add("POST", "/commit", self.commit)
        r.add("GET", C + "/json", self.inspect)
        r.add("GET", C + "/top", self.top)
        r.add("GET", C + "/logs", self.logs)
        r.add("GET", C + "/changes", self.changes)
        r.add("GET", C + "/export", self.export)
        r.add("GET", C + "/stats", self.stats)
        r.add("POST", C + "/resize", self.resize)
        r.add("POST", C + "/start", self.start)
        r.add("POST", C + "/stop", self.stop)
        r.add("POST", C + "/restart", self.restart)
        r.add("POST", C + "/kill", self.kill)
        r.add("POST", C + "/update", self.update)
        r.add("POST", C + "/rename", self.rename)
        r.add("POST", C + "/pause", self.pause)
        r.add("POST", C + "/unpause", self.unpause)
        r.add("POST", C + "/attach", self.attach)
        r.add("GET", C + "/attach/ws", self.attach_ws)
        r.add("POST", C + "/wait", self.wait)
        r.add("DELETE", C, self.remove)
        r.add("HEAD", C + "/archive", self.archive_head)
        r.add("GET", C + "/archive", self.archive_get)
        r.add("PUT", C + "/archive", self.archive_put)

    # -- create, inspect, list -----------------------------------------------------------------

    async def create(self, req: Request) -> Response:
        body = await params.json_body(req)
        if body is None:
            raise InvalidArgument("config cannot be empty in order to create a container")
        config = params.json_object(body)
        name = req.arg("name") or None
        platform = req.arg("platform") or None
        host = config.get("HostConfig")
        if version.less_than(req.api_version, "1.42") and isinstance(host, dict):
            host.pop("ConsoleSize", None)
        old_ro = version.less_than(req.api_version, "1.44")  # read-only binds were not recursive then
        if old_ro and isinstance(host, dict) and isinstance(host.get("Mounts"), list):
            for m in host["Mounts"]:
                opts = m.get("BindOptions") if isinstance(m, dict) and m.get("Type") == "bind" else None
                if isinstance(opts, dict) and opts.get("ReadOnlyForceRecursive"):
                    raise InvalidArgument("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
        return json_response(await self.b.create(config, name=name, platform=platform,
                                                 default_ro_non_recursive=old_ro), status=201)

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.b.inspect(req.params["name"], size=req.bool_arg("size")))

    async def list(self, req: Request) -> Response:
        f = params.validate_filters(params.filters(req.arg("filters")), _LIST_FILTERS)
        limit = params.int_or(req, "limit", None)
        if limit is not None and limit <= 0:
            limit = None  # Compose v1 sends limit=-1: no limit
        return json_response(await self.b.list(all=req.bool_arg("all"), limit=limit, size=req.bool_arg("size"),
                                               filters=f))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, req: Request) -> Response:
        length = req.headers.get("content-length")
        if (length is not None and length.isdigit() and int(length) > 7) or req.headers.get("transfer-encoding"):
            raise InvalidArgument("starting container with non-empty request body was deprecated since API v1.22 "
                                  "and removed in v1.24")
        await self.b.start(req.params["name"])
        return no_content()

    async def stop(self, req: Request) -> Response:
        timeout, sig = _stop_args(req)
        await self.b.stop(req.params["name"], timeout=timeout, signal=sig)
        return no_content()

    async def restart(self, req: Request) -> Response:
        timeout, sig = _stop_args(req)
        await self.b.restart(req.params["name"], timeout=timeout, signal=sig)
        return no_content()

    async def kill(self, req: Request) -> Response:
        name = req.params["name"]
        raw = req.arg("signal") or ""
        try:
            sig = params.signal(raw) if raw else 9
            await self.b.kill(name, signal=sig)
        except BerthError as e:
            # moby wraps every kill error: "cannot kill container: x: No such container: x"
            raise _rewrap(e, f"cannot kill container: {name}: {e}")
        return no_content()

    async def pause(self, req: Request) -> Response:
        await self.b.pause(req.params["name"])
        return no_content()

    async def unpause(self, req: Request) -> Response:
        await self.b.unpause(req.params["name"])
        return no_content()

    async def remove(self, req: Request) -> Response:
        await self.b.remove(req.params["name"], force=req.bool_arg("force"), volumes=req.bool_arg("v"),
                            link=req.bool_arg("link"))
        return no_content()

    async def rename(self, req: Request) -> Response:
        await self.b.rename(req.params["name"], name=req.arg("name") or "")
        return no_content()

    async def update(self, req: Request) -> Response:
        config = params.json_object(await params.json_body(req))
        return json_response(await self.b.update(req.params["name"], config=config))

    async def resize(self, req: Request) -> Response:
        h = params.uint32(req, "h", "height")
        w = params.uint32(req, "w", "width")
        await self.b.resize(req.params["name"], height=h, width=w)
        return ok_empty()

    async def wait(self, req: Request) -> Response:
        condition = "not-running"
        legacy = version.less_than(req.api_version, "1.30")
        if not legacy:
            v = req.arg("condition") or ""
            if v:
                if v not in WAIT_CONDITIONS:
                    raise InvalidArgument(f"invalid condition: {json.dumps(v)}")
                condition = v
        result = await self.b.wait(req.params["name"], condition=condition)
        if legacy:  # before 1.30 the headers came with the result
            return json_response(_wait_body(await result))
        return deferred_json(result, _wait_body)

    # -- I/O -----------------------------------------------------------------------------------

    async def attach(self, req: Request) -> Response:
        opts = AttachOptions(
            stdin=req.bool_arg("stdin"), stdout=req.bool_arg("stdout"), stderr=req.bool_arg("stderr"),
            logs=req.bool_arg("logs"), stream=req.bool_arg("stream"), detach_keys=req.arg("detachKeys") or None,
        )
        session = await self.b.attach(req.params["name"], opts)
        return await hijack.serve_session(req, session)

    async def attach_ws(self, req: Request) -> Response:
        from berth.api import wsattach

        accept = wsattach.check_handshake(req)
        every = version.less_than(req.api_version, "1.42")  # before 1.42 all three streams, always
        opts = AttachOptions(
            stdin=every or req.bool_arg("stdin"), stdout=every or req.bool_arg("stdout"),
            stderr=every or req.bool_arg("stderr"), logs=req.bool_arg("logs"), stream=req.bool_arg("stream"),
            detach_keys=req.arg("detachKeys") or None,
        )
        session = await self.b.attach(req.params["name"], opts)
        return await wsattach.serve(req, session, accept, binary=version.at_least(req.api_version, "1.28"))

    async def logs(self, req: Request) -> Response:
        stdout, stderr = req.bool_arg("stdout"), req.bool_arg("stderr")
        if not stdout and not stderr:
            raise InvalidArgument("must specify at least one of 'stdout' or 'stderr'")
        since = _log_time(req, "since")
        until = None if req.arg("until") == "0" else _log_time(req, "until")
        opts = LogsOptions(stdout=stdout, stderr=stderr, follow=req.bool_arg("follow"), since=since, until=until,
                           tail=_tail(req.arg("tail")), timestamps=req.bool_arg("timestamps"),
                           details=req.bool_arg("details"))
        stream = await self.b.logs(req.params["name"], opts)
        ctype = hijack.media_type(req.api_version, stream.tty)
        return stream_response(_log_bytes(stream.records, tty=stream.tty, timestamps=opts.timestamps), ctype)

    async def stats(self, req: Request) -> Response:
        stream = req.bool_arg("stream", default=True)
        one_shot = version.at_least(req.api_version, "1.41") and req.bool_arg("one-shot")
        frames = await prime(self.b.stats(req.params["name"], stream=stream, one_shot=one_shot))
        if not stream:
            first = await anext(frames, None)
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()
            return json_response(first)
        return json_lines(frames)

    async def top(self, req: Request) -> Response:
        return json_response(await self.b.top(req.params["name"], ps_args=req.arg("ps_args") or None))

    async def changes(self, req: Request) -> Response:
        return json_response(await self.b.changes(req.params["name"]))

    async def export(self, req: Request) -> Response:
        return await primed_stream(self.b.export(req.params["name"]), "application/x-tar")

    # -- archive -------------------------------------------------------------------------------

    async def archive_head(self, req: Request) -> Response:
        stat = await self.b.archive_stat(req.params["name"], path=_archive_path(req))
        return Response(200, [("X-Docker-Container-Path-Stat", _stat_header(stat)),
                              ("Content-Type", "application/json")], b"")

    async def archive_get(self, req: Request) -> Response:
        stat, data = await self.b.archive_get(req.params["name"], path=_archive_path(req))
        return await primed_stream(data, "application/x-tar", [("X-Docker-Container-Path-Stat", _stat_header(stat))])

    async def archive_put(self, req: Request) -> Response:
        await self.b.archive_put(
            req.params["name"], path=_archive_path(req), data=req.stream(),
            no_overwrite_dir_non_dir=req.bool_arg("noOverwriteDirNonDir"), copy_uid_gid=req.bool_arg("copyUIDGID"),
        )
        return ok_empty()

    # -- housekeeping --------------------------------------------------------------------------

    async def prune(self, req: Request) -> Response:
        return json_response(await self.b.prune(filters=params.filters(req.arg("filters"))))

    async def commit(self, req: Request) -> Response:
        body = await params.json_body(req)
        config = params.json_object(body) if body is not None else None
        ref = req.arg("container") or ""
        pause = req.bool_arg("pause", default=True)
        result = await self.b.commit(
            ref, repo=req.arg("repo") or None, tag=req.arg("tag") or None, author=req.arg("author") or None,
            comment=req.arg("comment") or None, changes=req.query.get("changes", []), pause=pause, config=config,
        )
        return json_response(result, status=201)


# -- helpers -------------------------------------------------------------------------------------


def _stop_args(req: Request) -> tuple[int | None, int | None]:
    sig = None
    if version.at_least(req.api_version, "1.42"):
        raw = req.arg("signal") or ""
        sig = params.signal(raw) if raw else None
    return params.int_or(req, "t", None), sig


def _wait_body(result: WaitResult) -> dict[str, Any]:
    if result.error:
        return {"Error": {"Message": result.error}, "StatusCode": result.status_code}
    return {"StatusCode": result.status_code}


def _rewrap(e: BerthError, message: str) -> BerthError:
    try:
        new = type(e)(message)
    except Exception:
        new = BerthError(message)
        new.status = e.status
    return new


def _tail(raw: str | None) -> int | None:
    """moby: "all", empty or anything not a non-negative number means everything."""
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _log_time(req: Request, name: str) -> float | None:
    raw = req.arg(name) or ""
    if not raw:
        return None
    return params.timestamp(raw, name)


def rfc3339_nano(ns: int) -> str:
    """moby's RFC3339NanoFixed in UTC: 2023-11-14T22:13:20.000000000Z."""
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


async def _log_bytes(records: AsyncIterator[LogRecord], *, tty: bool, timestamps: bool) -> AsyncIterator[bytes]:
    try:
        async for rec in records:
            data = rec.data
            if timestamps:
                data = rfc3339_nano(rec.time_ns).encode() + b" " + data
            yield data if tty else stdcopy.frame(rec.stream, data)
    finally:
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()


def _archive_path(req: Request) -> str:
    path = req.arg("path") or ""
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


def _stat_header(stat: dict[str, Any]) -> str:
    return base64.b64encode(dumps(stat).rstrip(b"\n")).decode()
