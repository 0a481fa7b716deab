"""JSON-message streams (pull, push, build, load, import): one JSON object per line, `\\r\\n` ended.

Errors inside a stream carry both `errorDetail` (what the docker CLI fails on) and `error` (what
docker-py checks). A failure before the first message is still a real HTTP error: the stream is
primed (its first message awaited) before the 200 goes out, as moby does for pull and build.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from berth.errors import BerthError
from berth.httpd import Response, dumps, stream_response

log = logging.getLogger("berth.api")

Message = dict[str, Any]
_END = object()


def encode(msg: Message) -> bytes:
    """One message as moby's stream formatter writes it."""
    return dumps(msg)[:-1] + b"\r\n"


def error_message(message: str, code: int | None = None) -> Message:
    detail: dict[str, Any] = {"message": message}
    if code is not None:
        detail["code"] = code
    return {"errorDetail": detail, "error": message}


def status(text: str, id: str | None = None, **extra: Any) -> Message:
    """A status line, e.g. status("Pull complete", id="abc123")."""
    msg: Message = {"status": text}
    if id is not None:
        msg["id"] = id
    msg.update(extra)
    return msg


def progress(text: str, id: str, current: int, total: int | None = None) -> Message:
    """A progress line (`progressDetail`, which the CLI renders as a bar)."""
    detail: dict[str, int] = {"current": current}
    if total is not None and total > 0:
        detail["total"] = total
    return {"status": text, "progressDetail": detail, "id": id}


def stream(text: str) -> Message:
    """Build and load output: {"stream": "..."}."""
    return {"stream": text}


def aux(obj: Any) -> Message:
    return {"aux": obj}


async def json_stream_response(
    messages: AsyncIterator[Message], *, in_band_errors: bool = False
) -> Response:
    """A chunked `application/json` response with one flushed chunk per message.

    With `in_band_errors=False` an error raised before the first message propagates (the client
    gets a real HTTP status); with True (moby's `images/load`) every error goes in the stream.
    Errors after the first message always go in the stream, as `errorDetail` + `error`.
    """
    it = aiter(messages)
    try:
        first: object = await anext(it, _END)
    except Exception as e:
        if not in_band_errors:
            await _aclose(it)
            raise
        if not isinstance(e, BerthError):
            log.exception("JSON message stream failed")
        return stream_response(_one(error_message(str(e) or type(e).__name__)), "application/json")
    return stream_response(_rest(first, it), "application/json")


async def _one(msg: Message) -> AsyncIterator[bytes]:
    yield encode(msg)


async def _rest(first: object, it: AsyncIterator[Message]) -> AsyncIterator[bytes]:
    if first is _END:
        return
    try:
        yield encode(first)  # type: ignore[arg-type]
        async for msg in it:
            yield encode(msg)
    except BerthError as e:
        yield encode(error_message(str(e)))
    except Exception as e:
        log.exception("JSON message stream failed")
        yield encode(error_message(str(e) or type(e).__name__))
    finally:
        await _aclose(it)


async def _aclose(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()
