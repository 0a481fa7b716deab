"""Who may do what: htpasswd (bcrypt) basic auth, Docker's token flow with signed JWTs, per-repository scopes.

Modes: "none" (everyone may do everything: the loopback default), "basic" (htpasswd, as distribution's
`auth.htpasswd`) and "token" (distribution's `auth.token`: a `WWW-Authenticate: Bearer` challenge naming
the scope, a token endpoint served by this same server, HS256 JWTs it signs and verifies).
Access rules (ACL file, one rule per line: `<user> <repository glob> <actions>`; user `*` is anyone,
`+` any authenticated user; actions `pull,push,delete` or `*`; glob `catalog` means `registry:catalog`)
default to "any authenticated user may do everything". The token endpoint grants the intersection of
what was asked and what the rules allow, as the token spec says (not an error)."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from berth.registry import errors as rerr

ALL_ACTIONS = frozenset({"pull", "push", "delete"})


@dataclass(frozen=True)
class Access:
    type: str            # "repository" or "registry"
    name: str            # repository name, or "catalog"
    actions: frozenset[str]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(values: list[str]) -> list[Access]:
    """Parse `type[(class)]:name:actions` scopes (space separated or repeated). Bad entries are skipped."""
    out: list[Access] = []
    for value in values:
        for item in value.split():
            head, sep, actions = item.rpartition(":")
            typ, sep2, name = head.partition(":")
            if not sep or not sep2 or not name:
                continue
            typ = typ.split("(")[0]
            out.append(Access(typ, name, frozenset(a for a in actions.split(",") if a)))
    return out


class Htpasswd:
    """An htpasswd file of bcrypt entries, re-read when it changes. Checks are cached: bcrypt costs
    tens of milliseconds a check by design, and docker clients send Basic credentials on every request."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._entries: dict[str, bytes] = {}
        self._ok: dict[tuple[str, bytes], bytes] = {}
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        if st.st_mtime == self._mtime:
            return
        entries: dict[str, bytes] = {}
        with open(self.path, "rb") as f:
            for raw in f:
                line = raw.strip()
                if not line or line.startswith(b"#") or b":" not in line:
                    continue
                user, _, h = line.partition(b":")
                entries[user.decode()] = h
        self._entries, self._mtime, self._ok = entries, st.st_mtime, {}

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        try:
            self._load()
        except OSError:
            return False
        h = self._entries.get(user)
        if h is None or not h.startswith((b"$2a$", b"$2b$", b"$2y$")):
            return False  # distribution accepts bcrypt entries only
        key = (user, hashlib.sha256(password.encode()).digest())
        if self._ok.get(key) == h:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), h)
        except ValueError:
            return False
        if ok:
            self._ok[key] = h
        return ok


class Acl:
    def __init__(self, rules: list[tuple[str, str, frozenset[str]]] | None = None) -> None:
        self.rules = rules if rules is not None else [("+", "*", frozenset({"*"}))]

    @classmethod
    def load(cls, path: str) -> Acl:
        rules = []
        with open(path) as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if len(parts) != 3:
                    continue
                rules.append((parts[0], parts[1], frozenset(parts[2].split(","))))
        return cls(rules)

    def allowed(self, user: str | None, access: Access) -> frozenset[str]:
        """The subset of `access.actions` the rules grant `user` (None = anonymous)."""
        granted: set[str] = set()
        for who, glob, actions in self.rules:
            if not (who == "*" or (who == "+" and user is not None) or who == user):
                continue
            if access.type == "registry":
                if glob != "catalog" and glob != "*":
                    continue
            elif access.type != "repository" or glob == "catalog" or not fnmatch.fnmatchcase(access.name, glob):
                continue
            granted |= set(access.actions) if "*" in actions else (actions & access.actions)
        return frozenset(granted)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HS256 JWTs in the shape of distribution's token spec (iss, sub, aud, exp, nbf, iat, jti, access)."""

    def __init__(self, key: bytes, issuer: str, service: str, ttl: int = 300) -> None:
        self.key, self.issuer, self.service, self.ttl = key, issuer, service, max(ttl, 60)
        self.kid = hashlib.sha256(key).hexdigest()[:16]

    def issue(self, subject: str, access: list[Access]) -> tuple[str, int, int]:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": subject, "aud": self.service, "iat": now, "nbf": now - 5,
            "exp": now + self.ttl, "jti": secrets.token_hex(8),
            "access": [{"type": a.type, "name": a.name, "actions": sorted(a.actions)} for a in access],
        }
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = hmac.new(self.key, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64(sig)}", now, self.ttl

    def verify(self, token: str) -> dict[str, Any]:
        try:
            h64, c64, s64 = token.split(".")
            header = json.loads(_unb64(h64))
            claims = json.loads(_unb64(c64))
            sig = _unb64(s64)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise rerr.Unauthorized("invalid token")
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
            raise rerr.Unauthorized("invalid token")
        want = hmac.new(self.key, f"{h64}.{c64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(sig, want):
            raise rerr.Unauthorized("invalid token signature")
        now = time.time()
        if claims.get("iss") != self.issuer or claims.get("aud") != self.service:
            raise rerr.Unauthorized("token not issued for this registry")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now or claims.get("nbf", 0) > now + 5:
            raise rerr.Unauthorized("token expired")
        return claims


@dataclass
class Identity:
    user: str | None
    token_access: list[dict[str, Any]] | None = None   # the token's grants (token mode)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, pw = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, pw) if sep else None


class Authenticator:
    def __init__(self, mode: str = "none", *, htpasswd: Htpasswd | None = None, acl: Acl | None = None,
                 signer: TokenSigner | None = None, realm: str = "", basic_realm: str = "berth-registry") -> None:
        self.mode, self.htpasswd, self.acl, self.signer = mode, htpasswd, acl or Acl(), signer
        self.realm, self.basic_realm = realm, basic_realm

    def _challenge(self, needed: list[Access], error: str | None = None) -> list[tuple[str, str]]:
        if self.mode == "basic":
            return [("WWW-Authenticate", f'Basic realm="{self.basic_realm}"')]
        assert self.signer is not None
        parts = [f'realm="{self.realm}"', f'service="{self.signer.service}"']
        if needed:
            parts.append(f'scope="{" ".join(a.scope() for a in needed)}"')
        if error:
            parts.append(f'error="{error}"')
        return [("WWW-Authenticate", "Bearer " + ",".join(parts))]

    def _deny(self, needed: list[Access], message: str, error: str | None = None) -> rerr.RegistryError:
        detail = [{"Type": a.type, "Name": a.name, "Action": sorted(a.actions)[0]} for a in needed] or None
        return rerr.Unauthorized(message, detail, headers=self._challenge(needed, error))

    def authenticate(self, authorization: str | None, needed: list[Access]) -> Identity:
        """Check the request's credentials for `needed`; raise UNAUTHORIZED (with challenge) or DENIED."""
        if self.mode == "none":
            return Identity(None)
        if self.mode == "basic":
            creds = basic_credentials(authorization)
            if creds is None or self.htpasswd is None or not self.htpasswd.check(*creds):
                raise self._deny(needed, "authentication required")
            for a in needed:
                if self.acl.allowed(creds[0], a) != a.actions:
                    raise rerr.Denied(detail=[{"Type": a.type, "Name": a.name, "Action": sorted(a.actions)}])
            return Identity(creds[0])
        # token mode
        if not authorization or authorization[:7].lower() != "bearer ":
            raise self._deny(needed, "authentication required")
        assert self.signer is not None
        try:
            claims = self.signer.verify(authorization[7:].strip())
        except rerr.RegistryError:
            raise self._deny(needed, "authentication required", "invalid_token")
        grants = claims.get("access") or []
        for a in needed:
            have: set[str] = set()
            for g in grants:
                if isinstance(g, dict) and g.get("type") == a.type and g.get("name") == a.name:
                    acts = g.get("actions") or []
                    have |= ALL_ACTIONS if "*" in acts else set(acts)
            if not a.actions <= have:
                raise self._deny(needed, "insufficient scope", "insufficient_scope")
        return Identity(str(claims.get("sub") or "") or None, grants)

    def can(self, ident: Identity, access: Access) -> bool:
        """Whether an already authenticated request also holds `access` (e.g. pull on a mount's source)."""
        if self.mode == "none":
            return True
        if self.mode == "basic":
            return self.acl.allowed(ident.user, access) == access.actions
        for g in ident.token_access or []:
            if isinstance(g, dict) and g.get("type") == access.type and g.get("name") == access.name:
                acts = set(g.get("actions") or [])
                if "*" in acts or access.actions <= acts:
                    return True
        return False

    def issue_token(self, authorization: str | None, scopes: list[str], *,
                    form_user: str | None = None, form_password: str | None = None) -> dict[str, Any]:
        """The token endpoint: check credentials (if any), grant the allowed part of each scope."""
        if self.signer is None:
            raise rerr.Unsupported("this registry does not issue tokens")
        user: str | None = None
        creds = basic_credentials(authorization)
        if creds is None and form_user is not None:
            creds = (form_user, form_password or "")
        if creds is not None:
            if self.htpasswd is None or not self.htpasswd.check(*creds):
                raise rerr.Unauthorized("invalid username or password",
                                        headers=[("WWW-Authenticate", f'Basic realm="{self.basic_realm}"')])
            user = creds[0]
        granted = []
        for a in parse_scopes(scopes):
            granted.append(Access(a.type, a.name, self.acl.allowed(user, a)))
        token, issued, ttl = self.signer.issue(user or "", granted)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued))
        return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": stamp}
