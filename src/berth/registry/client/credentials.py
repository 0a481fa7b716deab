"""Registry credentials as Docker keeps them: `~/.docker/config.json` (`auths`, `credsStore`, `credHelpers`),
with the docker-credential-* helpers reached through berth.credhelper."""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any

from berth import credhelper
from berth.errors import NotFound

# Docker Hub's credentials live under its v1 index URL, for historical reasons (docker/cli).
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""   # an OAuth2 refresh token (helpers return it as Username "<token>")
    registry_token: str = ""   # a bearer token to send as is


def config_key(host: str) -> str:
    """The key Docker files a registry's credentials under."""
    return DOCKER_HUB_KEY if host in _HUB_HOSTS else host


def _normalize(key: str) -> str:
    """`https://host:5000/v2/` → `host:5000`, as docker/cli matches `auths` keys."""
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix):]
    return k.split("/", 1)[0]


def default_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def load_config(path: str | None = None) -> dict[str, Any]:
    try:
        with open(path or default_config_path()) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _from_entry(entry: dict[str, Any]) -> Credentials | None:
    user, pw = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    creds = Credentials(user, pw, str(entry.get("identitytoken") or ""), str(entry.get("registrytoken") or ""))
    return creds if any((creds.username, creds.password, creds.identity_token, creds.registry_token)) else None


def helper_get(helper: str, server: str) -> Credentials | None:
    """`docker-credential-<helper> get`; None when the helper has nothing for `server`."""
    got = credhelper.get(helper, server)
    if got is None:
        return None
    user, secret = got
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


def _helper_for(config: dict[str, Any], host: str) -> str | None:
    return credhelper.helper_for(config, host, config_key(host))


def lookup(config: dict[str, Any], host: str) -> Credentials | None:
    """Credentials for registry `host` from a docker config dict (helpers first, as docker/cli does)."""
    key = config_key(host)
    helper = _helper_for(config, host)
    if helper:
        creds = helper_get(helper, key)
        if creds is not None:
            return creds
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        entry = auths.get(key)
        if entry is None:
            for k, v in auths.items():
                if _normalize(k) == _normalize(key):
                    entry = v
                    break
        if isinstance(entry, dict):
            return _from_entry(entry)
    return None


def save(path: str, host: str, creds: Credentials) -> None:
    """Record credentials as `docker login` does: in the helper if one is configured, else base64 in `auths`."""
    config = load_config(path)
    key = config_key(host)
    helper = _helper_for(config, host)
    auths = config.setdefault("auths", {})
    if helper:
        if creds.identity_token:
            credhelper.store(helper, key, "<token>", creds.identity_token)
        else:
            credhelper.store(helper, key, creds.username, creds.password)
        auths[key] = {}
    else:
        entry: dict[str, Any] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
        if creds.identity_token:
            entry = {"auth": base64.b64encode(f"{creds.username}:".encode()).decode(),
                     "identitytoken": creds.identity_token}
        auths[key] = entry
    _write(path, config)


def remove(path: str, host: str) -> None:
    """`docker logout`: forget the credentials (NotFound when there were none)."""
    config = load_config(path)
    key = config_key(host)
    auths = config.get("auths") or {}
    helper = _helper_for(config, host)
    if key not in auths and not helper:
        raise NotFound(f"Not logged in to {host}")
    if helper:
        credhelper.erase(helper, key)
    auths.pop(key, None)
    _write(path, config)


def _write(path: str, config: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent="\t")
    os.replace(tmp, path)
