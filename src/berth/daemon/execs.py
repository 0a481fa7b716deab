"""Exec instances: `docker exec` (and health probes) as processes the container's monitor starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from typing import Any

from berth import fastjson
from berth.daemon.moncli import MonitorConnection
from berth.daemon.records import Container
from berth.daemon.sessions import ExecSession, parse_detach_keys
from berth.errors import Conflict, InvalidArgument, NotFound

JSON = dict[str, Any]


class Exec:
    def __init__(self, eid: str, container: Container, config: JSON) -> None:
        self.id = eid
        self.container = container
        self.config = config
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.conn: MonitorConnection | None = None
        self.done = asyncio.get_running_loop().create_future()

    def finished(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
        self.running = False
        if not self.done.done():
            self.done.set_result(code)

    def inspect(self) -> JSON:
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": bool(self.config.get("Tty")), "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(self.config.get("Privileged")),
                              "user": self.config.get("User") or ""},
            "OpenStdin": bool(self.config.get("AttachStdin")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "OpenStdout": bool(self.config.get("AttachStdout")),
            "CanRemove": False,
            "ContainerID": self.container.id,
            "DetachKeys": self.config.get("DetachKeys") or "",
            "Pid": self.pid,
        }


class ExecService:
    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self.execs: dict[str, Exec] = {}
        containers.exec_service = self

    def _get(self, eid: str) -> Exec:
        e = self.execs.get(eid)
        if e is None:
            matches = [x for k, x in self.execs.items() if k.startswith(eid)] if eid else []
            if len(matches) != 1:
                raise NotFound(f"No such exec instance: {eid}")
            e = matches[0]
        return e

    def _check_running(self, c: Container) -> None:
        if not c.running or c.state.get("Restarting"):
            raise Conflict(f"container {c.id} is not running")
        if c.state["Paused"]:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")

    async def create(self, container_ref: str, *, config: JSON) -> str:
        c = self.containers.get(container_ref)
        self._check_running(c)
        if not config.get("Cmd"):
            raise InvalidArgument("No exec command specified")
        if config.get("DetachKeys"):
            parse_detach_keys(config["DetachKeys"])
        eid = secrets.token_hex(32)
        self.execs[eid] = Exec(eid, c, dict(config))
        c.data["ExecIDs"] = [*(c.data.get("ExecIDs") or []), eid]
        self.containers._emit(c, "exec_create: " + " ".join(config["Cmd"]), execID=eid)
        return eid

    def _process(self, e: Exec, tty: bool) -> JSON:
        """The exec's OCI process: the container's own (caps, rlimits, no-new-privs), with the exec's
        command, environment, user and directory."""
        c = e.container
        bundle = os.path.join(self.containers._exec_dir(c), "bundle")
        with open(os.path.join(bundle, "config.json")) as f:
            spec: JSON = fastjson.loads(f.read())  # type: ignore[assignment]
        proc = dict(spec["process"])
        cfg = e.config
        proc["args"] = list(cfg["Cmd"])
        proc["terminal"] = tty
        proc.pop("consoleSize", None)
        env = list(proc.get("env") or [])
        for item in cfg.get("Env") or []:
            key = item.split("=", 1)[0]
            env = [x for x in env if x.split("=", 1)[0] != key] + [item]
        if tty and not any(x.startswith("TERM=") for x in env):
            env.append("TERM=xterm")
        proc["env"] = env
        if cfg.get("WorkingDir"):
            proc["cwd"] = cfg["WorkingDir"]
        if cfg.get("User"):
            from berth.runtime import user as usermod

            u, _extra = usermod.lookup(os.path.join(bundle, "rootfs"), cfg["User"])
            proc["user"] = {**(proc.get("user") or {}), "uid": u.uid, "gid": u.gid, "additionalGids": u.sgids}
            env = [x for x in proc["env"] if not x.startswith("HOME=")] + [f"HOME={u.home}"]
            proc["env"] = env
        if cfg.get("Privileged"):
            from berth.runtime import caps

            allcaps = caps.host_bounding()
            proc["capabilities"] = {s: list(allcaps) for s in ("bounding", "effective", "permitted")}
        return proc

    async def start(self, exec_id: str, *, detach: bool, tty: bool,
                    console_size: tuple[int, int] | None) -> ExecSession | None:
        e = self._get(exec_id)
        if e.running:
            raise Conflict(f"Error: Exec command {e.id} is already running")
        if e.exit_code is not None:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = e.container
        self._check_running(c)
        tty = tty or bool(e.config.get("Tty"))
        process = await asyncio.to_thread(self._process, e, tty)
        stdin = bool(e.config.get("AttachStdin")) and not detach
        conn = await MonitorConnection.connect(os.path.join(self.containers._exec_dir(c), "monitor.sock"))
        e.conn = conn
        size = console_size or (tuple(e.config["ConsoleSize"]) if e.config.get("ConsoleSize") else None)
        keys = parse_detach_keys(e.config.get("DetachKeys"))
        session = None if detach else ExecSession(tty=tty, stdin=stdin, conn=conn, on_exit=e.finished,
                                                  detach_keys=keys)
        if detach:
            conn.on_control = lambda msg: e.finished(int(msg["code"])) if msg.get("type") == "exit" else None
        conn.closed.add_done_callback(lambda _f: e.finished(137 if not c.running else -1))
        reply = await conn.request({"op": "exec", "process": process, "stdin": stdin,
                                    "console_size": list(size) if size else None})
        if reply.get("type") != "started":
            message = str(reply.get("message", "unknown error"))
            from berth.daemon.containers import _start_error_code

            e.finished(_start_error_code(message))
            conn.close()
            text = f"OCI runtime exec failed: {message}: unknown\r\n"
            if session is None:
                raise InvalidArgument(text.strip())
            return _FailedSession(tty, text.encode())  # type: ignore[return-value]
        e.pid = int(reply["pid"])
        e.running = True
        self.containers._emit(c, "exec_start: " + " ".join(e.config["Cmd"]), execID=e.id)
        return session

    async def resize(self, exec_id: str, *, height: int, width: int) -> None:
        e = self._get(exec_id)
        if e.conn is None or not e.running:
            raise Conflict(f"Exec {e.id} is not running")
        e.conn.send({"op": "resize", "height": height, "width": width})

    async def inspect(self, exec_id: str) -> JSON:
        return self._get(exec_id).inspect()

    # -- hooks from the container service ----------------------------------------------------------
    def container_started(self, c: Container) -> None:
        pass

    def container_stopped(self, c: Container) -> None:
        for e in list(self.execs.values()):
            if e.container is c:
                if e.running:
                    e.finished(137)
                del self.execs[e.id]
        c.data["ExecIDs"] = None

    async def run_probe(self, c: Container, cmd: list[str], timeout: float) -> tuple[int, bytes]:
        """A health probe: run `cmd` in the container and collect its output. The health monitor
        cancels us at its timeout: the probe is killed then."""
        eid = await self.create(c.id, config={"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
        e = self.execs[eid]
        out = bytearray()
        try:
            session = await self.start(eid, detach=False, tty=False, console_size=None)
            assert session is not None
            async for _stream, data in session.output():
                if len(out) < 8192:
                    out.extend(data)
            return (e.exit_code if e.exit_code is not None else -1), bytes(out)
        except asyncio.CancelledError:
            if e.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(e.pid, 9)
            raise
        finally:
            self.execs.pop(eid, None)


class _FailedSession:
    """An exec that could not start: its error is what the client reads, as moby writes it."""

    stdin = False
    stdin_once = True

    def __init__(self, tty: bool, text: bytes) -> None:
        self.tty = tty
        self._text = text

    async def output(self) -> Any:
        yield (1, self._text)

    async def write_stdin(self, data: bytes) -> None:
        pass

    async def close_stdin(self) -> None:
        pass

    async def detach(self) -> None:
        pass
