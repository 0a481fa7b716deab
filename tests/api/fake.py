"""An in-memory Docker daemon behind berth.api's backend Protocols, for driving the API with real
clients (docker CLI 28, docker-py) without a kernel.

"Containers" run tiny programs chosen by Cmd[0], as asyncio tasks:
  echo ARGS...   print ARGS on stdout
  fail ARGS...   print ARGS on stderr
  cat            copy stdin to stdout until stdin closes
  sleep [SECS]   wait (default: until stopped)
  later ARGS...  wait 0.2 s, then print ARGS (output surely after the client's half-close)
  explode        print "before", then make attach sessions' output fail
The exit code is Config.Env's EXIT_CODE (default 0); a stop/kill exits with 128+signal.
Every backend call is appended to `FakeDaemon.calls` so tests can check the clients' order.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

from berth.api import (
    AttachOptions,
    Backends,
    LogRecord,
    LogsOptions,
    LogStream,
    WaitResult,
)
from berth.api import jsonstream as js
from berth.errors import Conflict, InvalidArgument, NotFound, NotModified, Unauthorized

JSON = dict[str, Any]
IMAGE_ID = "sha256:" + "ab" * 32
EXPLODE = b"EXPLODE\n"
KNOWN_IMAGES = {"busybox:latest", "busybox", "docker.io/library/busybox:latest", IMAGE_ID}


def _now_iso(t: float | None = None) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Events:
    def __init__(self) -> None:
        self.past: list[JSON] = []
        self.listeners: set[asyncio.Queue[JSON]] = set()

    def emit(self, type_: str, action: str, actor: str, attrs: dict[str, str], **extra: Any) -> None:
        ns = time.time_ns()
        ev: JSON = {"Type": type_, "Action": action, "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local",
                    "time": ns // 1_000_000_000, "timeNano": ns, **extra}
        if type_ == "container":
            ev = {"status": action, "id": actor, "from": attrs.get("image", ""), **ev}
        self.past.append(ev)
        for q in self.listeners:
            q.put_nowait(ev)


class FakeContainer:
    def __init__(self, daemon: FakeDaemon, cid: str, name: str, body: JSON) -> None:
        self.d = daemon
        self.id = cid
        self.name = name
        self.config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        self.host_config: JSON = body.get("HostConfig") or {}
        self.created = time.time()
        self.status = "created"
        self.exit_code = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.records: list[LogRecord] = []
        self.listeners: set[asyncio.Queue[LogRecord | None]] = set()
        self.stdin_q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.exit_waiters: list[asyncio.Future[WaitResult]] = []
        self.remove_waiters: list[asyncio.Future[WaitResult]] = []
        self.sessions: list[FakeSession] = []
        self.removed = False

    @property
    def env(self) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.config.get("Env") or [] if "=" in e)

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def emit(self, stream: int, data: bytes) -> None:
        rec = LogRecord(stream, data, time.time_ns())
        self.records.append(rec)
        for q in self.listeners:
            q.put_nowait(rec)

    def start(self) -> None:
        self.status = "running"
        self.started_at = time.time()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        code = await run_program(self.config.get("Cmd") or [], self.env, self.stdin_q, self.emit)
        self.exited(code)

    def exited(self, code: int) -> None:
        if self.status not in ("running", "paused"):
            return
        self.status = "exited"
        self.exit_code = code
        self.finished_at = time.time()
        for q in self.listeners:
            q.put_nowait(None)
        self.d.events.emit("container", "die", self.id, {"image": self.config.get("Image", ""), "name": self.name,
                                                           "exitCode": str(code)})
        for f in self.exit_waiters:
            if not f.done():
                f.set_result(WaitResult(code))
        self.exit_waiters.clear()
        if self.host_config.get("AutoRemove"):
            self.d.remove_container(self)

    def kill(self, sig: int) -> None:
        if self.task is not None:
            self.task.cancel()
        self.exited(128 + sig)

    def inspect(self) -> JSON:
        running = self.status in ("running", "paused")
        return {
            "Id": self.id, "Created": _now_iso(self.created), "Path": (self.config.get("Cmd") or [""])[0],
            "Args": (self.config.get("Cmd") or [])[1:],
            "State": {"Status": self.status, "Running": running, "Paused": self.status == "paused",
                      "Restarting": False, "OOMKilled": False, "Dead": False, "Pid": 4242 if running else 0,
                      "ExitCode": self.exit_code, "Error": "", "StartedAt": _now_iso(self.started_at),
                      "FinishedAt": _now_iso(self.finished_at)},
            "Image": IMAGE_ID, "Name": "/" + self.name, "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
            "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
            "HostConfig": {"NetworkMode": "bridge", "AutoRemove": False, "PortBindings": {}, "Binds": None,
                           "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, **self.host_config,
                           "LogConfig": {"Type": "json-file", "Config": {}}},
            "Config": {"Hostname": self.id[:12], "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": [],
                       "Cmd": None, "Entrypoint": None, "Labels": {}, "WorkingDir": "", "User": "", **self.config},
            "NetworkSettings": {"Ports": {}, "Networks": {"bridge": {"IPAddress": "172.17.0.2",
                                                                     "Gateway": "172.17.0.1", "Aliases": None,
                                                                     "NetworkID": "n" * 64,
                                                                     "MacAddress": "02:42:ac:11:00:02"}}},
            "Mounts": [],
        }

    def summary(self) -> JSON:
        if self.status == "running":
            status = "Up 1 second"
        elif self.status == "exited":
            status = f"Exited ({self.exit_code}) 1 second ago"
        else:
            status = "Created"
        return {"Id": self.id, "Names": ["/" + self.name], "Image": self.config.get("Image", ""),
                "ImageID": IMAGE_ID, "Command": " ".join(self.config.get("Cmd") or []), "Created": int(self.created),
                "Ports": [], "Labels": self.config.get("Labels") or {}, "State": self.status, "Status": status,
                "HostConfig": {"NetworkMode": "bridge"}, "NetworkSettings": {"Networks": {}}, "Mounts": []}


async def run_program(cmd: list[str], env: dict[str, str], stdin_q: asyncio.Queue[bytes | None],
                      emit: Any) -> int:
    code = int(env.get("EXIT_CODE", "0"))
    prog, args = (cmd[0], cmd[1:]) if cmd else ("true", [])
    if prog == "later":
        await asyncio.sleep(0.2)
        prog = "echo"
    if prog == "echo":
        emit(1, (" ".join(args) + "\n").encode())
    elif prog == "fail":
        emit(2, (" ".join(args) + "\n").encode())
    elif prog == "cat":
        while (data := await stdin_q.get()) is not None:
            emit(1, data)
    elif prog == "sleep":
        await asyncio.sleep(float(args[0]) if args else 3600)
    elif prog == "explode":
        emit(1, b"before\n")
        emit(1, EXPLODE)
        await asyncio.sleep(3600)
    return code


class FakeSession:
    """An attach or exec session over a container's (or exec's) live output."""

    def __init__(self, *, tty: bool, stdin: bool, stdin_once: bool, records: list[LogRecord],
                 listeners: set[asyncio.Queue[LogRecord | None]], stdin_q: asyncio.Queue[bytes | None],
                 logs: bool, stream: bool, streams: tuple[int, ...], ended: bool) -> None:
        self.tty = tty
        self.stdin = stdin
        self.stdin_once = stdin_once
        self.log: list[str] = []
        self._queue: asyncio.Queue[LogRecord | None] = asyncio.Queue()
        self._listeners = listeners
        self._replay = list(records) if logs else []
        self._stream = stream
        self._streams = streams
        self._stdin_q = stdin_q
        if stream and not ended:
            listeners.add(self._queue)
        else:
            self._stream = False

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            for rec in self._replay:
                if rec.stream in self._streams:
                    yield rec.stream, rec.data
            while self._stream:
                rec = await self._queue.get()
                if rec is None:
                    break
                if rec.data == EXPLODE:
                    raise InvalidArgument("output failed: exploded")
                if rec.stream in self._streams:
                    yield rec.stream, rec.data
            self.log.append("output-end")
        finally:
            self._listeners.discard(self._queue)

    async def write_stdin(self, data: bytes) -> None:
        self.log.append(f"stdin:{data.decode(errors='replace')}")
        await self._stdin_q.put(data)

    async def close_stdin(self) -> None:
        self.log.append("close_stdin")
        await self._stdin_q.put(None)

    async def detach(self) -> None:
        self.log.append("detach")
        self._listeners.discard(self._queue)


class FakeExec:
    def __init__(self, container: FakeContainer, config: JSON) -> None:
        self.id = secrets.token_hex(32)
        self.container = container
        self.config = config
        self.running = False
        self.exit_code: int | None = None
        self.records: list[LogRecord] = []
        self.listeners: set[asyncio.Queue[LogRecord | None]] = set()
        self.stdin_q: asyncio.Queue[bytes | None] = asyncio.Queue()

    def emit(self, stream: int, data: bytes) -> None:
        rec = LogRecord(stream, data, time.time_ns())
        self.records.append(rec)
        for q in self.listeners:
            q.put_nowait(rec)

    async def run(self) -> None:
        env = {**self.container.env, **dict(e.split("=", 1) for e in self.config.get("Env") or [] if "=" in e)}
        code = await run_program(self.config.get("Cmd") or [], env, self.stdin_q, self.emit)
        self.exit_code = code  # recorded before the output ends: the CLI inspects right after
        self.running = False
        for q in self.listeners:
            q.put_nowait(None)


class FakeDaemon:
    """All backends at once; `backends()` gives berth.api's Backends."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.execs: dict[str, FakeExec] = {}
        self.events = Events()
        self.calls: list[str] = []
        self.networks: dict[str, JSON] = {"bridge": {"Name": "bridge", "Id": "n" * 64, "Driver": "bridge",
                                                     "Scope": "local", "Labels": {}}}
        self.volumes: dict[str, JSON] = {}
        self.tags: dict[str, str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def backends(self) -> Backends:
        return Backends(system=SystemFake(self), containers=ContainersFake(self), exec=ExecFake(self),
                        images=ImagesFake(self), build=BuildFake(self), networks=NetworksFake(self),
                        volumes=VolumesFake(self))

    def get(self, ref: str) -> FakeContainer:
        ref = ref.lstrip("/")
        for c in self.containers.values():
            if c.name == ref or c.id == ref:
                return c
        matches = [c for c in self.containers.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"No such container: {ref}")

    def remove_container(self, c: FakeContainer) -> None:
        if c.removed:
            return
        c.removed = True
        self.containers.pop(c.id, None)
        self.events.emit("container", "destroy", c.id, {"image": c.config.get("Image", ""), "name": c.name})
        for f in c.remove_waiters + c.exit_waiters:
            if not f.done():
                f.set_result(WaitResult(c.exit_code))


class ContainersFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    async def create(self, config: JSON, *, name: str | None, platform: str | None,
                     default_ro_non_recursive: bool = False) -> JSON:
        self.d.calls.append("create")
        image = config.get("Image", "")
        if image not in KNOWN_IMAGES and image not in self.d.tags:
            raise NotFound(f"No such image: {image if ':' in image else image + ':latest'}")
        cid = secrets.token_hex(32)
        name = name or "fake_" + cid[:6]
        for c in self.d.containers.values():
            if c.name == name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container "{c.id}". '
                               "You have to remove (or rename) that container to be able to reuse that name.")
        c = FakeContainer(self.d, cid, name, config)
        self.d.containers[cid] = c
        self.d.events.emit("container", "create", cid, {"image": image, "name": name})
        return {"Id": cid, "Warnings": []}

    async def inspect(self, ref: str, *, size: bool) -> JSON:
        return self.d.get(ref).inspect()

    async def list(self, *, all: bool, limit: int | None, size: bool, filters: dict[str, list[str]]) -> list[JSON]:
        out = []
        for c in sorted(self.d.containers.values(), key=lambda c: -c.created):
            if not all and c.status != "running":
                continue
            labels = c.config.get("Labels") or {}
            ok = True
            for want in filters.get("label", []):
                k, _, v = want.partition("=")
                if k not in labels or (v and labels[k] != v):
                    ok = False
            if filters.get("status") and c.status not in filters["status"]:
                ok = False
            if filters.get("name") and not any(n in c.name for n in filters["name"]):
                ok = False
            if filters.get("id") and not any(c.id.startswith(i) for i in filters["id"]):
                ok = False
            if ok:
                out.append(c.summary())
        return out[:limit] if limit else out

    async def start(self, ref: str) -> None:
        self.d.calls.append("start")
        c = self.d.get(ref)
        if c.status == "running":
            raise NotModified()
        c.start()
        self.d.events.emit("container", "start", c.id, {"image": c.config.get("Image", ""), "name": c.name})

    async def stop(self, ref: str, *, timeout: int | None, signal: int | None) -> None:
        c = self.d.get(ref)
        if c.status != "running":
            raise NotModified()
        c.kill(signal or 15)

    async def restart(self, ref: str, *, timeout: int | None, signal: int | None) -> None:
        c = self.d.get(ref)
        if c.status == "running":
            c.kill(signal or 15)
        c.start()

    async def kill(self, ref: str, *, signal: int) -> None:
        self.d.calls.append(f"kill:{signal}")
        c = self.d.get(ref)
        if c.status != "running":
            raise Conflict(f"container {c.id} is not running")
        c.kill(signal)

    async def pause(self, ref: str) -> None:
        c = self.d.get(ref)
        if c.status == "paused":
            raise Conflict(f"Container {c.id} is already paused")
        c.status = "paused"

    async def unpause(self, ref: str) -> None:
        c = self.d.get(ref)
        if c.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        c.status = "running"

    async def wait(self, ref: str, *, condition: str) -> Awaitable[WaitResult]:
        self.d.calls.append(f"wait:{condition}")
        c = self.d.get(ref)
        fut: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
        if condition == "not-running" and c.status not in ("running", "paused"):
            fut.set_result(WaitResult(c.exit_code))
        elif condition == "removed":
            c.remove_waiters.append(fut)
        else:
            c.exit_waiters.append(fut)
        return fut

    async def remove(self, ref: str, *, force: bool, volumes: bool, link: bool) -> None:
        c = self.d.get(ref)
        if c.status == "running":
            if not force:
                raise Conflict(f'cannot remove container "/{c.name}": container is running: stop the container '
                               "before removing or force remove")
            c.kill(9)
        self.d.remove_container(c)

    async def rename(self, ref: str, *, name: str) -> None:
        self.d.get(ref).name = name

    async def update(self, ref: str, *, config: JSON) -> JSON:
        self.d.get(ref)
        return {"Warnings": []}

    async def top(self, ref: str, *, ps_args: str | None) -> JSON:
        c = self.d.get(ref)
        return {"Titles": ["PID", "CMD"], "Processes": [["4242", " ".join(c.config.get("Cmd") or [])]]}

    async def logs(self, ref: str, options: LogsOptions) -> LogStream:
        c = self.d.get(ref)
        streams = tuple(s for s, on in ((1, options.stdout), (2, options.stderr)) if on)
        q: asyncio.Queue[LogRecord | None] = asyncio.Queue()
        follow = options.follow and c.status == "running"
        if follow:
            c.listeners.add(q)

        async def records() -> AsyncIterator[LogRecord]:
            try:
                past = [r for r in c.records if r.stream in streams]
                if options.tail is not None:
                    past = past[-options.tail:] if options.tail else []
                for r in past:
                    yield r
                while follow:
                    r2 = await q.get()
                    if r2 is None:
                        break
                    if r2.stream in streams:
                        yield r2
            finally:
                c.listeners.discard(q)

        return LogStream(c.tty, records())

    async def attach(self, ref: str, options: AttachOptions) -> FakeSession:
        self.d.calls.append("attach")
        c = self.d.get(ref)
        streams = tuple(s for s, on in ((1, options.stdout), (2, options.stderr)) if on)
        s = FakeSession(tty=c.tty, stdin=options.stdin and bool(c.config.get("OpenStdin")),
                        stdin_once=bool(c.config.get("StdinOnce")), records=c.records, listeners=c.listeners,
                        stdin_q=c.stdin_q, logs=options.logs, stream=options.stream, streams=streams,
                        ended=c.status == "exited")
        c.sessions.append(s)
        return s

    async def resize(self, ref: str, *, height: int, width: int) -> None:
        self.d.calls.append(f"resize:{height}x{width}")
        self.d.get(ref)

    async def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[JSON]:
        c = self.d.get(ref)
        for i in range(3 if stream else 1):
            yield {"read": _now_iso(time.time()), "name": "/" + c.name, "id": c.id, "num_procs": 0,
                   "cpu_stats": {"cpu_usage": {"total_usage": 200 + i}, "system_cpu_usage": 2000 + 10 * i,
                                 "online_cpus": 2},
                   "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000, "online_cpus": 2},
                   "memory_stats": {"usage": 1 << 20, "limit": 1 << 30, "stats": {}},
                   "blkio_stats": {}, "pids_stats": {"current": 1}, "networks": {}}
            if stream:
                await asyncio.sleep(0.05)

    async def changes(self, ref: str) -> list[JSON]:
        self.d.get(ref)
        return [{"Path": "/tmp", "Kind": 0}]

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        self.d.get(ref)
        yield b"tar-bytes"

    async def archive_stat(self, ref: str, *, path: str) -> JSON:
        self.d.get(ref)
        if path != "/etc/hostname":
            raise NotFound(f"Could not find the file {path} in container {ref}")
        return {"name": "hostname", "size": 13, "mode": 0o644, "mtime": "2024-01-01T00:00:00Z", "linkTarget": ""}

    async def archive_get(self, ref: str, *, path: str) -> tuple[JSON, AsyncIterator[bytes]]:
        import io
        import tarfile

        stat = await self.archive_stat(ref, path=path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"fakehostname\n"
            info = tarfile.TarInfo("hostname")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        async def gen() -> AsyncIterator[bytes]:
            yield buf.getvalue()

        return stat, gen()

    async def archive_put(self, ref: str, *, path: str, data: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
                          copy_uid_gid: bool) -> None:
        c = self.d.get(ref)
        size = 0
        async for chunk in data:
            size += len(chunk)
        self.d.calls.append(f"archive_put:{c.name}:{path}:{size}")

    async def prune(self, *, filters: dict[str, list[str]]) -> JSON:
        gone = [c.id for c in list(self.d.containers.values()) if c.status == "exited"]
        for cid in gone:
            self.d.remove_container(self.d.containers[cid])
        return {"ContainersDeleted": gone, "SpaceReclaimed": 0}

    async def commit(self, ref: str, **kw: Any) -> JSON:
        self.d.get(ref)
        return {"Id": IMAGE_ID}


class ExecFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    async def create(self, container_ref: str, *, config: JSON) -> str:
        c = self.d.get(container_ref)
        if c.status != "running":
            raise Conflict(f"container {c.id} is not running")
        e = FakeExec(c, config)
        self.d.execs[e.id] = e
        return e.id

    def _get(self, exec_id: str) -> FakeExec:
        e = self.d.execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    async def start(self, exec_id: str, *, detach: bool, tty: bool,
                    console_size: tuple[int, int] | None) -> FakeSession | None:
        e = self._get(exec_id)
        if e.running or e.exit_code is not None:
            raise Conflict(f"Error: Exec command {exec_id} is already running")
        e.running = True
        session = None
        if not detach:
            streams = tuple(s for s, on in ((1, e.config.get("AttachStdout")), (2, e.config.get("AttachStderr")))
                            if on)
            session = FakeSession(tty=tty, stdin=bool(e.config.get("AttachStdin")), stdin_once=True, records=[],
                                  listeners=e.listeners, stdin_q=e.stdin_q, logs=False, stream=True,
                                  streams=streams, ended=False)
        asyncio.get_running_loop().create_task(e.run())
        return session

    async def resize(self, exec_id: str, *, height: int, width: int) -> None:
        self._get(exec_id)

    async def inspect(self, exec_id: str) -> JSON:
        e = self._get(exec_id)
        return {"ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "ContainerID": e.container.id,
                "OpenStdin": bool(e.config.get("AttachStdin")), "OpenStdout": bool(e.config.get("AttachStdout")),
                "OpenStderr": bool(e.config.get("AttachStderr")), "CanRemove": False, "DetachKeys": "",
                "ProcessConfig": {"tty": bool(e.config.get("Tty")), "entrypoint": (e.config.get("Cmd") or [""])[0],
                                  "arguments": (e.config.get("Cmd") or [])[1:], "privileged": False},
                "Pid": 4343}


class ImagesFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    def _image(self) -> JSON:
        return {"Id": IMAGE_ID, "RepoTags": ["busybox:latest", *self.d.tags], "RepoDigests": [], "Parent": "",
                "Comment": "", "Created": "2024-01-01T00:00:00Z", "Config": {"Cmd": ["sh"], "Env": [], "Labels": None},
                "Architecture": "amd64", "Os": "linux", "Size": 4_000_000,
                "RootFS": {"Type": "layers", "Layers": ["sha256:" + "cd" * 32]}, "Metadata": {}}

    async def list(self, *, all: bool, filters: dict[str, list[str]], digests: bool, shared_size: bool) -> list[JSON]:
        return [{"Id": IMAGE_ID, "ParentId": "", "RepoTags": ["busybox:latest", *self.d.tags], "RepoDigests": [],
                 "Created": 1704067200, "Size": 4_000_000, "SharedSize": -1, "Labels": None, "Containers": -1}]

    async def inspect(self, ref: str) -> JSON:
        short = len(ref) >= 12 and IMAGE_ID[7:].startswith(ref.removeprefix("sha256:"))
        if ref not in KNOWN_IMAGES and ref not in self.d.tags and not short:
            raise NotFound(f"No such image: {ref}")
        return self._image()

    async def history(self, ref: str) -> list[JSON]:
        await self.inspect(ref)
        return [{"Id": IMAGE_ID, "Created": 1704067200, "CreatedBy": "/bin/sh", "Tags": None, "Size": 4_000_000,
                 "Comment": ""}]

    async def remove(self, ref: str, *, force: bool, noprune: bool) -> list[JSON]:
        if ref in self.d.tags:
            del self.d.tags[ref]
            return [{"Untagged": ref}]
        await self.inspect(ref)
        return [{"Untagged": "busybox:latest"}, {"Deleted": IMAGE_ID}]

    async def tag(self, ref: str, *, repo: str, tag: str | None) -> None:
        await self.inspect(ref)
        self.d.tags[f"{repo}:{tag or 'latest'}"] = IMAGE_ID

    async def pull(self, *, image: str, tag: str | None, platform: str | None,
                   auth: JSON | None) -> AsyncIterator[JSON]:
        name = image.rsplit("/", 1)[-1]
        if "nosuch" in name:
            raise NotFound(f"pull access denied for {name}, repository does not exist or may require "
                           "'docker login': denied: requested access to the resource is denied")
        t = tag or "latest"
        yield js.status(f"Pulling from library/{name}", id=t)
        yield js.status("Pulling fs layer", id="cdcdcdcdcdcd", progressDetail={})
        yield js.progress("Downloading", "cdcdcdcdcdcd", 1000, 2000)
        yield js.status("Pull complete", id="cdcdcdcdcdcd", progressDetail={})
        if "broken" in name:
            raise InvalidArgument("failed to register layer: broken layer")
        yield js.status("Digest: sha256:" + "ef" * 32)
        yield js.status(f"Status: Downloaded newer image for {name}:{t}")

    async def import_image(self, **kw: Any) -> AsyncIterator[JSON]:
        yield js.status(IMAGE_ID)

    async def push(self, ref: str, *, tag: str | None, auth: JSON | None) -> AsyncIterator[JSON]:
        if ref not in self.d.tags and f"{ref}:{tag or 'latest'}" not in self.d.tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref}")
        yield js.status(f"The push refers to repository [{ref}]")
        yield js.status("Pushed", id="cdcdcdcdcdcd", progressDetail={})
        yield js.status(f"{tag or 'latest'}: digest: sha256:{'ef' * 32} size: 527")
        yield {"progressDetail": {}, "aux": {"Tag": tag or "latest", "Digest": "sha256:" + "ef" * 32, "Size": 527}}

    async def save(self, refs: list[str]) -> AsyncIterator[bytes]:
        for r in refs:
            await self.inspect(r)
        yield b"saved:" + ",".join(refs).encode()

    async def load(self, data: AsyncIterator[bytes], *, quiet: bool) -> AsyncIterator[JSON]:
        body = b""
        async for chunk in data:
            body += chunk
        if not body.startswith(b"tar"):
            raise InvalidArgument("archive/tar: invalid tar header")
        yield js.stream("Loaded image: busybox:latest\n")

    async def prune(self, *, filters: dict[str, list[str]]) -> JSON:
        return {"ImagesDeleted": None, "SpaceReclaimed": 0}

    async def search(self, term: str, *, limit: int | None, filters: dict[str, list[str]]) -> list[JSON]:
        return []

    async def distribution(self, ref: str, *, auth: JSON | None) -> JSON:
        raise NotFound(f"No such image: {ref}")


class NetworksFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    def _get(self, ref: str) -> JSON:
        for n in self.d.networks.values():
            if ref in (n["Name"], n["Id"]) or n["Id"].startswith(ref):
                return n
        raise NotFound(f"network {ref} not found")

    async def list(self, *, filters: dict[str, list[str]]) -> list[JSON]:
        return list(self.d.networks.values())

    async def inspect(self, ref: str, *, verbose: bool, scope: str | None) -> JSON:
        return self._get(ref)

    async def create(self, config: JSON) -> JSON:
        name = config["Name"]
        if name in self.d.networks:
            raise Conflict(f"network with name {name} already exists")
        nid = secrets.token_hex(32)
        self.d.networks[name] = {"Name": name, "Id": nid, "Driver": config.get("Driver") or "bridge",
                                 "Scope": "local", "Labels": config.get("Labels") or {}}
        return {"Id": nid, "Warning": ""}

    async def remove(self, ref: str) -> None:
        self.d.networks.pop(self._get(ref)["Name"])

    async def connect(self, ref: str, *, container: str, endpoint_config: JSON | None) -> None:
        self._get(ref)
        self.d.get(container)

    async def disconnect(self, ref: str, *, container: str, force: bool) -> None:
        self._get(ref)
        self.d.get(container)

    async def prune(self, *, filters: dict[str, list[str]]) -> JSON:
        return {"NetworksDeleted": None}


class VolumesFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    async def list(self, *, filters: dict[str, list[str]]) -> JSON:
        return {"Volumes": list(self.d.volumes.values()), "Warnings": []}

    async def create(self, config: JSON) -> JSON:
        name = config.get("Name") or secrets.token_hex(32)
        v = {"Name": name, "Driver": config.get("Driver") or "local", "Mountpoint": f"/var/lib/berth/volumes/{name}",
             "Labels": config.get("Labels") or {}, "Scope": "local", "Options": config.get("DriverOpts") or {},
             "CreatedAt": "2024-01-01T00:00:00Z"}
        self.d.volumes[name] = v
        return v

    async def inspect(self, name: str) -> JSON:
        v = self.d.volumes.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    async def remove(self, name: str, *, force: bool) -> None:
        if self.d.volumes.pop(name, None) is None and not force:
            raise NotFound(f"remove {name}: no such volume")

    async def prune(self, *, filters: dict[str, list[str]], all: bool) -> JSON:
        return {"VolumesDeleted": None, "SpaceReclaimed": 0}


class SystemFake:
    def __init__(self, d: FakeDaemon) -> None:
        self.d = d

    async def info(self) -> JSON:
        cs = list(self.d.containers.values())
        return {"ID": "FAKE:DAEMON", "Containers": len(cs),
                "ContainersRunning": sum(c.status == "running" for c in cs),
                "ContainersPaused": sum(c.status == "paused" for c in cs),
                "ContainersStopped": sum(c.status in ("exited", "created") for c in cs), "Images": 1}

    async def df(self, *, types: list[str] | None) -> JSON:
        return {"LayersSize": 4_000_000, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}

    async def events(self, *, since: float | None, until: float | None,
                     filters: dict[str, list[str]]) -> AsyncIterator[JSON]:
        q: asyncio.Queue[JSON] = asyncio.Queue()
        live = until is None or until > time.time()
        if live:
            self.d.events.listeners.add(q)

        def wanted(ev: JSON) -> bool:
            t = ev["time"]
            if since is not None and t < int(since):
                return False
            if until is not None and t > until:
                return False
            if filters.get("type") and ev["Type"] not in filters["type"]:
                return False
            if filters.get("event") and ev["Action"] not in filters["event"]:
                return False
            return not filters.get("container") or any(
                ev["Actor"]["ID"].startswith(x) or ev["Actor"]["Attributes"].get("name") == x
                for x in filters["container"])

        try:
            if since is not None:
                for ev in list(self.d.events.past):
                    if wanted(ev):
                        yield ev
            while live:
                timeout = None if until is None else max(0.0, until - time.time())
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    return
                if wanted(ev):
                    yield ev
        finally:
            self.d.events.listeners.discard(q)

    async def auth(self, config: JSON) -> JSON:
        if config.get("username") == "bob" and config.get("password") == "secret":
            return {"Status": "Login Succeeded", "IdentityToken": ""}
        raise Unauthorized("Get \"https://localhost:5000/v2/\": unauthorized: incorrect username or password")

    async def version_components(self) -> list[JSON]:
        return [{"Name": "berth-runtime", "Version": "0.1.0", "Details": {"GitCommit": "fake"}}]


class BuildFake:
    """Reads the whole tar context, checks the Dockerfile is in it, and speaks the legacy builder."""

    def __init__(self, d: FakeDaemon) -> None:
        self.d = d
        self.last_options: JSON = {}
        self.last_files: list[str] = []

    async def build(self, context: AsyncIterator[bytes], *, options: JSON, auth_configs: JSON) -> AsyncIterator[JSON]:
        import io
        import tarfile

        data = b"".join([c async for c in context])
        self.last_options = options
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            self.last_files = sorted(t.getnames())
            member = t.extractfile(options["dockerfile"]) if options["dockerfile"] in self.last_files else None
            if member is None:
                raise InvalidArgument("Cannot locate specified Dockerfile: " + options["dockerfile"])
            steps = [ln for ln in member.read().decode().splitlines() if ln.strip() and not ln.startswith("#")]
        short = IMAGE_ID[7:19]
        if options.get("q"):
            yield js.stream(IMAGE_ID + "\n")
            return
        for i, step in enumerate(steps, 1):
            yield js.stream(f"Step {i}/{len(steps)} : {step}")
            yield js.stream("\n")
            if step.upper().startswith("RUN FAIL"):
                raise InvalidArgument("The command '/bin/sh -c fail' returned a non-zero code: 1")
            yield js.stream(f" ---> {short}\n")
        yield js.aux({"ID": IMAGE_ID})
        yield js.stream(f"Successfully built {short}\n")
        for t2 in options["t"]:
            self.d.tags[t2 if ":" in t2 else t2 + ":latest"] = IMAGE_ID
            yield js.stream(f"Successfully tagged {t2 if ':' in t2 else t2 + ':latest'}\n")

    async def prune(self, *, filters: dict[str, list[str]], all: bool, keep_storage: int | None) -> JSON:
        return {"CachesDeleted": None, "SpaceReclaimed": 0}
