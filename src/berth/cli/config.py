"""The client config file (`<config dir>/config.json`, docker's format): registry credentials,
detach keys and default formats. berth reads and writes docker's file so the two share logins."""

from __future__ import annotations

import os

from berth import fastjson

# the key docker stores Docker Hub's credentials under
INDEX_SERVER = "https://index.docker.io/v1/"


class ConfigFile:
    def __init__(self, path: str, data: dict[str, object]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, config_dir: str) -> ConfigFile:
        path = os.path.join(config_dir, "config.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return cls(path, {})
        try:
            data = fastjson.loads(raw) if raw.strip() else {}
        except ValueError as e:
            from berth.errors import InvalidArgument

            raise InvalidArgument(f"loading config file: {path}: {e}") from None
        return cls(path, data if isinstance(data, dict) else {})

    def get_str(self, key: str) -> str:
        v = self.data.get(key)
        return v if isinstance(v, str) else ""

    @property
    def detach_keys(self) -> str:
        return self.get_str("detachKeys")

    def auths(self) -> dict[str, dict[str, object]]:
        a = self.data.get("auths")
        return a if isinstance(a, dict) else {}

    def _helper(self, server: str) -> str | None:
        from berth import credhelper

        return credhelper.helper_for(self.data, _hostname(server), server)

    def get_auth(self, server: str) -> dict[str, str]:
        """{"username", "password", "serveraddress"} (what X-Registry-Auth carries), or {}: from the
        credential helper (credHelpers/credsStore) if one is set, else the file's inline entry."""
        helper = self._helper(server)
        if helper:
            from berth import credhelper

            got = credhelper.get(helper, server)
            if got is not None:
                user, secret = got
                if user == "<token>":
                    return {"identitytoken": secret, "serveraddress": server}
                return {"username": user, "password": secret, "serveraddress": server}
        auths = self.auths()
        entry = auths.get(server)
        if entry is None:
            # docker also matches the bare hostname of a URL key
            for key, val in auths.items():
                if _hostname(key) == _hostname(server):
                    entry = val
                    break
        if not isinstance(entry, dict):
            return {}
        out: dict[str, str] = {}
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            import base64

            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")  # type: ignore[arg-type]
            except (ValueError, UnicodeDecodeError):
                user, pw = "", ""
            out["username"], out["password"] = user, pw
        if out:
            out["serveraddress"] = server
        if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
            out["identitytoken"] = entry["identitytoken"]  # type: ignore[assignment]
            out.setdefault("serveraddress", server)
        return out

    def set_auth(self, server: str, username: str, password: str, identity_token: str = "") -> bool:
        """Record a login; True when a credential helper took the secret (the file keeps an empty
        entry, as docker's), False when it went into the file, base64-encoded."""
        auths = self.data.setdefault("auths", {})
        assert isinstance(auths, dict)
        helper = self._helper(server)
        if helper:
            from berth import credhelper

            if identity_token:
                credhelper.store(helper, server, "<token>", identity_token)
            else:
                credhelper.store(helper, server, username, password)
            auths[server] = {}
            return True
        import base64

        entry: dict[str, str] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
        if identity_token:
            entry = {"auth": base64.b64encode(f"{username}:".encode()).decode(), "identitytoken": identity_token}
        auths[server] = entry
        return False

    def remove_auth(self, server: str) -> bool:
        """Forget a login (in the helper too); False when there was none in the file."""
        helper = self._helper(server)
        if helper:
            from berth import credhelper

            credhelper.erase(helper, server)
        auths = self.auths()
        if server in auths:
            del auths[server]
            return True
        return False

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            import json  # writing (login/logout) is rare: the stdlib's pretty printer is fine

            json.dump(self.data, f, indent="\t")
        os.replace(tmp, self.path)


def _hostname(url: str) -> str:
    s = url.removeprefix("http://").removeprefix("https://")
    return s.split("/", 1)[0]


def encode_auth(auth: dict[str, str]) -> str:
    """X-Registry-Auth: base64url of the JSON auth config ("e30=" for none)."""
    import base64

    body = fastjson.dumps(auth, compact=True).encode()
    return base64.urlsafe_b64encode(body).decode()
