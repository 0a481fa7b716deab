"""HTTP-level errors the server core raises itself; the application's error handler formats them."""

from __future__ import annotations

from berth.errors import BerthError


class MethodNotAllowed(BerthError):
    """A route matches the path but not the method."""

    status = 405


class PayloadTooLarge(BerthError):
    """A request body is larger than the handler's limit."""

    status = 413
