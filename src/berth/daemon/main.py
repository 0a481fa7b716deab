"""berthd: wiring. Parse flags, fork the zygote (before any thread exists), then serve the Engine API."""

from __future__ import annotations

import contextlib
import grp
import os
import signal
import sys
from typing import Any, NoReturn

from berth.errors import BerthError


def _log(level: str, msg: str) -> None:
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f'time="{now}" level={level} msg="{msg}"\n')
    sys.stderr.flush()


def _pidfile(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        with open(path) as f:
            old = int(f.read().strip() or 0)
        if old and os.path.exists(f"/proc/{old}"):
            with open(f"/proc/{old}/cmdline", "rb") as f:
                if b"berthd" in f.read():
                    raise BerthError(f"pid file found, ensure berthd is not running or delete {path}")
    except (FileNotFoundError, ValueError):
        pass
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def _tls_context(cfg: Any) -> Any:
    import ssl

    if not (cfg.tls or cfg.tlsverify):
        return None
    if not (cfg.tlscert and cfg.tlskey):
        raise BerthError("TLS needs --tlscert and --tlskey")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.tlscert, cfg.tlskey)
    if cfg.tlsverify:
        if not cfg.tlscacert:
            raise BerthError("--tlsverify needs --tlscacert")
        ctx.load_verify_locations(cfg.tlscacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _make_cgroup_parent(name: str) -> None:
    """Create the parent cgroup of all containers up front (as dockerd's /docker), once."""
    from berth.runtime import cgroups

    cgroups.manager_for("/" + name.strip("/"), "berthd").create()


async def serve(cfg: Any, zygote: Any) -> None:
    import asyncio

    from berth.api.app import Backends, EngineAPI
    from berth.daemon import spec as specmod
    from berth.daemon.containers import ContainerService, DaemonPaths
    from berth.daemon.events import EventBus
    from berth.daemon.execs import ExecService
    from berth.daemon.system import SystemService
    from berth.image.service import ImageService

    loop = asyncio.get_running_loop()
    events = EventBus()
    await asyncio.to_thread(_make_cgroup_parent, cfg.cgroup_parent)
    images = await asyncio.to_thread(ImageService, os.path.join(cfg.data_root, "image"))
    paths = DaemonPaths(cfg.data_root, cfg.exec_root)
    options = specmod.DaemonOptions(cgroup_parent=cfg.cgroup_parent, init_path=cfg.init_path,
                                    data_root=cfg.data_root, runtime_name=cfg.default_runtime)
    from berth.daemon.runtimes import Runtimes

    runtimes = Runtimes(cfg.runtimes, cfg.default_runtime, cfg.exec_root)
    containers = ContainerService(paths=paths, images=images, zygote=zygote, events=events, options=options,
                                  spec_module=specmod, live_restore=cfg.live_restore, runtimes=runtimes)
    images.running = containers.running
    options.container_ns = containers.namespace_path
    execs = ExecService(containers)
    images_backend = None
    auth = None
    try:
        from berth.daemon.images import ImagesBackendService

        images_backend = ImagesBackendService(images, events=events, config=cfg)
        auth = getattr(images_backend, "login", None)
    except ImportError:
        pass
    system = SystemService(containers=containers, images=images, events=events, config=cfg, auth=auth,
                           registry_info=images_backend.settings.info if images_backend is not None else None)
    api = EngineAPI(Backends(system=system, containers=containers, exec=execs, images=images_backend))
    await containers.restore()

    servers = []
    ssl_ctx = _tls_context(cfg)
    for host in cfg.hosts:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            server = api.server(unix=path)
            await server.start()
            os.chmod(path, 0o660)
            with contextlib.suppress(KeyError):
                os.chown(path, 0, grp.getgrnam(cfg.group).gr_gid)
        elif host.startswith("tcp://"):
            hostport = host[len("tcp://"):]
            h, _, p = hostport.rpartition(":")
            if ssl_ctx is None:
                _log("warning", f"Binding to IP address without --tlsverify is insecure and gives root access on "
                                f"this machine to everyone who has access to your network. host={host}")
            server = api.server(host=h or "127.0.0.1", port=int(p or 2375), ssl=ssl_ctx)
            await server.start()
        else:
            raise BerthError(f"invalid host {host!r}: expected unix:// or tcp://")
        servers.append(server)
    _log("info", f"API listen on {', '.join(cfg.hosts)}")
    _log("info", "Daemon has completed initialization")

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log("info", "Processing signal 'terminated'")
    for server in servers:
        await server.close()
    await containers.shutdown()


def main(argv: list[str] | None = None) -> NoReturn:
    from berth.daemon import config

    try:
        cfg, args = config.load(argv)
    except BerthError as e:
        _log("error", str(e))
        sys.exit(1)
    if args.version:
        import berth

        print(f"berthd version {berth.__version__}")
        sys.exit(0)
    if os.geteuid() != 0:
        sys.stderr.write("berthd needs to be started with root privileges (it manages namespaces, mounts and "
                         "cgroups). Run it as root, e.g. with sudo.\n")
        sys.exit(1)
    os.umask(0o022)
    try:
        for d in (cfg.data_root, cfg.exec_root):
            os.makedirs(d, 0o711, exist_ok=True)
        _pidfile(cfg.pidfile)
    except (BerthError, OSError) as e:
        _log("error", f"failed to start daemon: {e}")
        sys.exit(1)
    from berth.daemon.zygote import Zygote

    zygote = Zygote.start()  # before asyncio creates any thread
    code = 0
    try:
        import asyncio

        asyncio.run(serve(cfg, zygote))
    except BerthError as e:
        _log("error", f"failed to start daemon: {e}")
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        zygote.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cfg.pidfile)
    sys.exit(code)
