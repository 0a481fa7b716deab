"""Loading and checking an OCI bundle's config.json, with runc's error wording."""

from __future__ import annotations

import os

from berth import fastjson
from berth.runtime.errors import ConfigError
from berth.runtime.linux.syscalls import NAMESPACE_FLAGS

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from typing import Any


def load_bundle(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    try:
        config = fastjson.loads(raw)
    except ValueError as e:
        raise ConfigError(f"invalid JSON in config.json: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("config.json: the specification must be a JSON object")
    validate(config, bundle)
    return config


def rootfs_path(config: dict[str, Any], bundle: str) -> str:
    root = (config.get("root") or {}).get("path") or "rootfs"
    return os.path.realpath(root if os.path.isabs(root) else os.path.join(bundle, root))


def validate(config: dict[str, Any], bundle: str) -> None:
    process = config.get("process")
    if not isinstance(process, dict):
        raise ConfigError("process property must not be empty")
    if not process.get("args"):
        raise ConfigError("args must not be empty")
    if not isinstance(process.get("args"), list) or not all(isinstance(a, str) for a in process["args"]):
        raise ConfigError("process.args must be a list of strings")
    if process.get("cwd") and not str(process["cwd"]).startswith("/"):
        raise ConfigError(f"cwd property must be an absolute path: {process['cwd']!r}")
    root = rootfs_path(config, bundle)
    if not os.path.isdir(root):
        raise ConfigError(f"invalid rootfs: stat {root}: no such file or directory")
    linux = config.get("linux") or {}
    seen = set()
    for ns in linux.get("namespaces") or []:
        t = ns.get("type")
        if t not in NAMESPACE_FLAGS:
            raise ConfigError(f'namespace {{"{t}" "{ns.get("path", "")}"}} does not exist')
        if t in seen:
            raise ConfigError(f"malformed spec file: duplicated ns {t!r}")
        seen.add(t)
        if ns.get("path") and not os.path.exists(ns["path"]):
            raise ConfigError(f"namespace path {ns['path']}: no such file or directory")
    if config.get("hostname") and "uts" not in seen:
        raise ConfigError("unable to set hostname without a private UTS namespace")
    if "mount" not in seen:
        raise ConfigError("berth-runtime requires a new mount namespace")
    if linux.get("uidMappings") and "user" not in seen:
        raise ConfigError("user namespace mappings specified, but user namespace isn't enabled in the config")
    for m in config.get("mounts") or []:
        if not str(m.get("destination", "")).startswith("/"):
            raise ConfigError(f"mount destination {m.get('destination')!r} is not absolute")
    for key in (linux.get("sysctl") or {}):
        if not key or ".." in key or key.startswith("/"):
            raise ConfigError(f"sysctl {key!r} is not allowed")
