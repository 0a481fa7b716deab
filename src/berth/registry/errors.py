"""The distribution spec's error codes as typed berth errors.

Each class is a subclass of the berth error whose HTTP status the spec gives, so anything that maps
`BerthError.status` (berth.httpd's error hook) answers right; `code` and `detail` fill the
`{"errors":[{"code","message","detail"}]}` body the spec requires. The client raises the same classes
when a registry answers with one of these codes."""

from __future__ import annotations

from typing import Any

from berth import errors as be


class RegistryError(be.BerthError):
    code = "UNKNOWN"
    default_message = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None, *, headers: list[tuple[str, str]] | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.detail = detail
        # extra response headers (e.g. WWW-Authenticate on 401, Range on 416)
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return {"errors": [err]}


class BlobUnknown(RegistryError, be.NotFound):
    code = "BLOB_UNKNOWN"
    default_message = "blob unknown to registry"


class BlobUploadInvalid(RegistryError, be.InvalidArgument):
    code = "BLOB_UPLOAD_INVALID"
    default_message = "blob upload invalid"


class BlobUploadUnknown(RegistryError, be.NotFound):
    code = "BLOB_UPLOAD_UNKNOWN"
    default_message = "blob upload unknown to registry"


class DigestInvalid(RegistryError, be.InvalidArgument):
    code = "DIGEST_INVALID"
    default_message = "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError, be.InvalidArgument):
    code = "MANIFEST_BLOB_UNKNOWN"
    default_message = "blob unknown to registry"


class ManifestInvalid(RegistryError, be.InvalidArgument):
    code = "MANIFEST_INVALID"
    default_message = "manifest invalid"


class ManifestUnknown(RegistryError, be.NotFound):
    code = "MANIFEST_UNKNOWN"
    default_message = "manifest unknown"


class NameInvalid(RegistryError, be.InvalidArgument):
    code = "NAME_INVALID"
    default_message = "invalid repository name"


class NameUnknown(RegistryError, be.NotFound):
    code = "NAME_UNKNOWN"
    default_message = "repository name not known to registry"


class SizeInvalid(RegistryError, be.InvalidArgument):
    code = "SIZE_INVALID"
    default_message = "provided length did not match content length"


class TagInvalid(RegistryError, be.InvalidArgument):
    code = "TAG_INVALID"
    default_message = "manifest tag did not match URI"


class Unauthorized(RegistryError, be.Unauthorized):
    code = "UNAUTHORIZED"
    default_message = "authentication required"


class Denied(RegistryError, be.Forbidden):
    code = "DENIED"
    default_message = "requested access to the resource is denied"


class Unsupported(RegistryError, be.BerthError):
    code = "UNSUPPORTED"
    default_message = "The operation is unsupported."
    status = 405


class TooManyRequests(RegistryError, be.BerthError):
    code = "TOOMANYREQUESTS"
    default_message = "too many requests"
    status = 429


class RangeInvalid(RegistryError, be.BerthError):
    code = "BLOB_UPLOAD_INVALID"
    default_message = "requested range not satisfiable"
    status = 416


class ManifestTooBig(RegistryError, be.BerthError):
    code = "SIZE_INVALID"
    default_message = "manifest too big"
    status = 413


class PaginationInvalid(RegistryError, be.InvalidArgument):
    code = "PAGINATION_NUMBER_INVALID"
    default_message = "invalid number of results requested"


BY_CODE: dict[str, type[RegistryError]] = {}
for _cls in (BlobUnknown, BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, ManifestBlobUnknown, ManifestInvalid,
             ManifestUnknown, NameInvalid, NameUnknown, SizeInvalid, TagInvalid, Unauthorized, Denied, Unsupported,
             TooManyRequests):
    BY_CODE.setdefault(_cls.code, _cls)


def from_body(status: int, body: bytes) -> RegistryError:
    """The typed error for a registry's error answer (first entry of its `errors` list)."""
    import json

    code, message, detail = "", "", None
    try:
        doc = json.loads(body)
        first = doc["errors"][0]
        code, message, detail = str(first.get("code", "")), str(first.get("message", "")), first.get("detail")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        message = body.decode(errors="replace").strip()[:200]
    cls = BY_CODE.get(code)
    if cls is None:
        cls = {401: Unauthorized, 403: Denied, 404: NameUnknown, 429: TooManyRequests}.get(status, RegistryError)
        if cls is RegistryError:
            err = RegistryError(message or f"registry answered {status}", detail)
            err.status = status
            return err
    return cls(message or None, detail)
