"""The container service: berthd's implementation of the Engine API's ContainersBackend.

A container is a record (records.py) plus, while it runs, a monitor process (monitor.py) that
owns its stdio, log and exit. This service turns API calls into record changes, monitor
requests and runtime-library calls (kill, pause, update go straight to the runtime: they do not
fork), and emits events. Per-container operations are serialized by the container's lock;
nothing here blocks the event loop: file-system and kernel work runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal as signalmod
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from berth import fastjson
from berth.api.backends import AttachOptions, LogRecord, LogsOptions, LogStream, WaitResult
from berth.daemon import names
from berth.daemon.events import EventBus
from berth.daemon.moncli import MonitorConnection
from berth.daemon.records import ZERO_TIME, Container, ContainerStore, new_state, now_iso
from berth.daemon.runtimes import BUILTIN, Runtimes
from berth.daemon.sessions import AttachSession, parse_detach_keys
from berth.daemon.zygote import Zygote
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, NotModified

JSON = dict[str, Any]
StrList = list[str]
JSONList = list[JSON]  # `list` is shadowed inside ContainerService (its method)
DEFAULT_STOP_TIMEOUT = 10

HOSTS_LOCAL = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
               "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def _start_error_code(message: str) -> int:
    """moby's translation of a start failure into State.ExitCode (the CLI does the same for its own)."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


class DaemonPaths:
    def __init__(self, data_root: str, exec_root: str) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.containers = os.path.join(data_root, "containers")
        self.runtime_root = os.path.join(exec_root, "runtime")


class ContainerService:
    def __init__(self, *, paths: DaemonPaths, images: Any, zygote: Zygote, events: EventBus, options: Any,
                 spec_module: Any, live_restore: bool = True, runtimes: Runtimes | None = None) -> None:
        self.paths = paths
        self.images = images  # berth.image.service.ImageService
        self.zygote = zygote
        self.events = events
        self.options = options
        self.spec = spec_module
        self.live_restore = live_restore
        self.runtimes = runtimes or Runtimes({BUILTIN: "berth-runtime"}, BUILTIN, paths.exec_root)
        self.store = ContainerStore(paths.containers)
        self.exec_service: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        os.makedirs(paths.exec_root, 0o711, exist_ok=True)
        os.makedirs(paths.runtime_root, 0o711, exist_ok=True)

    # ------------------------------------------------------------------------------------------------
    # helpers

    def _background(self, coro: Any) -> None:
        """Run a coroutine on its own, keeping a reference until it finishes."""
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {**(c.config.get("Labels") or {}), "image": c.data.get("ImageName") or c.config.get("Image", ""),
                 "name": c.name, **extra}
        self.events.emit("container", action, c.id, attrs)

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def _exec_dir(self, c: Container) -> str:
        return os.path.join(self.paths.exec_root, c.id)

    def namespace_path(self, ref: str, kind: str) -> str:
        """`--network/--ipc/--pid container:<ref>`: the namespace of that running container."""
        c = self.get(ref)
        if not c.running or c.state.get("Restarting"):
            raise Conflict(f"cannot join the {kind} namespace of a non running container: {c.id} is not running")
        return f"/proc/{c.state['Pid']}/ns/{kind}"

    def running(self, cid: str) -> bool:
        c = self.store.by_id.get(cid)
        return bool(c and c.running)

    # ------------------------------------------------------------------------------------------------
    # create

    async def create(self, config: JSON, *, name: str | None, platform: str | None,
                     default_ro_non_recursive: bool = False) -> JSON:
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise InvalidArgument("config cannot be empty in order to create a container")
        try:
            image = await asyncio.to_thread(self.images.resolve, image_ref)
        except NotFound:
            raise NotFound(f"No such image: {_display_ref(image_ref)}") from None
        if name:
            name = names.validate(name)
            if name in self.store.by_name:
                other = self.store.by_name[name]
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                               "You have to remove (or rename) that container to be able to reuse that name.")
        else:
            name = names.generate(set(self.store.by_name))
        cid = secrets.token_hex(32)
        image_config = image.config.doc.get("config") or {}
        cfg, hc, warnings = self.spec.normalize(config, image_config, name=name, cid=cid, daemon=self.options)
        hc["Runtime"] = self.runtimes.validate(hc.get("Runtime"))
        _log_opts(hc)  # bad --log-opt values fail the create, not the start
        path = os.path.join(self.paths.containers, cid)
        os.makedirs(path, 0o710)
        cmd = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
        data: JSON = {
            "Id": cid,
            "Created": now_iso(),
            "Path": cmd[0] if cmd else "",
            "Args": cmd[1:],
            "State": new_state(),
            "Image": image.id,
            "ImageName": image_ref,
            "ResolvConfPath": os.path.join(path, "resolv.conf"),
            "HostnamePath": os.path.join(path, "hostname"),
            "HostsPath": os.path.join(path, "hosts"),
            "LogPath": os.path.join(path, f"{cid}-json.log"),
            "Name": "/" + name,
            "RestartCount": 0,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": hc,
            "GraphDriver": {"Name": "overlay2", "Data": None},
            "Mounts": self.spec.mount_points(hc),
            "Config": cfg,
            "NetworkSettings": {"Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "Networks": {}},
        }
        if default_ro_non_recursive:
            data["DefaultReadOnlyNonRecursive"] = True  # berth's own record, not shown by inspect
        c = Container(data, path)
        try:
            await asyncio.to_thread(self.images.prepare_rootfs, cid, image.id)
            c.save()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.images.remove_rootfs, cid)
            shutil.rmtree(path, ignore_errors=True)
            raise
        self.store.add(c)
        self._emit(c, "create")
        return {"Id": cid, "Warnings": warnings}

    # ------------------------------------------------------------------------------------------------
    # start and the monitor

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with c.lock:
            await self._start_locked(c)

    async def _start_locked(self, c: Container) -> None:
        if c.running:
            if c.state["Paused"]:
                raise Conflict("cannot start a paused container, try unpause instead")
            raise NotModified()
        if c.state.get("Dead") or c.stopping:
            raise Conflict(f"container {c.id} is marked for removal and cannot be started")
        exec_dir = self._exec_dir(c)
        try:
            await asyncio.to_thread(self._prepare_bundle, c, exec_dir)
        except BerthError:
            raise
        except Exception as e:
            raise BerthError(f"failed to prepare container {c.id}: {e}") from e
        request = {
            "id": c.id,
            "dir": exec_dir,
            "bundle": os.path.join(exec_dir, "bundle"),
            "runtime_root": self.paths.runtime_root,
            "log_path": c.data["LogPath"],
            "log_opts": _log_opts(c.host_config),
            "tty": c.tty,
            "open_stdin": bool(c.config.get("OpenStdin")),
            "console_size": c.host_config.get("ConsoleSize") if c.tty else None,
            "rootfs_target": os.path.join(exec_dir, "bundle", "rootfs"),
            "runtime": self.runtimes.request(c.host_config.get("Runtime") or self.runtimes.default),
        }
        try:
            await self.zygote.spawn(request)
            conn = await _connect_retry(os.path.join(exec_dir, "monitor.sock"))
        except Exception as e:
            await asyncio.to_thread(self._unmount, c)
            raise BerthError(f"failed to start the container's monitor: {e}") from e
        self._wire(c, conn)
        if c.pending_stdin:
            await conn.write_stdin(bytes(c.pending_stdin))
            c.pending_stdin.clear()
        reply = await conn.request({"op": "start"})
        if reply.get("type") != "started":
            message = str(reply.get("message", "unknown error"))
            await conn.closed
            await asyncio.to_thread(self._unmount, c)
            c.monitor = None
            st = c.state
            st.update(ExitCode=_start_error_code(message), Error=message, Running=False, Pid=0)
            if st["StartedAt"] == ZERO_TIME:
                st["Status"] = "created"
            c.save()
            c.end_output()
            raise InvalidArgument("failed to create task for container: failed to create shim task: OCI runtime "
                                  f"create failed: {message}: unknown")
        if c.stdin_closed:
            conn.send({"op": "close-stdin"})
        st = c.state
        st.update(Status="running", Running=True, Paused=False, Restarting=False, OOMKilled=False, Dead=False,
                  Pid=int(reply["pid"]), ExitCode=0, Error="", StartedAt=now_iso())
        c.data["HasBeenStartedBefore"] = True
        c.data["HasBeenManuallyStopped"] = False
        c.save()
        self._emit(c, "start")
        if self.exec_service is not None:
            self.exec_service.container_started(c)
        self._start_health(c)

    def _prepare_bundle(self, c: Container, exec_dir: str) -> None:
        os.makedirs(exec_dir, 0o711, exist_ok=True)
        for stale in ("exit.json", "monitor.sock", "monitor.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(exec_dir, stale))
        bundle = os.path.join(exec_dir, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(rootfs, 0o755, exist_ok=True)
        self._write_etc_files(c)
        mounts = self.images.rootfs_mounts(c.id)
        if not os.path.ismount(rootfs):
            from berth.store.mount import mount

            mount(mounts, rootfs)
        try:
            view = self.spec.ContainerView(
                id=c.id, name=c.name, config=c.config, host_config=c.host_config, image_config={},
                ro_non_recursive_default=bool(c.data.get("DefaultReadOnlyNonRecursive")),
                rro_unsupported=self.runtimes.rro_unsupported(c.host_config.get("Runtime") or self.runtimes.default))
            files = {"/etc/resolv.conf": c.data["ResolvConfPath"], "/etc/hostname": c.data["HostnamePath"],
                     "/etc/hosts": c.data["HostsPath"]}
            spec = self.spec.build(view, rootfs=rootfs, files=files, daemon=self.options)
            tmp = os.path.join(bundle, "config.json.tmp")
            with open(tmp, "w") as f:
                f.write(fastjson.dumps(spec, compact=True))
            os.replace(tmp, os.path.join(bundle, "config.json"))
        except BaseException:
            self._unmount(c)
            raise

    def _write_etc_files(self, c: Container) -> None:
        hostname = c.config.get("Hostname") or c.id[:12]
        with open(c.data["HostnamePath"], "w") as f:
            f.write(hostname + "\n")
        net = c.host_config.get("NetworkMode")
        if net == "host":
            shutil.copyfile("/etc/hosts", c.data["HostsPath"])
        else:
            with open(c.data["HostsPath"], "w") as f:
                f.write(HOSTS_LOCAL)
        try:
            shutil.copyfile("/etc/resolv.conf", c.data["ResolvConfPath"])
        except OSError:
            with open(c.data["ResolvConfPath"], "w"):
                pass

    def _unmount(self, c: Container) -> None:
        from berth.store.mount import unmount

        rootfs = os.path.join(self._exec_dir(c), "bundle", "rootfs")
        if os.path.ismount(rootfs):
            with contextlib.suppress(OSError):
                unmount(rootfs)

    def _wire(self, c: Container, conn: MonitorConnection) -> None:
        c.monitor = conn
        conn.on_output = c.publish
        conn.on_control = lambda msg: self._on_monitor_control(c, msg)
        conn.closed.add_done_callback(lambda _f: self._background(self._on_monitor_closed(c, conn)))

    def _on_monitor_control(self, c: Container, msg: JSON) -> None:
        if msg.get("type") == "exited" and c.monitor is not None:
            self._background(self._handle_exit(c, msg))

    async def _on_monitor_closed(self, c: Container, conn: MonitorConnection) -> None:
        """The monitor connection ended without an exit notice: read exit.json, or the monitor died."""
        await asyncio.sleep(0)
        if c.monitor is not conn:
            return
        result = await asyncio.to_thread(_read_exit_file, self._exec_dir(c))
        if result is None:
            if await asyncio.to_thread(_monitor_alive, self._exec_dir(c)):
                # we lost the connection but the monitor lives (e.g. it dropped a slow client): reconnect
                try:
                    conn2 = await _connect_retry(os.path.join(self._exec_dir(c), "monitor.sock"))
                except Exception:
                    conn2 = None
                if conn2 is not None:
                    self._wire(c, conn2)
                    conn2.send({"op": "hello"})
                    return
            result = await self._orphaned(c)
        await self._handle_exit(c, result)

    async def _orphaned(self, c: Container) -> JSON:
        """The monitor died without recording an exit: what is left of the container (its processes,
        its cgroup) is killed and removed, and the exit is recorded as a kill."""
        def clean() -> None:
            with contextlib.suppress(Exception):
                self._runtime_container(c).delete(force=True)

        await asyncio.to_thread(clean)
        return {"code": 137, "oom_killed": False, "error": "the container's monitor died",
                "finished_ns": time.time_ns()}

    async def _handle_exit(self, c: Container, result: JSON) -> None:
        if c.monitor is None:
            return
        c.monitor = None
        if c.health is not None:
            c.health.stop()
            c.health = None
        await asyncio.to_thread(self._unmount, c)
        code = int(result.get("code", 0))
        st = c.state
        st.update(Running=False, Paused=False, Pid=0, ExitCode=code, OOMKilled=bool(result.get("oom_killed")),
                  FinishedAt=now_iso(int(result.get("finished_ns") or time.time_ns())), Status="exited",
                  Error=str(result.get("error") or ""))
        c.end_output()
        if self.exec_service is not None:
            self.exec_service.container_stopped(c)
        if st["OOMKilled"]:
            self._emit(c, "oom")
        self._emit(c, "die", exitCode=str(code))
        restart = self._should_restart(c, code)
        c.save()
        for fut in c.exit_waiters:
            if not fut.done():
                fut.set_result((code, None))
        c.exit_waiters.clear()
        if restart:
            self._schedule_restart(c)
        elif c.host_config.get("AutoRemove"):
            self._background(self._auto_remove(c))

    async def _auto_remove(self, c: Container) -> None:
        with contextlib.suppress(NotFound, Conflict):
            await self.remove(c.id, force=False, volumes=True, link=False)

    # ------------------------------------------------------------------------------------------------
    # restart policies (moby's backoff: 100 ms doubling, reset after 10 s of uptime, at most a minute)

    def _should_restart(self, c: Container, code: int) -> bool:
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if c.stopping or c.data.get("HasBeenManuallyStopped") or c.host_config.get("AutoRemove"):
            return False
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure":
            maximum = int(policy.get("MaximumRetryCount") or 0)
            return code != 0 and (maximum == 0 or int(c.data.get("RestartCount", 0)) < maximum)
        return False

    def _schedule_restart(self, c: Container) -> None:
        started = _parse_time(c.state["StartedAt"])
        ran = time.time() - started if started else 0
        delay = float(c.data.get("_RestartDelay", 0.1))
        delay = 0.1 if ran >= 10 else min(delay * 2 if c.data.get("RestartCount") else 0.1, 60.0)
        c.data["_RestartDelay"] = delay
        c.state.update(Restarting=True, Running=True)
        c.save()

        async def later() -> None:
            await asyncio.sleep(delay)
            async with c.lock:
                if not c.state.get("Restarting") or c.id not in self.store.by_id:
                    return
                c.state.update(Restarting=False, Running=False)
                c.data["RestartCount"] = int(c.data.get("RestartCount", 0)) + 1
                try:
                    await self._start_locked(c)
                    self._emit(c, "restart")
                except BerthError as e:
                    c.state["Error"] = str(e)
                    c.save()

        c.restart_task = asyncio.ensure_future(later())
        self._tasks.add(c.restart_task)
        c.restart_task.add_done_callback(self._tasks.discard)

    def _cancel_restart(self, c: Container) -> bool:
        if c.state.get("Restarting"):
            if c.restart_task is not None:
                c.restart_task.cancel()
                c.restart_task = None
            c.state.update(Restarting=False, Running=False)
            c.save()
            return True
        return False

    # ------------------------------------------------------------------------------------------------
    # stop, kill, pause

    def _runtime_container(self, c: Container) -> Any:
        return self.runtimes.handle(c.host_config.get("Runtime") or self.runtimes.default, c.id,
                                    self.paths.runtime_root)

    async def _signal(self, c: Container, sig: int) -> None:
        def send() -> None:
            rc = self._runtime_container(c)
            rc.kill(sig)

        try:
            await asyncio.to_thread(send)
        except BerthError:
            pass
        except ProcessLookupError:
            pass

    async def _wait_exit(self, c: Container, timeout: float | None) -> bool:
        if not c.running:
            return True
        fut: asyncio.Future[tuple[int, str | None]] = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, ref: str, *, timeout: int | None, signal: int | None) -> None:
        c = self.get(ref)
        if self._cancel_restart(c):
            c.data["HasBeenManuallyStopped"] = True
            c.save()
            return
        if not c.running:
            raise NotModified()
        c.data["HasBeenManuallyStopped"] = True
        await self._stop(c, timeout, signal)

    async def _stop(self, c: Container, timeout: int | None, sig: int | None) -> None:
        if sig is None:
            sig = _parse_signal(c.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = DEFAULT_STOP_TIMEOUT
        if c.state["Paused"]:
            await self.unpause(c.id)
        self._emit(c, "kill", signal=str(sig))
        await self._signal(c, sig)
        if not await self._wait_exit(c, None if timeout < 0 else float(timeout)):
            self._emit(c, "kill", signal="9")
            await self._signal(c, 9)
            await self._wait_exit(c, None)
        self._emit(c, "stop")

    async def restart(self, ref: str, *, timeout: int | None, signal: int | None) -> None:
        c = self.get(ref)
        self._cancel_restart(c)
        if c.running:
            await self._stop(c, timeout, signal)
        async with c.lock:
            await self._start_locked(c)
        self._emit(c, "restart")

    async def kill(self, ref: str, *, signal: int) -> None:
        c = self.get(ref)
        if self._cancel_restart(c) and signal == 9:
            return
        if not c.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signal == 9:
            c.data["HasBeenManuallyStopped"] = True
        self._emit(c, "kill", signal=str(signal))
        await self._signal(c, signal)
        if c.state["Paused"] and signal == 9:
            await asyncio.to_thread(lambda: self._runtime_container(c).cgroup().thaw())

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state["Paused"]:
            raise Conflict(f"Container {c.id} is already paused")
        await asyncio.to_thread(lambda: self._runtime_container(c).pause())
        c.state.update(Paused=True, Status="paused")
        c.save()
        self._emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.state["Paused"]:
            raise Conflict(f"Container {c.id} is not paused")
        await asyncio.to_thread(lambda: self._runtime_container(c).resume())
        c.state.update(Paused=False, Status="running")
        c.save()
        self._emit(c, "unpause")

    # ------------------------------------------------------------------------------------------------
    # wait and remove

    async def wait(self, ref: str, *, condition: str) -> Awaitable[WaitResult]:
        c = self.get(ref)
        loop = asyncio.get_running_loop()
        if condition == "removed":
            async def removed() -> WaitResult:
                await asyncio.shield(c.removed)
                return WaitResult(int(c.state["ExitCode"]))

            return removed()
        if condition == "not-running" and not c.running:
            done: asyncio.Future[WaitResult] = loop.create_future()
            done.set_result(WaitResult(int(c.state["ExitCode"])))
            return done
        fut: asyncio.Future[tuple[int, str | None]] = loop.create_future()
        c.exit_waiters.append(fut)

        async def exited() -> WaitResult:
            code, err = await fut
            return WaitResult(code, err)

        return exited()

    async def remove(self, ref: str, *, force: bool, volumes: bool, link: bool) -> None:
        c = self.get(ref)
        if link:
            raise InvalidArgument("Conflict, cannot remove the default link name of the container")
        if c.running and not c.state.get("Restarting"):
            if not force:
                what = "paused" if c.state["Paused"] else "running"
                raise Conflict(f'cannot remove container "/{c.name}": container is {what}: stop the container '
                               "before removing or force remove")
            c.stopping = True
            c.data["HasBeenManuallyStopped"] = True
            if c.state["Paused"]:
                await self._signal(c, 9)
                await asyncio.to_thread(lambda: self._runtime_container(c).cgroup().thaw())
            else:
                self._emit(c, "kill", signal="9")
                await self._signal(c, 9)
            await self._wait_exit(c, 30)
        self._cancel_restart(c)
        async with c.lock:
            if c.id not in self.store.by_id:
                return
            c.state["Dead"] = False
            self.store.remove(c)
            await asyncio.to_thread(self._remove_files, c)
        self._emit(c, "destroy")
        if not c.removed.done():
            c.removed.set_result(None)
        c.end_output()

    def _remove_files(self, c: Container) -> None:
        self._unmount(c)
        with contextlib.suppress(Exception):
            self.images.remove_rootfs(c.id)
        shutil.rmtree(self._exec_dir(c), ignore_errors=True)
        shutil.rmtree(c.path, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------
    # inspect, list, rename, update

    async def inspect(self, ref: str, *, size: bool) -> JSON:
        c = self.get(ref)
        d = c.inspect()
        if size:
            d["SizeRw"] = await asyncio.to_thread(self.images.rw_size, c.id)
        return d

    async def list(self, *, all: bool, limit: int | None, size: bool, filters: dict[str, StrList]) -> JSONList:
        cs = sorted(self.store.all(), key=lambda c: c.data["Created"], reverse=True)
        out = []
        for c in cs:
            if not all and not c.running and not filters.get("status") and not filters.get("exited"):
                continue
            if not _match_filters(c, filters, self.store):
                continue
            s = c.summary()
            if size:
                s["SizeRw"] = await asyncio.to_thread(self.images.rw_size, c.id)
            out.append(s)
            if limit is not None and limit > 0 and len(out) >= limit:
                break
        return out

    async def rename(self, ref: str, *, name: str) -> None:
        c = self.get(ref)
        if not name:
            raise InvalidArgument("Neither old nor new names may be empty")
        new = names.validate(name)
        old = c.name
        if new == old:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        self.store.rename(c, new)
        c.save()
        self._emit(c, "rename", oldName="/" + old)

    async def update(self, ref: str, *, config: JSON) -> JSON:
        c = self.get(ref)
        async with c.lock:
            # validates, merges into HostConfig in place (zero = unchanged), returns the OCI resources
            oci_resources, warnings = self.spec.resources_update(c.host_config, config, daemon=self.options,
                                                                  cid=c.id)
            if c.running and oci_resources:
                await asyncio.to_thread(lambda: self._runtime_container(c).update(oci_resources))
            c.save()
        self._emit(c, "update")
        return {"Warnings": warnings}

    # ------------------------------------------------------------------------------------------------
    # logs, attach, resize

    async def logs(self, ref: str, options: LogsOptions) -> LogStream:
        c = self.get(ref)
        from berth.logs import read_logs

        def is_running() -> bool:
            return c.running

        # called here, not in the generator: a bad request must fail before any header is sent
        source = read_logs(c.data["LogPath"], stdout=options.stdout, stderr=options.stderr, since=options.since,
                           until=options.until, tail=options.tail, follow=options.follow, is_running=is_running)

        async def records() -> AsyncIterator[LogRecord]:
            async for stream, data, t in source:
                yield LogRecord(stream, data, t)

        return LogStream(c.tty, records())

    async def attach(self, ref: str, options: AttachOptions) -> AttachSession:
        c = self.get(ref)
        if c.state["Paused"]:
            raise Conflict(f"Container {c.id} is paused, unpause the container before attach.")
        keys = parse_detach_keys(options.detach_keys)
        streams = {s for s, on in ((1, options.stdout), (2, options.stderr)) if on}
        replay = None
        if options.logs:
            from berth.logs import read_logs

            replay = read_logs(c.data["LogPath"], stdout=options.stdout, stderr=options.stderr, since=None,
                               until=None, tail=None, follow=False, is_running=None)

        def subscribe(q: asyncio.Queue[tuple[int, bytes] | None]) -> Any:
            c.subscribers.add(q)
            return lambda: c.subscribers.discard(q)

        async def write(data: bytes) -> None:
            if c.monitor is not None:
                await c.monitor.write_stdin(data)
            else:
                c.pending_stdin += data

        async def close_stdin() -> None:
            c.stdin_closed = True
            if c.monitor is not None:
                c.monitor.send({"op": "close-stdin"})

        stdin = options.stdin and bool(c.config.get("OpenStdin"))
        c.stdin_closed = False
        self._emit(c, "attach")
        return AttachSession(tty=c.tty, stdin=stdin, stdin_once=bool(c.config.get("StdinOnce")), streams=streams,
                             replay=replay, follow=options.stream, subscribe=subscribe, write=write,
                             close_stdin=close_stdin, detach_keys=keys)

    async def resize(self, ref: str, *, height: int, width: int) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.monitor is not None:
            c.monitor.send({"op": "resize", "height": height, "width": width})

    # ------------------------------------------------------------------------------------------------
    # the rest of the API, delegated

    async def top(self, ref: str, *, ps_args: str | None) -> JSON:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        from berth.daemon import top as topmod

        pids = await asyncio.to_thread(lambda: self._runtime_container(c).processes())
        return await asyncio.to_thread(topmod.top, pids, ps_args)

    async def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[JSON]:
        c = self.get(ref)
        from berth.daemon.stats_service import stats_frames

        async for frame_ in stats_frames(self, c, stream=stream, one_shot=one_shot):
            yield frame_

    async def changes(self, ref: str) -> JSONList:
        c = self.get(ref)
        return await asyncio.to_thread(self.images.changes, c.id)

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        c = self.get(ref)
        from berth.daemon.streams import stream_from_writer

        self._emit(c, "export")
        async for chunk in stream_from_writer(lambda out: self.images.export_container(c.id, out)):
            yield chunk

    def _rootfs(self, c: Container) -> str:
        return os.path.join(self._exec_dir(c), "bundle", "rootfs")

    async def archive_stat(self, ref: str, *, path: str) -> JSON:
        c = self.get(ref)
        from berth.daemon import archive

        async with self._rootfs_mounted(c) as root:
            return await asyncio.to_thread(archive.stat, root, path, container=ref)

    async def archive_get(self, ref: str, *, path: str) -> tuple[JSON, AsyncIterator[bytes]]:
        c = self.get(ref)
        from berth.daemon import archive

        cm = self._rootfs_mounted(c)
        root = await cm.__aenter__()
        try:
            st, chunks = await archive.get_async(root, path, container=ref)
        except BaseException:
            await cm.__aexit__(None, None, None)
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await cm.__aexit__(None, None, None)

        self._emit(c, "archive-path")
        return st, body()

    async def archive_put(self, ref: str, *, path: str, data: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
                          copy_uid_gid: bool) -> None:
        c = self.get(ref)
        from berth.daemon import archive

        async with self._rootfs_mounted(c) as root:
            await archive.put_async(root, path, data, no_overwrite_dir_non_dir, copy_uid_gid, container=ref,
                                    user=c.config.get("User") or "",
                                    read_only=bool(c.host_config.get("ReadonlyRootfs")))
        self._emit(c, "extract-to-dir")

    @contextlib.asynccontextmanager
    async def _rootfs_mounted(self, c: Container) -> AsyncIterator[str]:
        """The container's root: mounted while it runs; mounted for the call when it does not."""
        root = self._rootfs(c)
        if c.running or os.path.ismount(root):
            yield root
            return
        async with c.lock:
            def mount() -> None:
                os.makedirs(root, exist_ok=True)
                from berth.store.mount import mount as do_mount

                do_mount(self.images.rootfs_mounts(c.id), root)

            await asyncio.to_thread(mount)
            try:
                yield root
            finally:
                if not c.running:
                    await asyncio.to_thread(self._unmount, c)

    async def prune(self, *, filters: dict[str, StrList]) -> JSON:
        deleted, reclaimed = [], 0
        for c in list(self.store.all()):
            if c.running or not _match_filters(c, filters, self.store, prune=True):
                continue
            size = await asyncio.to_thread(self.images.rw_size, c.id)
            await self.remove(c.id, force=False, volumes=False, link=False)
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}

    async def commit(self, ref: str, *, repo: str | None, tag: str | None, author: str | None, comment: str | None,
                     changes: StrList, pause: bool, config: JSON | None) -> JSON:
        c = self.get(ref)
        paused_here = False
        if pause and c.running and not c.state["Paused"]:
            await asyncio.to_thread(lambda: self._runtime_container(c).pause())
            paused_here = True
        try:
            target = f"{repo}:{tag or 'latest'}" if repo else None
            image_id = await asyncio.to_thread(
                lambda: self.images.commit(c.id, changes=changes, ref=target, message=comment, author=author,
                                           config=_commit_config(c, config)))
        finally:
            if paused_here:
                await asyncio.to_thread(lambda: self._runtime_container(c).resume())
        self._emit(c, "commit", comment=comment or "")
        return {"Id": image_id}

    # ------------------------------------------------------------------------------------------------
    # health

    def _start_health(self, c: Container) -> None:
        hc = c.config.get("Healthcheck") or {}
        test = hc.get("Test") or []
        if not test or test[0] == "NONE":
            return
        from berth.daemon.health import HealthMonitor

        if self.exec_service is None:
            return

        async def probe(cmd: list[str], timeout: float) -> tuple[int, bytes]:
            return await self.exec_service.run_probe(c, cmd, timeout)

        def on_change(status: str) -> None:
            c.save()
            self._emit(c, f"health_status: {status}")

        c.state["Health"] = {"Status": "starting", "FailingStreak": 0, "Log": []}
        c.health = HealthMonitor(hc, run_probe=probe, on_change=on_change, state=c.state["Health"],
                                 shell=c.config.get("Shell"), container_id=c.id)
        c.health.start(_parse_time(c.state["StartedAt"]))

    # ------------------------------------------------------------------------------------------------
    # daemon start-up and shut-down (live-restore)

    async def restore(self) -> None:
        """Find the containers again: reconnect to live monitors, record exits that happened while we
        were down, restart `always`/`unless-stopped` ones; without live-restore, stop what still runs."""
        for c in self.store.load():
            exec_dir = self._exec_dir(c)
            if c.running and not c.state.get("Restarting"):
                conn = None
                if await asyncio.to_thread(_monitor_alive, exec_dir):
                    with contextlib.suppress(Exception):
                        conn = await _connect_retry(os.path.join(exec_dir, "monitor.sock"), attempts=3)
                if conn is not None:
                    self._wire(c, conn)
                    reply = await conn.request({"op": "hello"}, timeout=5)
                    if reply.get("type") == "state" and reply.get("running"):
                        if not self.live_restore:
                            await self._stop(c, None, None)
                        continue
                result = await asyncio.to_thread(_read_exit_file, exec_dir) or await self._orphaned(c)
                c.monitor = object()  # let _handle_exit record it
                await self._handle_exit(c, result)
            elif c.state.get("Restarting"):
                c.state.update(Restarting=False, Running=False)
                c.save()
        for c in self.store.all():
            policy = (c.host_config.get("RestartPolicy") or {}).get("Name")
            wanted = policy == "always" or (policy == "unless-stopped" and not c.data.get("HasBeenManuallyStopped"))
            if not c.running and wanted and c.data.get("HasBeenStartedBefore"):
                with contextlib.suppress(BerthError):
                    async with c.lock:
                        await self._start_locked(c)

    async def shutdown(self) -> None:
        if self.live_restore:
            for c in self.store.all():
                if c.monitor is not None and hasattr(c.monitor, "close"):
                    c.monitor.close()
            return
        await asyncio.gather(*(self._stop(c, None, None) for c in self.store.all() if c.running),
                             return_exceptions=True)


# ----------------------------------------------------------------------------------------------------
# small helpers


def _display_ref(ref: str) -> str:
    """`busybox` → `busybox:latest`, as moby's "No such image" message shows it."""
    from berth.oci import reference

    try:
        return reference.parse(ref).with_default_tag().familiar()
    except BerthError:
        return ref


def _log_opts(hc: JSON) -> JSON:
    """json-file's --log-opt map as the writer's arguments (dockerd's checks and its SI sizes)."""
    from berth.logs import parse_log_opts

    return dict(parse_log_opts((hc.get("LogConfig") or {}).get("Config") or {}))


def _parse_signal(s: str | int) -> int:
    if isinstance(s, int) or str(s).isdigit():
        return int(s)
    name = str(s).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signalmod.Signals[name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {s}") from None


def _parse_time(s: str) -> float:
    from berth.daemon.records import parse_iso

    return parse_iso(s)


def _read_exit_file(exec_dir: str) -> JSON | None:
    try:
        with open(os.path.join(exec_dir, "exit.json")) as f:
            return fastjson.loads(f.read())  # type: ignore[return-value]
    except (OSError, ValueError):
        return None


def _monitor_alive(exec_dir: str) -> bool:
    try:
        with open(os.path.join(exec_dir, "monitor.pid")) as f:
            pid = int(f.read())
        os.kill(pid, 0)
        return os.path.exists(os.path.join(exec_dir, "monitor.sock"))
    except (OSError, ValueError):
        return False


async def _connect_retry(path: str, attempts: int = 200) -> MonitorConnection:
    """The monitor creates its socket right after the fork: give it a moment."""
    last: Exception | None = None
    for i in range(attempts):
        try:
            return await MonitorConnection.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            last = e
            await asyncio.sleep(0.001 if i < 20 else 0.01)
    raise ConnectionError(f"cannot reach the monitor at {path}: {last}")


def _commit_config(c: Container, config: JSON | None) -> JSON:
    base = {k: c.config.get(k) for k in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts",
                                         "Volumes", "StopSignal", "Healthcheck", "OnBuild", "Shell") if c.config.get(k)}
    if config:
        base.update({k: v for k, v in config.items() if v})
    return base


def _match_filters(c: Container, filters: dict[str, list[str]], store: ContainerStore, prune: bool = False) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            ok = any(c.id.startswith(v) for v in values)
        elif key == "name":
            import re

            ok = any(re.search(v, c.name) or re.search(v, "/" + c.name) for v in values)
        elif key == "label":
            labels = c.config.get("Labels") or {}
            ok = all(_label_ok(labels, v) for v in values)
        elif key == "label!":
            labels = c.config.get("Labels") or {}
            ok = not any(_label_ok(labels, v) for v in values)
        elif key == "status":
            ok = c.status_word() in values
        elif key == "exited":
            ok = not c.running and c.state["StartedAt"] != ZERO_TIME and str(c.state["ExitCode"]) in values
        elif key == "ancestor":
            ok = any(v in (c.data.get("ImageName"), c.data["Image"], c.data["Image"].removeprefix("sha256:"))
                     or c.data["Image"].removeprefix("sha256:").startswith(v) for v in values)
        elif key == "before":
            try:
                other = store.get(values[0])
                ok = c.data["Created"] < other.data["Created"]
            except NotFound:
                ok = False
        elif key == "since":
            try:
                other = store.get(values[0])
                ok = c.data["Created"] > other.data["Created"]
            except NotFound:
                ok = False
        elif key == "health":
            status = (c.state.get("Health") or {}).get("Status", "none")
            ok = status in values
        elif key == "network":
            ok = any(v in (c.host_config.get("NetworkMode"), "none") for v in values)
        elif key == "until" and prune:
            from berth.api.params import timestamp

            ok = _parse_time(c.data["Created"]) < (timestamp(values[0], "until") or 0)
        elif key == "is-task":
            ok = "false" in values
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_ok(labels: dict[str, str], want: str) -> bool:
    k, eq, v = want.partition("=")
    return k in labels and (not eq or labels[k] == v)
