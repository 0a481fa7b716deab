"""TEMPORARY: the smallest create-config merge and spec build, until createconfig.py and spec.py land."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.spec import default_spec


@dataclass
class DaemonOptions:
    cgroup_parent: str = "berth"
    init_path: str = "/usr/bin/tini-static"
    default_ulimits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ContainerView:
    id: str
    name: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    image_config: dict[str, Any]


def normalize(body: dict[str, Any], image_config: dict[str, Any], *, name: str, cid: str,
              daemon: DaemonOptions) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    cfg = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    img = image_config or {}
    if body.get("Entrypoint") is not None:
        cfg["Entrypoint"] = body["Entrypoint"]
        cfg["Cmd"] = body.get("Cmd") or None
    else:
        cfg["Entrypoint"] = img.get("Entrypoint")
        cfg["Cmd"] = body.get("Cmd") or img.get("Cmd")
    if not (cfg.get("Entrypoint") or cfg.get("Cmd")):
        raise InvalidArgument("no command specified")
    env = {e.split("=", 1)[0]: e for e in img.get("Env") or []}
    for e in body.get("Env") or []:
        env[e.split("=", 1)[0]] = e
    cfg["Env"] = list(env.values())
    cfg["WorkingDir"] = body.get("WorkingDir") or img.get("WorkingDir") or ""
    cfg["User"] = body.get("User") or img.get("User") or ""
    cfg["Labels"] = {**(img.get("Labels") or {}), **(body.get("Labels") or {})}
    cfg["Hostname"] = body.get("Hostname") or cid[:12]
    hc = copy.deepcopy(body.get("HostConfig") or {})
    hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    if not hc["LogConfig"].get("Type"):
        hc["LogConfig"]["Type"] = "json-file"
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    if not hc["RestartPolicy"].get("Name"):
        hc["RestartPolicy"]["Name"] = "no"
    nm = hc.get("NetworkMode") or "default"
    hc["NetworkMode"] = nm
    return cfg, hc, []


def build(view: ContainerView, *, rootfs: str, files: dict[str, str], daemon: DaemonOptions) -> dict[str, Any]:
    cfg, hc = view.config, view.host_config
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    spec = default_spec(args)
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.append(f"HOSTNAME={cfg['Hostname']}")
    if cfg.get("Tty"):
        env.append("TERM=xterm")
    spec["process"]["env"] = env
    spec["process"]["terminal"] = bool(cfg.get("Tty"))
    spec["process"]["cwd"] = cfg.get("WorkingDir") or "/"
    spec["hostname"] = cfg["Hostname"]
    spec["root"] = {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))}
    for dest, src in files.items():
        spec["mounts"].append({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
    spec["linux"]["cgroupsPath"] = f"/{daemon.cgroup_parent}/{view.id}"
    if hc.get("NetworkMode") == "host":
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
        spec["linux"]["sysctl"] = {}
    return spec
