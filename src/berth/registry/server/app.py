"""The distribution API's handlers on berth.httpd: /v2/ routes, the token endpoint and /v1/search.

Each handler checks the name, asks the authenticator for the scope the operation needs, then talks
to storage and uploads. Errors are the spec's codes (berth.registry.errors) and leave through
`error_handler` as `{"errors":[...]}` with the status the spec gives."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from urllib.parse import parse_qs, quote, urlparse

from berth.errors import BerthError, InvalidArgument
from berth.httpd import FileBody, Request, Response, Router, dumps, empty_response
from berth.oci.digest import Digest
from berth.registry import errors as rerr
from berth.registry.names import valid_name, valid_tag
from berth.registry.server import manifests as mf
from berth.registry.server.auth import Access, Authenticator, Identity, basic_credentials
from berth.registry.server.storage import Storage
from berth.registry.server.uploads import Uploads

log = logging.getLogger("berth.registry")

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
JSON = ("Content-Type", "application/json")
_SMALL = 1 << 20          # blobs up to this size are sent in one write
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_STATUS_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND", 405: "UNSUPPORTED",
                 413: "SIZE_INVALID", 416: "BLOB_UPLOAD_INVALID", 429: "TOOMANYREQUESTS"}
CATALOG_MAX = 1000


def error_handler(request: Request, err: BerthError) -> Response:
    """The spec's error body; extra headers (challenge, Range) ride along."""
    if isinstance(err, rerr.RegistryError):
        body, headers = err.body(), list(err.headers)
    else:
        code = _STATUS_CODES.get(err.status, "UNKNOWN")
        body, headers = {"errors": [{"code": code, "message": str(err) or code.lower()}]}, []
        if err.status >= 500:
            log.error("%s %s: %s", request.method, request.target, err)
    return Response(err.status, [JSON, API_VERSION, *headers], dumps(body))


def _digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidArgument:
        raise rerr.DigestInvalid(f"invalid digest: {text!r}", detail={"digest": text})


def _name(request: Request) -> str:
    name = request.params["name"]
    if not valid_name(name):
        raise rerr.NameInvalid(detail={"name": name})
    return name


def _repo(name: str, *actions: str) -> list[Access]:
    return [Access("repository", name, frozenset(actions))]


class RegistryApp:
    """The registry as an httpd handler: `await serve(app, host=..., error_handler=error_handler)`."""

    def __init__(self, storage: Storage, auth: Authenticator | None = None, *, token_path: str | None = None) -> None:
        self.storage = storage
        self.uploads = Uploads(storage)
        self.auth = auth or Authenticator()
        self.router = Router()
        r = self.router
        r.add("GET", "/v2/", self.ping)
        r.add("GET", "/v2/_catalog", self.catalog)
        r.add("GET", "/v1/search", self.search)
        r.add(["GET", "HEAD"], "/v2/{name:.+}/manifests/{ref}", self.get_manifest)
        r.add("PUT", "/v2/{name:.+}/manifests/{ref}", self.put_manifest)
        r.add("DELETE", "/v2/{name:.+}/manifests/{ref}", self.delete_manifest)
        r.add(["GET", "HEAD"], "/v2/{name:.+}/blobs/{digest}", self.get_blob)
        r.add("DELETE", "/v2/{name:.+}/blobs/{digest}", self.delete_blob)
        r.add("POST", "/v2/{name:.+}/blobs/uploads/", self.start_upload)
        r.add("GET", "/v2/{name:.+}/blobs/uploads/{uuid}", self.upload_status)
        r.add("PATCH", "/v2/{name:.+}/blobs/uploads/{uuid}", self.upload_chunk)
        r.add("PUT", "/v2/{name:.+}/blobs/uploads/{uuid}", self.upload_finish)
        r.add("DELETE", "/v2/{name:.+}/blobs/uploads/{uuid}", self.upload_cancel)
        r.add("GET", "/v2/{name:.+}/tags/list", self.tags_list)
        r.add("GET", "/v2/{name:.+}/referrers/{digest}", self.referrers)
        if token_path:
            r.add(["GET", "POST"], token_path, self.token)

    async def __call__(self, request: Request) -> Response:
        response = await self.router(request)
        response.headers.append(API_VERSION)
        return response

    def _authorize(self, request: Request, needed: list[Access]) -> Identity:
        return self.auth.authenticate(request.headers.get("authorization"), needed)

    # -- base, catalog, search, token ------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        self._authorize(request, [])
        return Response(200, [JSON], b"{}")

    async def catalog(self, request: Request) -> Response:
        self._authorize(request, [Access("registry", "catalog", frozenset({"*"}))])
        n = _int_arg(request, "n")
        last = request.arg("last") or ""
        repos = [r for r in self.storage.repositories() if r > last]
        return _paged(request, "/v2/_catalog", "repositories", repos, None if n is None else n, CATALOG_MAX)

    async def search(self, request: Request) -> Response:
        """Docker's `GET /v1/search` answered from the catalog (what `docker search` reads)."""
        q = (request.arg("q") or "").strip().lower()
        n = _int_arg(request, "n") or 25
        ident = self._search_identity(request)
        found = [r for r in self.storage.repositories()
                 if q in r and self.auth.can(ident, Access("repository", r, frozenset({"pull"})))]
        results = [{"name": r, "description": "", "star_count": 0, "is_official": False, "is_automated": False,
                    "is_trusted": False} for r in found[:n]]
        return Response(200, [JSON], dumps({"num_pages": 1, "num_results": len(results), "page_size": n,
                                            "page": 1, "query": q, "results": results}))

    def _search_identity(self, request: Request) -> Identity:
        if self.auth.mode == "none":
            return Identity(None)
        creds = basic_credentials(request.headers.get("authorization"))
        if creds and self.auth.htpasswd is not None and self.auth.htpasswd.check(*creds):
            return Identity(creds[0])
        if self.auth.mode == "token":
            try:
                return self._authorize(request, [])
            except rerr.RegistryError:
                pass
        return Identity(None)

    async def token(self, request: Request) -> Response:
        scopes = request.query.get("scope", [])
        user = password = None
        if request.method == "POST":
            form = parse_qs((await request.body(1 << 16)).decode(errors="replace"))
            scopes = scopes + form.get("scope", [])
            user = form["username"][0] if form.get("username") else None
            password = form["password"][0] if form.get("password") else None
        doc = self.auth.issue_token(request.headers.get("authorization"), scopes,
                                    form_user=user, form_password=password)
        return Response(200, [JSON], dumps(doc))

    # -- manifests ---------------------------------------------------------------------------

    def _lookup(self, name: str, ref: str) -> tuple[Digest, str, int]:
        if ":" in ref:
            d = _digest(ref)
        else:
            if not valid_tag(ref):
                raise rerr.ManifestUnknown(detail={"tag": ref})
            found = self.storage.resolve_tag(name, ref)
            if found is None:
                raise rerr.ManifestUnknown(detail={"tag": ref})
            d = found
        info = self.storage.manifest_info(name, d)
        if info is None:
            raise rerr.ManifestUnknown(detail={"digest": str(d)})
        return d, info[0], info[1]

    async def get_manifest(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull"))
        d, media_type, size = self._lookup(name, request.params["ref"])
        headers = [("Content-Type", media_type), ("Docker-Content-Digest", str(d)),
                   ("Content-Length", str(size)), ("ETag", f'"{d}"')]
        if request.method == "HEAD":
            return Response(200, headers, b"")
        return Response(200, headers, self.storage.read_blob(d))

    async def put_manifest(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull", "push"))
        ref = request.params["ref"]
        tags: list[str] = []
        want: Digest | None = None
        if ":" in ref:
            want = _digest(ref)
        elif valid_tag(ref):
            tags.append(ref)
        else:
            raise rerr.TagInvalid(detail={"tag": ref})
        for t in request.query.get("tag", []):
            if not valid_tag(t):
                raise rerr.TagInvalid(detail={"tag": t})
            tags.append(t)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > mf.MAX_MANIFEST:
            raise rerr.ManifestTooBig(f"manifest exceeds {mf.MAX_MANIFEST} bytes")
        try:
            data = await request.body(mf.MAX_MANIFEST)
        except BerthError as e:
            if e.status == 413:
                raise rerr.ManifestTooBig(f"manifest exceeds {mf.MAX_MANIFEST} bytes")
            raise
        alg = want.algorithm if want else "sha256"
        d = Digest(alg, hashlib.new(alg, data).hexdigest())
        if want is not None and want != d:
            raise rerr.DigestInvalid("manifest digest did not match", detail={"digest": str(want)})
        m = mf.parse(data, request.headers.get("content-type"))
        self._check_references(name, m)
        subject = m.subject.digest if m.subject else None
        referrer = m.referrer_descriptor(d, len(data)) if m.subject else None
        self.storage.put_manifest(name, data, d, m.media_type, tags, subject, referrer)
        headers = [("Location", f"/v2/{name}/manifests/{d}"), ("Docker-Content-Digest", str(d)),
                   ("Content-Length", "0")]
        if subject is not None:
            headers.append(("OCI-Subject", str(subject)))
        if want is not None and tags:
            headers.append(("OCI-Tag", ",".join(tags)))
        return Response(201, headers, b"")

    def _check_references(self, name: str, m: mf.Manifest) -> None:
        for desc in m.blobs:
            if desc.foreign:
                continue
            size = self.storage.blob_in_repo(name, desc.digest)
            if size is None:
                raise rerr.ManifestBlobUnknown(f"blob unknown to registry: {desc.digest}",
                                               detail={"digest": str(desc.digest)})
            if size != desc.size:
                raise rerr.ManifestInvalid(f"size of {desc.digest} is {size}, manifest says {desc.size}")
            self.storage.touch_blob(desc.digest)
        for desc in m.children:
            if self.storage.manifest_info(name, desc.digest) is None:
                raise rerr.ManifestBlobUnknown(f"manifest unknown to repository: {desc.digest}",
                                               detail={"digest": str(desc.digest)})
            self.storage.touch_blob(desc.digest)

    async def delete_manifest(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "delete"))
        ref = request.params["ref"]
        if ":" in ref:
            if not self.storage.delete_manifest(name, _digest(ref)):
                raise rerr.ManifestUnknown(detail={"digest": ref})
        elif not valid_tag(ref) or not self.storage.delete_tag(name, ref):
            raise rerr.ManifestUnknown(detail={"tag": ref})
        return empty_response(202)

    # -- blobs --------------------------------------------------------------------------------

    async def get_blob(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull"))
        d = _digest(request.params["digest"])
        size = self.storage.blob_in_repo(name, d)
        if size is None:
            raise rerr.BlobUnknown(detail={"digest": str(d)})
        headers = [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", str(d)),
                   ("Accept-Ranges", "bytes"), ("ETag", f'"{d}"'), ("Cache-Control", "max-age=31536000")]
        start, end, status = 0, size - 1, 200
        rng = request.headers.get("range")
        if rng:
            start, end = _parse_range(rng, size)
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        length = end - start + 1
        headers.append(("Content-Length", str(length)))
        if request.method == "HEAD":
            self.storage.touch_blob(d)
            return Response(status, headers, b"")
        try:
            fd = os.open(self.storage.blob_path(d), os.O_RDONLY)
        except FileNotFoundError:  # collected between the check and here
            raise rerr.BlobUnknown(detail={"digest": str(d)})
        if length <= _SMALL:
            try:
                data = os.pread(fd, length, start)
            finally:
                os.close(fd)
            return Response(status, headers, data)
        return Response(status, headers, FileBody(fd, start, length))  # streamed from the file, never held whole

    async def delete_blob(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "delete"))
        d = _digest(request.params["digest"])
        if not self.storage.unlink_blob(name, d):
            raise rerr.BlobUnknown(detail={"digest": str(d)})
        return empty_response(202)

    # -- uploads ------------------------------------------------------------------------------

    async def start_upload(self, request: Request) -> Response:
        name = _name(request)
        ident = self._authorize(request, _repo(name, "pull", "push"))
        mount = request.arg("mount")
        if mount:
            d = _digest(mount)
            src = request.arg("from")
            if self._can_mount(ident, d, src):
                self.storage.link_blob(name, d)
                return Response(201, [("Location", f"/v2/{name}/blobs/{d}"), ("Docker-Content-Digest", str(d)),
                                      ("Content-Length", "0")], b"")
        digest = request.arg("digest")
        up = self.uploads.start(name, request.arg("digest-algorithm") or "sha256")
        if digest is not None:
            # monolithic: the whole blob in the POST body
            d = _digest(digest)
            try:
                await self.uploads.write(up, request.stream(), None)
            except BaseException:
                self.uploads.cancel(up)
                raise
            await self.uploads.finish(up, d)
            return Response(201, [("Location", f"/v2/{name}/blobs/{d}"), ("Docker-Content-Digest", str(d)),
                                  ("Content-Length", "0")], b"")
        return Response(202, self._upload_headers(name, up.uuid, up.range_header), b"")

    def _can_mount(self, ident: Identity, d: Digest, src: str | None) -> bool:
        if src:
            if not valid_name(src) or self.storage.blob_in_repo(src, d) is None:
                return False
            return self.auth.can(ident, Access("repository", src, frozenset({"pull"})))
        # Anonymous mount (no `from`): only where there is no access control to bypass.
        return self.auth.mode == "none" and self.storage.blob_size(d) is not None

    @staticmethod
    def _upload_headers(name: str, uuid: str, rng: str) -> list[tuple[str, str]]:
        return [("Location", f"/v2/{name}/blobs/uploads/{uuid}"), ("Range", rng), ("Docker-Upload-UUID", uuid),
                ("Content-Length", "0")]

    async def upload_status(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull", "push"))
        up = self.uploads.get(name, request.params["uuid"])
        return Response(204, self._upload_headers(name, up.uuid, up.range_header)[:-1], b"")

    async def upload_chunk(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull", "push"))
        up = self.uploads.get(name, request.params["uuid"])
        try:
            await self.uploads.write(up, request.stream(), request.headers.get("content-range"),
                                     request.headers.get("content-length"))
        except rerr.RangeInvalid as e:
            e.headers = self._upload_headers(name, up.uuid, up.range_header)[:-1]
            raise
        return Response(202, self._upload_headers(name, up.uuid, up.range_header), b"")

    async def upload_finish(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull", "push"))
        up = self.uploads.get(name, request.params["uuid"])
        digest = request.arg("digest")
        if not digest:
            raise rerr.DigestInvalid("digest missing")
        d = _digest(digest)
        try:
            await self.uploads.write(up, request.stream(), request.headers.get("content-range"),
                                     request.headers.get("content-length"))
        except rerr.RangeInvalid as e:
            e.headers = self._upload_headers(name, up.uuid, up.range_header)[:-1]
            raise
        await self.uploads.finish(up, d)
        return Response(201, [("Location", f"/v2/{name}/blobs/{d}"), ("Docker-Content-Digest", str(d)),
                              ("Content-Length", "0")], b"")

    async def upload_cancel(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull", "push"))
        up = self.uploads.get(name, request.params["uuid"])
        self.uploads.cancel(up)
        return empty_response(204)

    # -- tags, referrers -----------------------------------------------------------------------

    async def tags_list(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull"))
        if not self.storage.repo_exists(name):
            raise rerr.NameUnknown(detail={"name": name})
        n = _int_arg(request, "n")
        last = request.arg("last") or ""
        tags = [t for t in self.storage.tags(name) if t > last]
        return _paged(request, f"/v2/{name}/tags/list", "tags", tags, n, None, extra={"name": name})

    async def referrers(self, request: Request) -> Response:
        name = _name(request)
        self._authorize(request, _repo(name, "pull"))
        d = _digest(request.params["digest"])
        entries = self.storage.referrers(name, d)
        headers = [("Content-Type", mf.OCI_INDEX)]
        at = request.arg("artifactType")
        if at:
            entries = [e for e in entries if e.get("artifactType") == at]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        body = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}
        return Response(200, headers, dumps(body))


def _int_arg(request: Request, name: str) -> int | None:
    v = request.arg(name)
    if v is None or v == "":
        return None
    if not v.isdigit():
        raise rerr.PaginationInvalid(f"invalid {name}: {v!r}")
    return int(v)


def _paged(request: Request, path: str, key: str, items: list[str], n: int | None, cap: int | None,
           extra: dict[str, str] | None = None) -> Response:
    """A lexically ordered listing, `n` at a time, with an RFC 5988 `Link` to the next page."""
    limit = n if n is not None else cap
    headers = [JSON]
    page = items if limit is None else items[:limit]
    if limit is not None and limit > 0 and len(items) > limit:
        headers.append(("Link", f'<{path}?n={limit}&last={quote(page[-1])}>; rel="next"'))
    body: dict[str, object] = dict(extra or {})
    body[key] = page
    return Response(200, headers, dumps(body))


def _parse_range(value: str, size: int) -> tuple[int, int]:
    """One `bytes=` range, clamped to the blob; 416 when it cannot be satisfied."""
    m = _RANGE.match(value.strip())
    bad = rerr.RangeInvalid(f"invalid range {value!r}", headers=[("Content-Range", f"bytes */{size}")])
    if not m or (not m.group(1) and not m.group(2)):
        raise bad
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0:
            raise bad
        return max(size - suffix, 0), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise bad
    return start, min(end, size - 1)


def token_path_of(realm: str) -> str:
    """The path this server answers token requests on, from the realm URL it advertises."""
    return urlparse(realm).path or "/token"
