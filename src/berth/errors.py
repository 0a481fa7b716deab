"""Errors typed once for every layer; the API maps each class to an HTTP status in one place."""

from __future__ import annotations


class BerthError(Exception):
    """Base of every error berth raises on purpose. `status` is the HTTP status the API answers."""

    status = 500


class InvalidArgument(BerthError):
    status = 400


class Unauthorized(BerthError):
    status = 401


class Forbidden(BerthError):
    status = 403


class NotFound(BerthError):
    status = 404


class Conflict(BerthError):
    status = 409


class NotModified(BerthError):
    """Docker answers 304 for "already started" / "already stopped"."""

    status = 304


class Unavailable(BerthError):
    status = 503


class NotImplementedYet(BerthError):
    status = 501
