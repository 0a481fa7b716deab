"""Parsing of what Docker clients put in queries, headers and bodies, with moby's error wording."""

from __future__ import annotations

import base64
import binascii
import json
import signal as _signal
from datetime import datetime
from typing import Any

from berth.errors import InvalidArgument
from berth.httpd import Request

Filters = dict[str, list[str]]


def filters(raw: str | None) -> Filters:
    """The `filters` query in both shapes clients send, as {name: [values]}.

    The docker CLI sends `{"label":{"a=b":true}}`, docker-py and Compose v1 `{"label":["a=b"]}`
    (moby's filters.FromJSON accepts both). Values mapped to false in the first shape are dropped.
    """
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter")
    if not isinstance(obj, dict):
        raise InvalidArgument("invalid filter")
    out: Filters = {}
    for name, values in obj.items():
        if isinstance(values, dict):
            out[name] = [str(v) for v, on in values.items() if on]
        elif isinstance(values, list):
            out[name] = [str(v) for v in values]
        elif isinstance(values, str):
            out[name] = [values]
        else:
            raise InvalidArgument("invalid filter")
    return out


def validate_filters(f: Filters, accepted: set[str] | frozenset[str]) -> Filters:
    for name in f:
        if name not in accepted:
            raise InvalidArgument(f"invalid filter '{name}'")
    return f


_SIGNALS: dict[str, int] = {
    name[3:]: int(sig) for name, sig in _signal.Signals.__members__.items() if name.startswith("SIG")
    and not name.startswith("SIG_") and name not in ("SIGRTMIN", "SIGRTMAX")
}
_RTMIN = int(_signal.SIGRTMIN)
_RTMAX = int(_signal.SIGRTMAX)
_SIGNALS["RTMIN"] = _RTMIN
_SIGNALS["RTMAX"] = _RTMAX
for _i in range(1, _RTMAX - _RTMIN):
    _SIGNALS[f"RTMIN+{_i}"] = _RTMIN + _i
    _SIGNALS[f"RTMAX-{_i}"] = _RTMAX - _i


def signal(raw: str) -> int:
    """A signal by number ("9") or name, with or without SIG ("KILL", "sigterm", "RTMIN+3")."""
    s = raw.strip()
    if s.lstrip("-").isdigit():
        n = int(s)
        if n <= 0 or n > _RTMAX:
            raise InvalidArgument(f"invalid signal: {raw}")
        return n
    name = s.upper()
    if name.startswith("SIG"):
        name = name[3:]
    n = _SIGNALS.get(name, 0)
    if not n:
        raise InvalidArgument(f"invalid signal: {raw}")
    return n


def timestamp(raw: str, what: str) -> float | None:
    """A point in time as clients send it: unix seconds with optional fraction ("1700000000.5"),
    or RFC 3339. None for "" (unset). The CLI turns durations such as "10m" into unix time itself.
    """
    if raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidArgument(f'invalid value for "{what}": failed to parse value as time or duration: "{raw}"')


def uint32(request: Request, name: str, what: str) -> int:
    """A required unsigned 32-bit integer (the resize height and width)."""
    v = request.arg(name) or ""
    if not v.isdigit() or int(v) > 0xFFFFFFFF:
        raise InvalidArgument(f'invalid resize {what} "{v}": invalid syntax')
    return int(v)


def int_or(request: Request, name: str, default: int | None) -> int | None:
    v = request.arg(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{v}": invalid syntax')


async def json_body(request: Request, *, required: bool = False) -> Any:
    """The JSON body, checking Content-Type as moby's CheckForJSON does (none is fine when empty)."""
    ct = request.headers.get("content-type")
    data = await request.body()
    # Lenient where moby is strict: a missing type, or a wrong one on an empty body, is accepted.
    if data and ct and ct.split(";", 1)[0].strip().lower() != "application/json":
        raise InvalidArgument(f"unsupported Content-Type header ({ct}): must be 'application/json'")
    if not data.strip():
        if required:
            raise InvalidArgument("invalid JSON: got EOF while reading request body")
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid JSON: {e}")


def json_object(request_body: Any) -> dict[str, Any]:
    if request_body is None:
        return {}
    if not isinstance(request_body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return request_body


def registry_auth(header: str | None) -> dict[str, Any] | None:
    """X-Registry-Auth: base64url JSON {username, password, serveraddress, identitytoken, ...}.

    Like moby, an undecodable header means "no credentials" rather than an error: the CLI sends
    `e30=` ("{}") when it has none.
    """
    if not header:
        return None
    obj = _b64json(header)
    if not isinstance(obj, dict) or not obj:
        return None
    return obj


def registry_config(header: str | None) -> dict[str, Any]:
    """X-Registry-Config (build): base64url JSON {registry: AuthConfig}."""
    if not header:
        return {}
    obj = _b64json(header)
    return obj if isinstance(obj, dict) else {}


def _b64json(value: str) -> Any:
    v = value.strip()
    v += "=" * (-len(v) % 4)
    try:
        raw = base64.urlsafe_b64decode(v)
    except (binascii.Error, ValueError):
        try:
            raw = base64.b64decode(v)
        except (binascii.Error, ValueError):
            return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def json_query(request: Request, name: str) -> Any:
    """A query parameter holding JSON (build's `buildargs`, `labels`, `cachefrom`)."""
    raw = request.arg(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid JSON in {name}: {e}")
