"""berth.httpd: the HTTP/1.1 server core (h11 on asyncio) shared by the Engine API and the registry.

Why not an ASGI server: Docker's attach and exec take over the connection after `101 UPGRADED`
with `Upgrade: tcp` and must survive the client's half-close, which ASGI cannot express.
Only h11, asyncio and the standard library are imported here.

    router = Router()
    router.add("GET", "/_ping", ping)
    await serve(router, unix="/run/berth.sock", ready=print)
"""

from berth.httpd.connection import ErrorHandler, Handler
from berth.httpd.errors import MethodNotAllowed, PayloadTooLarge
from berth.httpd.headers import Headers
from berth.httpd.request import Request
from berth.httpd.response import (
    FileBody,
    Response,
    dumps,
    empty_response,
    json_response,
    stream_response,
    text_response,
)
from berth.httpd.router import Router
from berth.httpd.server import Address, Server, default_error_handler, serve

__all__ = [
    "Address",
    "ErrorHandler",
    "FileBody",
    "Handler",
    "Headers",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "Request",
    "Response",
    "Router",
    "Server",
    "default_error_handler",
    "dumps",
    "empty_response",
    "json_response",
    "serve",
    "stream_response",
    "text_response",
]
