"""Path routing: static paths by dictionary, patterns by specificity, 404 and 405 as errors.

Patterns use `{name}` for one path segment and `{name:REGEX}` for anything else, typically the
greedy `{name:.*}` that Docker image names with slashes need ("/images/{name:.*}/push").
Static paths win over patterns; among patterns the one with the most literal characters wins, so
"/images/{name:.*}/json" is tried before "/images/{name:.*}". A path that matches a route whose
methods do not include the request's goes on to the next route, since "DELETE /images/json"
deletes an image called "json"; only when no route takes the method is it 405. HEAD is served
by a GET route when no route registers HEAD itself (the server then sends no body).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from berth.errors import NotFound
from berth.httpd.errors import MethodNotAllowed
from berth.httpd.request import Request
from berth.httpd.response import Response

Handler = Callable[[Request], Awaitable[Response]]

_PARAM = re.compile(r"\{(\w+)(?::([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")


class _Route:
    __slots__ = ("handlers", "literal", "order", "pattern", "regex")

    def __init__(self, pattern: str, order: int) -> None:
        self.pattern = pattern
        self.order = order
        self.handlers: dict[str, Handler] = {}
        parts: list[str] = []
        literal = 0
        pos = 0
        for m in _PARAM.finditer(pattern):
            lit = pattern[pos : m.start()]
            literal += len(lit)
            parts.append(re.escape(lit))
            parts.append(f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})")
            pos = m.end()
        tail = pattern[pos:]
        literal += len(tail)
        parts.append(re.escape(tail))
        self.regex = re.compile("".join(parts) + r"\Z")
        self.literal = literal

    def key(self) -> tuple[int, int]:
        return (-self.literal, self.order)


def _lookup(handlers: dict[str, Handler], method: str) -> Handler | None:
    h = handlers.get(method)
    if h is None and method == "HEAD":
        h = handlers.get("GET")
    return h


class Router:
    """A request handler that dispatches to the handler registered for the path and method."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Handler]] = {}
        self._routes: dict[str, _Route] = {}
        # Patterns bucketed by their first path segment ("" for patterns starting with a parameter),
        # each bucket sorted by specificity and holding the parameter-first patterns too.
        self._buckets: dict[str, list[_Route]] = {}
        self._wild: list[_Route] = []

    def add(self, methods: str | list[str], pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        ms = [methods] if isinstance(methods, str) else list(methods)
        if "{" not in pattern:
            slot = self._static.setdefault(pattern, {})
            for m in ms:
                slot[m.upper()] = handler
            return
        route = self._routes.get(pattern)
        if route is None:
            route = self._routes[pattern] = _Route(pattern, len(self._routes))
            first = _first_segment(pattern)
            if first is None:
                self._wild.append(route)
                for bucket in self._buckets.values():
                    bucket.append(route)
                    bucket.sort(key=_Route.key)
            else:
                bucket = self._buckets.setdefault(first, list(self._wild))
                bucket.append(route)
                bucket.sort(key=_Route.key)
        for m in ms:
            route.handlers[m.upper()] = handler

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters for a request; NotFound or MethodNotAllowed."""
        matched = False
        slot = self._static.get(path)
        if slot is not None:
            h = _lookup(slot, method)
            if h is not None:
                return h, {}
            matched = True
        seg = path[1:].partition("/")[0]
        for route in self._buckets.get(seg, self._wild):
            m = route.regex.match(path)
            if m is None:
                continue
            h = _lookup(route.handlers, method)
            if h is not None:
                return h, m.groupdict()
            matched = True
        if matched:
            raise MethodNotAllowed(f"method {method} not allowed for {path}")
        raise NotFound("page not found")

    async def __call__(self, request: Request) -> Response:
        handler, params = self.resolve(request.method, request.path)
        request.params = params
        return await handler(request)


def _first_segment(pattern: str) -> str | None:
    seg = pattern[1:].partition("/")[0]
    return None if "{" in seg else seg
