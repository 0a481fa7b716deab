"""berthd's settings: dockerd's flag names, plus daemon.json (`--config-file`), flags winning."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument

DEFAULT_SOCKET = "unix:///run/berth/berth.sock"
DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json"


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: str = "/var/lib/berth"
    exec_root: str = "/run/berth"
    pidfile: str = "/run/berth/berthd.pid"
    log_level: str = "info"
    live_restore: bool = True
    default_runtime: str = "berth"
    runtimes: dict[str, str] = field(default_factory=lambda: {"berth": "berth-runtime"})
    cgroup_parent: str = "berth"
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    default_registry: str | None = "docker.io"
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    init_path: str = "/usr/bin/tini-static"
    group: str = "berth"
    default_ulimits: dict[str, Any] = field(default_factory=dict)


def _bool(text: str) -> bool:
    v = text.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berthd", description="berth's daemon: the Docker Engine API on a socket")
    p.add_argument("-H", "--host", action="append", dest="hosts", metavar="URL",
                   help=f"daemon socket(s) to listen on (default {DEFAULT_SOCKET}); tcp://host:port for TCP")
    p.add_argument("--data-root", help="root of persistent state (default /var/lib/berth)")
    p.add_argument("--exec-root", help="root of execution state (default /run/berth)")
    p.add_argument("-p", "--pidfile", help="path to the pid file (default /run/berth/berthd.pid)")
    p.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("--live-restore", nargs="?", const=True, type=_bool,
                   help="keep containers running while berthd is down (default true in berth)")
    p.add_argument("--default-runtime", help="default OCI runtime (berth, or runc/crun when added)")
    p.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH",
                   help="register an additional OCI runtime")
    p.add_argument("--cgroup-parent", help="parent cgroup for containers (default berth)")
    p.add_argument("--registry-mirror", action="append", default=None, metavar="URL",
                   help="preferred registry mirror for docker.io")
    p.add_argument("--insecure-registry", action="append", default=None, metavar="HOST",
                   help="registries reachable over plain HTTP")
    p.add_argument("--config-file", default=None, help=f"daemon configuration file (default {DEFAULT_CONFIG_FILE})")
    p.add_argument("--tls", nargs="?", const=True, type=_bool, help="use TLS; implied by --tlsverify")
    p.add_argument("--tlsverify", nargs="?", const=True, type=_bool, help="use TLS and verify the remote")
    p.add_argument("--tlscacert", help="trust certs signed only by this CA")
    p.add_argument("--tlscert", help="path to the TLS certificate file")
    p.add_argument("--tlskey", help="path to the TLS key file")
    p.add_argument("--init-path", help="path to the docker-init binary (default /usr/bin/tini-static)")
    p.add_argument("-G", "--group", help="group for the unix socket (default berth, if it exists)")
    p.add_argument("-v", "--version", action="store_true", help="print version information and quit")
    return p


# daemon.json keys (dockerd's names) -> our fields
_FILE_KEYS = {
    "hosts": "hosts", "data-root": "data_root", "exec-root": "exec_root", "pidfile": "pidfile",
    "log-level": "log_level", "live-restore": "live_restore", "default-runtime": "default_runtime",
    "cgroup-parent": "cgroup_parent", "registry-mirrors": "registry_mirrors",
    "insecure-registries": "insecure_registries", "tls": "tls", "tlsverify": "tlsverify",
    "tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey", "init-path": "init_path", "group": "group",
    "default-ulimits": "default_ulimits", "default-registry": "default_registry",
}


def load(argv: list[str] | None = None) -> tuple[DaemonConfig, argparse.Namespace]:
    args = parser().parse_args(argv)
    cfg = DaemonConfig()
    path = args.config_file or DEFAULT_CONFIG_FILE
    if args.config_file or os.path.exists(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise InvalidArgument(f"unable to configure the daemon: open {path}: no such file or directory") from None
        except ValueError as e:
            raise InvalidArgument(f"unable to configure the daemon: invalid JSON in {path}: {e}") from None
        for key, value in data.items():
            if key == "runtimes":
                cfg.runtimes.update({n: r.get("path", n) for n, r in value.items()})
            elif key in _FILE_KEYS:
                setattr(cfg, _FILE_KEYS[key], value)
            else:
                raise InvalidArgument(f"the following directives don't match any configuration option: {key}")
    for attr in ("data_root", "exec_root", "pidfile", "log_level", "live_restore", "default_runtime",
                 "cgroup_parent", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey", "init_path", "group"):
        value = getattr(args, attr)
        if value is not None:
            setattr(cfg, attr, value)
    if args.hosts:
        cfg.hosts = args.hosts
    if args.registry_mirror is not None:
        cfg.registry_mirrors = args.registry_mirror
    if args.insecure_registry is not None:
        cfg.insecure_registries = args.insecure_registry
    for spec in args.add_runtime:
        name, eq, path_ = spec.partition("=")
        if not eq:
            raise InvalidArgument(f"invalid runtime {spec!r}: expected NAME=PATH")
        cfg.runtimes[name] = path_
    if cfg.default_runtime not in cfg.runtimes:
        raise InvalidArgument(f"default runtime {cfg.default_runtime} does not exist")
    if args.exec_root and not args.pidfile:
        cfg.pidfile = os.path.join(cfg.exec_root, "berthd.pid")
    return cfg, args
