"""Errors the daemon answered, typed by HTTP status so callers can catch `berth.errors.NotFound` etc.

`str()` is what docker prints: "Error response from daemon: <message>"."""

from __future__ import annotations

from berth import errors


class DaemonError(errors.BerthError):
    """An error response from the daemon. `message` is the daemon's text; `status` the HTTP status."""

    def __init__(self, message: str, status: int = 500, prefixed: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.prefixed = prefixed

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}" if self.prefixed else self.message


class DaemonInvalidArgument(DaemonError, errors.InvalidArgument):
    pass


class DaemonUnauthorized(DaemonError, errors.Unauthorized):
    pass


class DaemonForbidden(DaemonError, errors.Forbidden):
    pass


class DaemonNotFound(DaemonError, errors.NotFound):
    pass


class DaemonConflict(DaemonError, errors.Conflict):
    pass


class DaemonUnavailable(DaemonError, errors.Unavailable):
    pass


class DaemonNotImplemented(DaemonError, errors.NotImplementedYet):
    pass


_BY_STATUS: dict[int, type[DaemonError]] = {
    400: DaemonInvalidArgument,
    401: DaemonUnauthorized,
    403: DaemonForbidden,
    404: DaemonNotFound,
    409: DaemonConflict,
    501: DaemonNotImplemented,
    503: DaemonUnavailable,
}

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
            503: "Service Unavailable"}


def from_response(status: int, content_type: str, body: bytes, url: str = "") -> DaemonError:
    """Docker's client rules (checkResponseErr): a JSON body's `message` if the type is exactly
    application/json, else the body as text; an empty body names the status and the route."""
    cls = _BY_STATUS.get(status, DaemonError)
    status_text = f"{status} {_REASONS.get(status, '')}".strip()
    if not body:
        where = f" for API route and version {url}" if url else ""
        return cls(f"request returned {status_text}{where}, check if the server supports the requested API version",
                   status, prefixed=False)
    if content_type == "application/json":
        import json

        try:
            doc = json.loads(body)
        except ValueError as e:
            return cls(f"Error reading JSON: {e}", status, prefixed=False)
        message = doc.get("message", "") if isinstance(doc, dict) else ""
        if not message:
            return cls(f"API returned a {status} ({_REASONS.get(status, '')}) but provided no error-message",
                       status)
        return cls(str(message).strip(), status)
    return cls(body.decode(errors="replace").strip(), status)


class ConnectionFailed(errors.Unavailable):
    """The daemon's socket could not be reached (docker's exact wording, scripts grep for it)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?")
        self.host = host
