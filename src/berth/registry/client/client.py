"""A distribution-protocol client (httpx AsyncClient): auth challenges, resolve, blobs in and out, manifests.

Small on purpose: the image store supplies where bytes go (`async for chunk in fetch_blob(...)` or
`write_blob_to(..., writer)`), berthd supplies credentials (a docker config dict or `Credentials`),
and everything else (progress, unpacking, parallelism) lives with the caller.

    async with RegistryClient("127.0.0.1:5000") as c:
        r = await c.resolve("library/busybox", "latest", Platform.parse("linux/amd64"))
        async for chunk in c.fetch_blob("library/busybox", layer_digest, size=n): ...
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx

from berth.errors import InvalidArgument, NotFound
from berth.oci.digest import Digest
from berth.oci.mediatypes import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from berth.oci.mediatypes import DOCKER_MANIFEST_LIST as DOCKER_LIST
from berth.registry import errors as rerr
from berth.registry.client import credentials as credmod
from berth.registry.client.credentials import Credentials
from berth.registry.client.platform import Platform, choose

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20
_CHALLENGE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_RETRIES = 3


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _CHALLENGE.finditer(rest)}
    return scheme.lower(), params


def is_loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.endswith("]") or "]:" in host else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass
class Resolved:
    """What `resolve` found: the platform's manifest (bytes as served), and its image config."""

    digest: Digest
    media_type: str
    manifest: bytes
    config: bytes | None
    index_digest: Digest | None = None
    index: bytes | None = None

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.manifest)
        assert isinstance(doc, dict)
        return doc


def _scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions)}"


class RegistryClient:
    """One registry host. Tokens are cached per scope set; Basic credentials are sent once challenged."""

    def __init__(self, host: str, *, credentials: Credentials | None = None,
                 docker_config: dict[str, Any] | None = None, insecure: bool | None = None,
                 timeout: float = 60.0, verify: bool | str = True,
                 user_agent: str = "berth") -> None:
        self.host = host
        if insecure is None:
            insecure = is_loopback_host(host)  # as Docker: loopback registries are insecure by default
        self.base = f"{'http' if insecure else 'https'}://{host}"
        self._explicit = credentials
        self._docker_config = docker_config
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), verify=verify,
                                       follow_redirects=True, headers={"User-Agent": user_agent})
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- auth ---------------------------------------------------------------------------------

    async def _credentials(self) -> Credentials | None:
        if not self._creds_loaded:
            if self._explicit is not None:
                self._creds = self._explicit
            elif self._docker_config is not None:
                self._creds = await asyncio.to_thread(credmod.lookup, self._docker_config, self.host)
            self._creds_loaded = True
        return self._creds

    async def _auth_header(self, scopes: list[str]) -> str | None:
        if self._challenge is None:
            return None
        scheme, params = self._challenge
        creds = await self._credentials()
        if scheme == "basic":
            if creds is None or not creds.username:
                return None
            import base64

            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if scheme == "bearer":
            if creds is not None and creds.registry_token:
                return f"Bearer {creds.registry_token}"
            key = " ".join(sorted(scopes))
            token = self._tokens.get(key)
            if token is None:
                token = await self._fetch_token(params, scopes, creds)
                self._tokens[key] = token
            return f"Bearer {token}"
        return None

    async def _fetch_token(self, params: dict[str, str], scopes: list[str], creds: Credentials | None) -> str:
        realm = params.get("realm")
        if not realm:
            raise rerr.Unauthorized("registry sent a Bearer challenge without a realm")
        service = params.get("service", "")
        if creds is not None and creds.identity_token:
            # OAuth2 refresh-token grant, as docker does with an identity token
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                    "client_id": "berth", "scope": " ".join(scopes)}
            r = await self._http.post(realm, data=form)
        else:
            q: list[tuple[str, str]] = [("service", service)] if service else []
            q += [("scope", s) for s in scopes]
            auth = None
            if creds is not None and creds.username:
                q.append(("account", creds.username))
                auth = httpx.BasicAuth(creds.username, creds.password)
            r = await self._http.get(realm + ("&" if "?" in realm else "?") + urlencode(q), auth=auth)
        if r.status_code != 200:
            if r.status_code in (401, 403):
                raise rerr.Unauthorized("unauthorized: incorrect username or password")
            raise rerr.from_body(r.status_code, r.content)
        doc = r.json()
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise rerr.Unauthorized("token endpoint returned no token")
        return str(token)

    async def request(self, method: str, url: str, scopes: list[str], *, headers: dict[str, str] | None = None,
                      content: bytes | AsyncIterable[bytes] | None = None, stream: bool = False,
                      ok: tuple[int, ...] = (200,)) -> httpx.Response:
        """Send with auth; on a 401 challenge, authenticate for `scopes` and retry once.
        A streaming body can't be replayed, so callers that stream send a small request first."""
        full = url if url.startswith(("http://", "https://")) else urljoin(self.base + "/", url.lstrip("/"))
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            auth = await self._auth_header(scopes)
            if auth:
                hdrs["Authorization"] = auth
            req = self._http.build_request(method, full, headers=hdrs, content=content)
            r = await self._http.send(req, stream=stream)
            if r.status_code == 401 and attempt == 0 and not isinstance(content, AsyncIterable):
                challenge = r.headers.get("www-authenticate")
                await r.aread()
                await r.aclose()
                if not challenge:
                    break
                old = self._challenge
                self._challenge = parse_challenge(challenge)
                key = " ".join(sorted(scopes))
                if old is not None and old[0] == self._challenge[0] == "bearer":
                    self._tokens.pop(key, None)  # expired or lacking scope: get a fresh one
                elif old is not None and old == self._challenge and self._challenge[0] == "basic":
                    break  # credentials were sent and refused
                continue
            if r.status_code in ok:
                return r
            body = await r.aread()
            await r.aclose()
            raise rerr.from_body(r.status_code, body)
        raise rerr.Unauthorized("authentication required")

    async def ping(self) -> None:
        """`GET /v2/`: learn the auth challenge, check credentials if any."""
        await self.request("GET", "/v2/", [])

    async def login(self) -> str:
        """Check the credentials (`docker login`); returns an identity token if the registry issued one."""
        r = await self._http.get(f"{self.base}/v2/")
        if r.status_code == 200:
            return ""
        if r.status_code != 401 or not r.headers.get("www-authenticate"):
            raise rerr.from_body(r.status_code, r.content)
        self._challenge = parse_challenge(r.headers["www-authenticate"])
        creds = await self._credentials()
        if creds is None:
            raise rerr.Unauthorized("login requires credentials")
        scheme, params = self._challenge
        if scheme == "bearer":
            await self._fetch_token(params, [], creds)
        await self.request("GET", "/v2/", [])
        return ""

    # -- manifests ----------------------------------------------------------------------------

    async def get_manifest(self, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> tuple[bytes, str, Digest]:
        """The manifest bytes as served, their media type and their (verified) digest."""
        r = await self.request("GET", f"/v2/{repo}/manifests/{ref}", [_scope(repo, "pull")],
                               headers={"Accept": accept}, stream=True)
        try:
            data = bytearray()
            async for chunk in r.aiter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise rerr.ManifestInvalid(f"manifest exceeds {MAX_MANIFEST} bytes")
        finally:
            await r.aclose()
        body = bytes(data)
        want = ref if ":" in ref else r.headers.get("docker-content-digest")
        if want:
            d = Digest.parse(want)
            if hashlib.new(d.algorithm, body).hexdigest() != d.hex:
                raise rerr.DigestInvalid(f"manifest digest mismatch: expected {d}")
        else:
            d = Digest("sha256", hashlib.sha256(body).hexdigest())
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        if media_type in ("", "application/json", "text/plain"):
            try:
                media_type = json.loads(body).get("mediaType") or media_type
            except (ValueError, AttributeError):
                pass
        return body, media_type, d

    async def head_manifest(self, repo: str, ref: str) -> tuple[Digest, str, int] | None:
        try:
            r = await self.request("HEAD", f"/v2/{repo}/manifests/{ref}", [_scope(repo, "pull")],
                                   headers={"Accept": MANIFEST_ACCEPT})
        except rerr.ManifestUnknown:
            return None
        except rerr.RegistryError as e:
            if e.status == 404:
                return None
            raise
        d = r.headers.get("docker-content-digest")
        if not d:
            return None
        return Digest.parse(d), r.headers.get("content-type", ""), int(r.headers.get("content-length") or 0)

    async def resolve(self, repo: str, ref: str, platform: Platform | None = None) -> Resolved:
        """tag or digest → (index →) the platform's manifest → its config."""
        body, media_type, d = await self.get_manifest(repo, ref)
        index_digest = index = None
        if media_type in INDEX_TYPES:
            doc = json.loads(body)
            entry = choose(doc.get("manifests") or [], platform or Platform.host())
            if entry is None:
                want = platform or Platform.host()
                raise NotFound(f"no matching manifest for {want} in the manifest list entries")
            index_digest, index = d, body
            body, media_type, d = await self.get_manifest(repo, entry["digest"])
        doc = json.loads(body)
        config = None
        cfg = doc.get("config")
        if isinstance(cfg, dict) and cfg.get("digest") and int(cfg.get("size") or 0) <= MAX_MANIFEST:
            parts = [c async for c in self.fetch_blob(repo, cfg["digest"], size=cfg.get("size"))]
            config = b"".join(parts)
        return Resolved(d, media_type, body, config, index_digest, index)

    async def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Digest:
        r = await self.request("PUT", f"/v2/{repo}/manifests/{ref}", [_scope(repo, "pull", "push")],
                               headers={"Content-Type": media_type}, content=data, ok=(200, 201, 202))
        header = r.headers.get("docker-content-digest")
        return Digest.parse(header) if header else Digest("sha256", hashlib.sha256(data).hexdigest())

    async def delete_manifest(self, repo: str, ref: str) -> None:
        await self.request("DELETE", f"/v2/{repo}/manifests/{ref}", [_scope(repo, "delete")], ok=(200, 202))

    # -- blobs --------------------------------------------------------------------------------

    async def blob_exists(self, repo: str, digest: str | Digest) -> int | None:
        """The blob's size if the repository has it, else None."""
        try:
            r = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}", [_scope(repo, "pull")])
        except rerr.RegistryError as e:
            if e.status == 404:
                return None
            raise
        return int(r.headers.get("content-length") or 0)

    async def fetch_blob(self, repo: str, digest: str | Digest, *, size: int | None = None, offset: int = 0,
                         hasher: Any = None) -> AsyncIterator[bytes]:
        """The blob's bytes from `offset`, verified against `digest` at the end (DIGEST_INVALID if not).

        A dropped connection is resumed with `Range` where it stopped (up to 3 times). To resume across
        calls, pass the `offset` already held and a `hasher` fed with those bytes."""
        d = digest if isinstance(digest, Digest) else Digest.parse(digest)
        h = hasher if hasher is not None else d.hasher()
        if offset and hasher is None:
            raise InvalidArgument("resuming a blob at an offset needs the hasher of the bytes before it")
        pos = offset
        failures = 0
        while True:
            headers = {"Range": f"bytes={pos}-"} if pos else {}
            try:
                r = await self.request("GET", f"/v2/{repo}/blobs/{d}", [_scope(repo, "pull")], headers=headers,
                                       stream=True, ok=(200, 206))
            except rerr.RegistryError as e:
                if e.status == 416 and size is not None and pos == size:
                    break
                raise
            try:
                skip = pos if pos and r.status_code == 200 else 0  # Range ignored: drop what we hold
                async for chunk in r.aiter_raw(1 << 20):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    h.update(chunk)
                    pos += len(chunk)
                    yield chunk
                break
            except (httpx.TransportError, httpx.StreamError):
                failures += 1
                if failures >= _RETRIES:
                    raise
            finally:
                await r.aclose()
        if size is not None and pos != size:
            raise rerr.SizeInvalid(f"blob {d}: got {pos} bytes, expected {size}")
        if h.hexdigest() != d.hex:
            raise rerr.DigestInvalid(f"blob {d}: digest mismatch (got {d.algorithm}:{h.hexdigest()})")

    async def write_blob_to(self, repo: str, digest: str | Digest,
                            writer: Callable[[bytes], Awaitable[object] | object], *, size: int | None = None) -> int:
        """Stream a blob into `writer` (sync or async); returns the byte count. Verified like fetch_blob."""
        n = 0
        async for chunk in self.fetch_blob(repo, digest, size=size):
            res = writer(chunk)
            if asyncio.iscoroutine(res):
                await res
            n += len(chunk)
        return n

    async def delete_blob(self, repo: str, digest: str | Digest) -> None:
        await self.request("DELETE", f"/v2/{repo}/blobs/{digest}", [_scope(repo, "delete")], ok=(200, 202))

    async def mount_blob(self, repo: str, digest: str | Digest, from_repo: str | None) -> str | None:
        """Cross-repository mount. None when mounted (201); else the upload location the registry opened."""
        q = {"mount": str(digest)}
        if from_repo:
            q["from"] = from_repo
        scopes = [_scope(repo, "pull", "push")] + ([_scope(from_repo, "pull")] if from_repo else [])
        r = await self.request("POST", f"/v2/{repo}/blobs/uploads/?{urlencode(q)}", scopes, ok=(201, 202))
        if r.status_code == 201:
            return None
        return r.headers["location"]

    async def start_upload(self, repo: str) -> str:
        r = await self.request("POST", f"/v2/{repo}/blobs/uploads/", [_scope(repo, "pull", "push")], ok=(202,))
        return r.headers["location"]

    async def upload_status(self, repo: str, location: str) -> int:
        """How many bytes the registry holds for an upload (to resume a chunked push)."""
        r = await self.request("GET", location, [_scope(repo, "pull", "push")], ok=(204,))
        rng = r.headers.get("range", "0-0")
        end = int(rng.split("-")[1])
        return 0 if end == 0 and rng == "0-0" else end + 1

    async def cancel_upload(self, repo: str, location: str) -> None:
        await self.request("DELETE", location, [_scope(repo, "pull", "push")], ok=(200, 204))

    async def upload_blob(self, repo: str, digest: str | Digest, data: bytes | AsyncIterable[bytes], *,
                          size: int | None = None, chunk_size: int | None = None, mount_from: str | None = None,
                          location: str | None = None, offset: int = 0) -> Digest:
        """Push a blob: mount it from `mount_from` if possible, else upload it.

        Monolithic (one streamed PUT) by default; with `chunk_size`, PATCH chunks with Content-Range.
        `location` and `offset` resume an earlier chunked upload (see `upload_status`)."""
        d = digest if isinstance(digest, Digest) else Digest.parse(digest)
        scopes = [_scope(repo, "pull", "push")]
        if location is None and mount_from:
            location = await self.mount_blob(repo, d, mount_from)
            if location is None:
                return d
        if location is None:
            location = await self.start_upload(repo)
        if chunk_size is None:
            headers = {"Content-Type": "application/octet-stream"}
            if size is not None:
                headers["Content-Length"] = str(size)
            elif isinstance(data, bytes):
                headers["Content-Length"] = str(len(data))
            r = await self.request("PUT", _with_query(location, digest=str(d)), scopes, headers=headers,
                                   content=data, ok=(201, 204))
            await r.aclose()
            return d
        pos = offset
        async for chunk in _chunks(data, chunk_size):
            headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{pos}-{pos + len(chunk) - 1}",
                       "Content-Length": str(len(chunk))}
            r = await self.request("PATCH", location, scopes, headers=headers, content=chunk, ok=(202,))
            location = r.headers.get("location") or location
            pos += len(chunk)
        await self.request("PUT", _with_query(location, digest=str(d)), scopes,
                           headers={"Content-Length": "0"}, content=b"", ok=(201, 204))
        return d

    # -- listings -----------------------------------------------------------------------------

    async def tags(self, repo: str, page_size: int | None = None) -> list[str]:
        """Every tag, following `Link` pagination."""
        return await self._listing(f"/v2/{repo}/tags/list", "tags", [_scope(repo, "pull")], page_size)

    async def catalog(self, page_size: int | None = None) -> list[str]:
        return await self._listing("/v2/_catalog", "repositories", ["registry:catalog:*"], page_size)

    async def _listing(self, path: str, key: str, scopes: list[str], page_size: int | None) -> list[str]:
        out: list[str] = []
        url: str | None = path + (f"?n={page_size}" if page_size else "")
        while url:
            r = await self.request("GET", url, scopes)
            out.extend(r.json().get(key) or [])
            url = _next_link(r.headers.get("link"))
        return out

    async def referrers(self, repo: str, digest: str | Digest,
                        artifact_type: str | None = None) -> list[dict[str, Any]]:
        q = f"?{urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        r = await self.request("GET", f"/v2/{repo}/referrers/{digest}{q}", [_scope(repo, "pull")])
        return list(r.json().get("manifests") or [])


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return m.group(1) if m else None


def _with_query(location: str, **params: str) -> str:
    return location + ("&" if "?" in location else "?") + urlencode(params)


async def _chunks(data: bytes | AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        for i in range(0, len(data), size):
            yield data[i:i + size]
        return
    buf = bytearray()
    async for part in data:
        buf += part
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)
