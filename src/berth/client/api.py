"""The Engine API client the CLI uses: version negotiation, JSON calls, streams and hijacks.

Every command starts as docker's does: `HEAD /_ping` (unversioned), read `Api-Version`, and prefix
later paths with `/v<min(ours, server's)>`. A missing header means 1.24; DOCKER_API_VERSION (or
BERTH_API_VERSION) pins the version and skips negotiation."""

from __future__ import annotations

import os

from berth import fastjson
from berth.client import errors
from berth.client.hosts import TLSConfig, parse_host, select_host
from berth.client.http import ConnectError, Connection, Hijacked, ProtocolError, Response, connect

TYPE_CHECKING = False  # collections.abc and typing cost milliseconds on every command
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

DEFAULT_VERSION = "1.50"
FALLBACK_VERSION = "1.24"
USER_AGENT = "Berth-Client/0.1.0 (linux)"

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def query_escape(s: str) -> str:
    """Go's url.QueryEscape (spaces become '+'), without importing urllib."""
    out = []
    for b in s.encode():
        if b in _SAFE:
            out.append(chr(b))
        elif b == 0x20:
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def path_escape(s: str) -> str:
    """Escape a path segment the way Go's url.URL does for the API's `{name}` parts (keeps '/' and ':')."""
    out = []
    for b in s.encode():
        if b in _SAFE or b in b"/:@!$&'()*+,;=":
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def encode_query(params: Mapping[str, object] | None) -> str:
    """Go's url.Values.Encode: keys sorted; list values repeat the key; None values are dropped."""
    if not params:
        return ""
    parts = []
    for k in sorted(params):
        v = params[k]
        if v is None:
            continue
        values = v if isinstance(v, (list, tuple)) else [v]
        for one in values:
            if isinstance(one, bool):
                one = "1" if one else "0"
            parts.append(f"{query_escape(k)}={query_escape(str(one))}")
    return "&".join(parts)


def version_lt(a: str, b: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in v.split("."))
        except ValueError:
            return (0,)

    return key(a) < key(b)


class APIClient:
    """One daemon, many requests. Idle keep-alive connections are reused; streams and hijacks
    own their connection until closed."""

    def __init__(self, host: str | None = None, tls: TLSConfig | None = None, version: str | None = None,
                 timeout: float | None = None) -> None:
        self.host = host if host else select_host()
        self.endpoint = parse_host(self.host, tls is not None)
        self.tls = tls
        self.timeout = timeout
        manual = version or os.environ.get("BERTH_API_VERSION") or os.environ.get("DOCKER_API_VERSION")
        self.manual_version = manual.lstrip("v") if manual else None
        self.version: str | None = self.manual_version
        self.ping_headers: dict[str, str] = {}
        self._idle: list[Connection] = []
        self.host_header = "api.moby.localhost" if self.endpoint.scheme == "unix" else \
            f"{self.endpoint.address[0]}:{self.endpoint.address[1]}"

    # -- connections --------------------------------------------------------------------------

    def _new_conn(self) -> Connection:
        try:
            sock = connect(self.endpoint, self.tls, self.timeout)
        except ConnectError:
            raise errors.ConnectionFailed(self.host) from None
        return Connection(sock, self.host_header)

    def _release(self, conn: Connection) -> None:
        if conn.reusable and not conn.buf and len(self._idle) < 4:
            self._idle.append(conn)
        else:
            conn.sock.close()

    def close(self) -> None:
        for c in self._idle:
            c.sock.close()
        self._idle.clear()

    # -- negotiation --------------------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        """`HEAD /_ping`; a status other than 200/500 is retried with GET, as docker does."""
        resp = self._send("HEAD", "/_ping", versioned=False)
        if resp.status not in (200, 500):
            resp.read()
            resp = self._send("GET", "/_ping", versioned=False)
        resp.read()
        self.ping_headers = resp.headers
        return resp.headers

    def negotiate(self) -> str:
        if self.version is None:
            headers = self.ping()
            server = headers.get("api-version") or FALLBACK_VERSION
            self.version = server if version_lt(server, DEFAULT_VERSION) else DEFAULT_VERSION
        return self.version

    def api_version(self) -> str:
        return self.negotiate()

    def server_os(self) -> str:
        if not self.ping_headers and self.manual_version is None:
            self.negotiate()
        return self.ping_headers.get("ostype", "linux")

    # -- requests -----------------------------------------------------------------------------

    def url(self, path: str, params: Mapping[str, object] | None = None, versioned: bool = True) -> str:
        prefix = f"/v{self.negotiate()}" if versioned else ""
        q = encode_query(params)
        return f"{prefix}{path}?{q}" if q else f"{prefix}{path}"

    def _send(self, method: str, path: str, params: Mapping[str, object] | None = None, *,
              body: bytes | Iterable[bytes] | None = None, headers: dict[str, str] | None = None,
              versioned: bool = True) -> Response:
        target = self.url(path, params, versioned)
        hdrs = [("User-Agent", USER_AGENT)]
        if headers:
            hdrs += list(headers.items())
        retry_idle = True
        while True:
            conn = self._idle.pop() if self._idle else None
            fresh = conn is None
            if conn is None:
                conn = self._new_conn()
            try:
                conn.send_request(method, target, hdrs, body)
                resp = conn.read_response(method)
            except (OSError, ProtocolError) as e:
                conn.sock.close()
                # An idle keep-alive connection may have been closed by the daemon: retry once, fresh.
                if not fresh and retry_idle and (body is None or isinstance(body, bytes)):
                    retry_idle = False
                    continue
                if isinstance(e, ProtocolError):
                    raise
                raise errors.ConnectionFailed(self.host) from None
            resp.on_release = self._release  # type: ignore[attr-defined]
            resp.url = target  # type: ignore[attr-defined]
            return resp

    def request(self, method: str, path: str, params: Mapping[str, object] | None = None, *,
                json: object = None, body: bytes | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None, versioned: bool = True) -> Response:
        """Send a request and return the response with its body unread; raise the typed
        DaemonError for a 4xx/5xx answer."""
        hdrs = dict(headers or {})
        if json is not None:
            body = (fastjson.dumps(json, ensure_ascii=False) + "\n").encode()
            hdrs.setdefault("Content-Type", "application/json")
        resp = self._send(method, path, params, body=body, headers=hdrs, versioned=versioned)
        if resp.status >= 400:
            data = resp.read()
            raise errors.from_response(resp.status, resp.header("content-type"), data, resp.url)  # type: ignore[attr-defined]
        return resp

    def get_json(self, path: str, params: Mapping[str, object] | None = None, **kw: object) -> object:
        data = self.request("GET", path, params, **kw).read()  # type: ignore[arg-type]
        return fastjson.loads(data) if data else None

    def post_json(self, path: str, params: Mapping[str, object] | None = None, json: object = None,
                  **kw: object) -> object:
        data = self.request("POST", path, params, json=json, **kw).read()  # type: ignore[arg-type]
        return fastjson.loads(data) if data.strip() else None

    def post(self, path: str, params: Mapping[str, object] | None = None, json: object = None, **kw: object) -> int:
        """POST, discard the body, return the status (304 counts as success, as for docker)."""
        resp = self.request("POST", path, params, json=json, **kw)  # type: ignore[arg-type]
        resp.read()
        return resp.status

    def delete(self, path: str, params: Mapping[str, object] | None = None) -> object:
        data = self.request("DELETE", path, params).read()
        return fastjson.loads(data) if data.strip() else None

    def stream_json(self, method: str, path: str, params: Mapping[str, object] | None = None,
                    **kw: object) -> Iterator[object]:
        """A JSON-message stream (pull, push, load, build, events, stats)."""
        resp = self.request(method, path, params, **kw)  # type: ignore[arg-type]
        return resp.iter_json()

    def hijack(self, path: str, params: Mapping[str, object] | None = None, json: object = None,
               content_type: str = "text/plain") -> tuple[Hijacked, Response]:
        """Attach/exec-start: `Connection: Upgrade`, `Upgrade: tcp`; the daemon must answer 101."""
        hdrs = {"Connection": "Upgrade", "Upgrade": "tcp"}
        body: bytes | None = None
        if json is not None:
            body = fastjson.dumps(json, compact=True).encode() + b"\n"
            hdrs["Content-Type"] = "application/json"
        else:
            hdrs["Content-Type"] = content_type
        conn = self._new_conn()
        target = self.url(path, params)
        try:
            conn.send_request("POST", target, [("User-Agent", USER_AGENT), *hdrs.items()], body)
            resp = conn.read_response("POST")
        except (OSError, ProtocolError):
            conn.sock.close()
            raise errors.ConnectionFailed(self.host) from None
        if resp.status >= 400:
            data = resp.read()
            conn.sock.close()
            raise errors.from_response(resp.status, resp.header("content-type"), data, target)
        if resp.status != 101:
            conn.sock.close()
            raise errors.DaemonError(f"unable to upgrade to tcp, received {resp.status}", resp.status,
                                     prefixed=False)
        return resp.hijack(), resp
