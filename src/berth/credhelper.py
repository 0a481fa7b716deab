"""The docker-credential-* helper protocol, as docker/cli speaks it: `get`, `store` and `erase`,
with the server on stdin and JSON on stdout. Which helper serves a registry comes from the client
config: `credHelpers[host]`, else `credsStore`. Shared by the CLI (login, pull, push) and the
registry client library (berthd's own pulls)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from berth.errors import Unavailable


def helper_for(config: dict[str, Any], *keys: str) -> str | None:
    """The helper for the first of `keys` (a host, then its config key) named in credHelpers,
    else the credsStore; None when the config names neither."""
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for k in keys:
            if helpers.get(k):
                return str(helpers[k])
    store = config.get("credsStore")
    return str(store) if store else None


def _call(helper: str, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([f"docker-credential-{helper}", action], input=stdin, capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError:
        raise Unavailable(f"docker-credential-{helper}: executable file not found in $PATH") from None


def get(helper: str, server: str) -> tuple[str, str] | None:
    """(username, secret) the helper keeps for `server` ("<token>" as username: an identity
    token), or None when it has nothing."""
    p = _call(helper, "get", server)
    if p.returncode != 0:
        if "credentials not found" in (p.stdout + p.stderr).lower():
            return None
        raise Unavailable(f"error getting credentials - err: exit status {p.returncode}, out: `{p.stdout.strip()}`")
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise Unavailable(f"error getting credentials - err: invalid JSON from docker-credential-{helper}") from None
    return str(doc.get("Username") or ""), str(doc.get("Secret") or "")


def store(helper: str, server: str, username: str, secret: str) -> None:
    p = _call(helper, "store", json.dumps({"ServerURL": server, "Username": username, "Secret": secret}))
    if p.returncode != 0:
        raise Unavailable(f"error storing credentials - err: exit status {p.returncode}, out: `{p.stdout.strip()}`")


def erase(helper: str, server: str) -> None:
    p = _call(helper, "erase", server)
    if p.returncode != 0 and "credentials not found" not in (p.stdout + p.stderr).lower():
        raise Unavailable(f"error erasing credentials - err: exit status {p.returncode}, out: `{p.stdout.strip()}`")
