"""berthd's images backend: the Engine API's image endpoints over the image store and the registry client.

    images = Images(store, Distribution(store, settings, on_event=events))
    EngineAPI(Backends(images=images, ...))

Local work (list, inspect, tag, rmi, prune, save, load, import) goes to `ImageService`, which is
synchronous, in worker threads; bodies are streamed both ways without holding an archive in memory (a
thread writes `docker save` output through a pipe; `load` and `import` read the request body through a
bounded queue as it arrives). Registry work (pull, push, search, distribution) is `Distribution`'s.
Filters and error messages follow moby's daemon/images.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import httpx

from berth.api import jsonstream as js
from berth.errors import BerthError, Conflict, Forbidden, InvalidArgument, NotFound, Unavailable
from berth.image.service import ImageService
from berth.image.timeutil import to_unix
from berth.oci import reference
from berth.registry.client import Platform

from .distribution import Distribution, EventSink, in_thread, progress, tls_context, transport_error
from .registries import RegistrySettings

JSON = dict[str, Any]
Filters = dict[str, list[str]]
# Aliases: `Images.list` shadows the builtin inside the class body.
JSONList = list[JSON]
StrList = list[str]
T = TypeVar("T")

_LIST_FILTERS = frozenset(("before", "dangling", "label", "reference", "since", "until"))
_PRUNE_FILTERS = frozenset(("dangling", "label", "label!", "until"))
_BODY_QUEUE = 8  # request-body chunks buffered between the loop and the store's thread
_SAVE_CHUNK = 1 << 20
_EOF = object()
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Images:
    """The `ImagesBackend` of berth.api, over an ImageService and a Distribution."""

    def __init__(self, store: ImageService, distribution: Distribution | None = None, *,
                 settings: RegistrySettings | None = None, on_event: EventSink | None = None) -> None:
        self.store = store
        self.dist = distribution or Distribution(store, settings, on_event=on_event)
        self.settings = self.dist.settings
        self.on_event = on_event if on_event is not None else self.dist.on_event

    def _event(self, action: str, actor: str, **attrs: str) -> None:
        if self.on_event is not None:
            self.on_event(action, actor, attrs)

    # -- list, inspect, history -------------------------------------------------------------------------

    async def list(self, *, all: bool, filters: Filters, digests: bool, shared_size: bool) -> JSONList:
        return await in_thread(self._list, all, filters, shared_size)

    def _list(self, all_images: bool, filters: Filters, shared_size: bool) -> JSONList:
        for k in filters:
            if k not in _LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        dangling = bool_filter(filters, "dangling")
        before = min((self._created(v) for v in filters.get("before", [])), default=None)
        since = max((self._created(v) for v in filters.get("since", [])), default=None)
        until = min((timestamp(v, "until") for v in filters.get("until", [])), default=None)
        patterns = filters.get("reference", [])
        for p in patterns:
            go_path_match(p, "")  # a bad pattern is an error even when nothing is listed
        out = []
        for img in self.store.list_images(all_images=all_images, dangling=dangling):
            created = img["Created"]
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            if until is not None and created >= until:
                continue
            if not match_labels(img.get("Labels") or {}, filters.get("label", [])):
                continue
            if patterns:
                img["RepoTags"] = [r for r in img["RepoTags"] if reference_match(patterns, r)]
                img["RepoDigests"] = [r for r in img["RepoDigests"] if reference_match(patterns, r)]
                if not img["RepoTags"] and not img["RepoDigests"]:
                    continue
            out.append(img)
        if shared_size:
            shared = self._shared_sizes()
            for img in out:
                img["SharedSize"] = shared.get(img["Id"], 0)
        return out

    def _created(self, ref: str) -> int:
        """The creation time of the image a `before`/`since` filter names (NotFound if none)."""
        return to_unix(self.store.resolve(ref).config.created)

    def _shared_sizes(self) -> dict[str, int]:
        """Per image, the size of its layers that another image also uses (moby's SharedSize)."""
        rows = self.store.meta.images()
        users: Counter[str] = Counter()
        for row in rows:
            users.update(set(row.chain))
        sizes = {layer.chain_id: layer.size for layer in self.store.meta.layers()}
        return {row.id: sum(sizes.get(c, 0) for c in set(row.chain) if users[c] > 1) for row in rows}

    async def inspect(self, ref: str) -> JSON:
        return await in_thread(self.store.inspect, ref)

    async def history(self, ref: str) -> JSONList:
        return await in_thread(self.store.history, ref)

    # -- tag, remove, prune -----------------------------------------------------------------------------

    async def tag(self, ref: str, *, repo: str, tag: str | None) -> None:
        target = reference.parse(repo)
        if target.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag:
            target = target.with_tag(tag)
        target = target.with_default_tag()
        rec = await in_thread(self.store.resolve, ref)
        await in_thread(self.store.tag, rec.id, str(target))
        self._event("tag", rec.id, name=target.familiar())

    async def remove(self, ref: str, *, force: bool, noprune: bool) -> JSONList:
        rec = await in_thread(self.store.resolve, ref)
        records = await in_thread(self.store.delete, ref, force, not noprune)
        for r in records:
            if "Untagged" in r:
                self._event("untag", rec.id, name=r["Untagged"])
            elif r.get("Deleted") == rec.id:
                self._event("delete", rec.id)
        return records

    async def prune(self, *, filters: Filters) -> JSON:
        for k in filters:
            if k not in _PRUNE_FILTERS:
                raise InvalidArgument(f"invalid filter '{k}'")
        dangling = bool_filter(filters, "dangling")
        only_dangling = dangling is not False
        if set(filters) <= {"dangling"}:
            result = await in_thread(self.store.prune, not only_dangling)
        else:
            until = min((timestamp(v, "until") for v in filters.get("until", [])), default=None)
            result = await in_thread(self._prune, only_dangling, filters.get("label", []),
                                     filters.get("label!", []), until)
        for r in result.get("ImagesDeleted") or []:
            if "Deleted" in r:
                self._event("delete", r["Deleted"])
        return result

    def _prune(self, only_dangling: bool, labels: StrList, not_labels: StrList, until: float | None) -> JSON:
        """Prune with label/until filters: delete each matching unused image reference by reference."""
        store = self.store
        before = sum(size for _, size in store.content.walk())
        deleted: JSONList = []
        for img in store.list_images(all_images=True):
            if img["Containers"] or (only_dangling and img["RepoTags"]):
                continue
            img_labels = img.get("Labels") or {}
            if not match_labels(img_labels, labels) or (not_labels and match_labels(img_labels, not_labels)):
                continue
            if until is not None and img["Created"] >= until:
                continue
            try:
                for r in img["RepoTags"] + img["RepoDigests"] or [img["Id"]]:
                    if store.exists(img["Id"]):
                        deleted += store.delete(r)
            except (Conflict, NotFound):
                continue
        after = sum(size for _, size in store.content.walk())
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": max(0, before - after)}

    # -- save, load, import -----------------------------------------------------------------------------

    async def save(self, refs: StrList) -> AsyncIterator[bytes]:
        """`docker save`: resolved first (a missing name is a 404), then streamed from a writer thread."""
        ids = [rec.id for rec in [await in_thread(self.store.resolve, r) for r in refs]]
        gen = self.store.iter_save(refs)
        try:
            while (chunk := await in_thread(next, gen, None)) is not None:
                yield chunk
        finally:
            close = getattr(gen, "close", None)  # a generator: closing it stops the writer thread
            if close is not None:
                await in_thread(close)
        for image_id in dict.fromkeys(ids):
            self._event("save", image_id)

    async def load(self, data: AsyncIterator[bytes], *, quiet: bool) -> AsyncIterator[JSON]:
        result = await read_body_in_thread(data, self.store.load)
        for msg in result.messages:
            yield js.stream(msg + "\n")
        for image_id in result.images:
            self._event("load", image_id)

    async def import_image(self, *, source: str, data: AsyncIterator[bytes] | None, repo: str | None,
                           tag: str | None, message: str | None, changes: StrList,
                           platform: str | None) -> AsyncIterator[JSON]:
        """`docker import`: the body (`fromSrc=-`) or a URL on loopback or a configured host."""
        ref: str | None = None
        if repo:
            r = reference.parse(repo)
            if r.digest is not None:
                raise InvalidArgument("cannot import digest reference")
            ref = str((r.with_tag(tag) if tag else r).with_default_tag())
        if platform:
            Platform.parse(platform)

        def run(f: BinaryIO) -> str:
            return self.store.import_image(f, changes, ref, message or "", platform)

        if source == "-":
            if data is None:
                raise InvalidArgument("import from the request body needs a body")
            image_id = await read_body_in_thread(data, run)  # what the store leaves unread is drained
        else:
            url = self._import_url(source)
            yield js.status(f"Downloading from {url}")
            msgs: asyncio.Queue[JSON] = asyncio.Queue()
            task = asyncio.ensure_future(read_body_in_thread(_download(url, msgs), run, drain=False))
            try:
                while not task.done():
                    getter = asyncio.ensure_future(msgs.get())
                    await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield getter.result()
                    else:
                        getter.cancel()
                while not msgs.empty():
                    yield msgs.get_nowait()
                image_id = task.result()
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        yield js.status(image_id)
        self._event("import", image_id)

    def _import_url(self, source: str) -> str:
        url = source if "://" in source else f"http://{source}"
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise InvalidArgument(f"invalid import source {source!r}: not an http(s) URL")
        host = u.hostname or ""
        if not self.settings.import_allowed(u.netloc) and not self.settings.import_allowed(host):
            raise Forbidden(f"import from {u.netloc} is not allowed: berthd fetches only from loopback and the "
                            "hosts configured in its registry settings")
        return url

    # -- registry work ----------------------------------------------------------------------------------

    def pull(self, *, image: str, tag: str | None, platform: str | None,
             auth: JSON | None) -> AsyncIterator[JSON]:
        return self.dist.pull(image=image, tag=tag, platform=platform, auth=auth)

    def push(self, ref: str, *, tag: str | None, auth: JSON | None) -> AsyncIterator[JSON]:
        return self.dist.push(ref, tag=tag, auth=auth)

    async def search(self, term: str, *, limit: int | None, filters: Filters) -> JSONList:
        return await self.dist.search(term, limit=limit, filters=filters)

    async def distribution(self, ref: str, *, auth: JSON | None) -> JSON:
        return await self.dist.inspect(ref, auth=auth)

    async def auth(self, config: JSON) -> JSON:
        """`POST /auth` (SystemBackend.auth): the daemon's system backend delegates here."""
        return await self.dist.login(config)

    login = auth

    async def aclose(self) -> None:
        await self.dist.aclose()


class ImagesBackendService(Images):
    """`Images` built from berthd's config (registry-mirrors, insecure-registries, default-registry)
    and publishing `image` events on its event bus (anything with `emit(type, action, id, attrs)`)."""

    def __init__(self, store: ImageService, *, events: Any = None, config: Any = None) -> None:
        settings = RegistrySettings(mirrors=list(getattr(config, "registry_mirrors", None) or []),
                                    insecure=list(getattr(config, "insecure_registries", None) or []),
                                    default_registry=getattr(config, "default_registry", None))
        sink: EventSink | None = None
        if events is not None:
            def sink(action: str, actor: str, attrs: dict[str, str]) -> None:
                events.emit("image", action, actor, attrs)
        super().__init__(store, settings=settings, on_event=sink)


# -- the request body as a file for a store thread ------------------------------------------------------


class _BodyReader(io.RawIOBase):
    """Reads chunks the event loop queues; blocks its (worker) thread, never the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, q: asyncio.Queue[Any]) -> None:
        self._loop = loop
        self._q = q
        self._buf = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            if self._eof:
                return 0
            item = asyncio.run_coroutine_threadsafe(self._q.get(), self._loop).result()
            if item is _EOF:
                self._eof = True
                return 0
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            self._buf = memoryview(item)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


async def read_body_in_thread(data: AsyncIterator[bytes], fn: Callable[[BinaryIO], T], *, drain: bool = True) -> T:
    """Run `fn(file)` in a thread while `data` arrives. With `drain`, what `fn` leaves unread is read
    and dropped, so a client still sending its request body gets the answer rather than a broken pipe;
    without it (a download) the rest is simply not fetched."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize=_BODY_QUEUE)
    stop = False

    async def feed() -> None:
        try:
            async for chunk in data:
                if not stop and chunk:
                    await q.put(bytes(chunk))
            if not stop:
                await q.put(_EOF)
        except Exception as e:
            if not stop:
                await q.put(e if isinstance(e, BerthError) else InvalidArgument(f"reading the request body: {e}"))

    def empty_queue() -> None:
        while not q.empty():
            q.get_nowait()

    feeder = asyncio.ensure_future(feed())
    reader = io.BufferedReader(_BodyReader(loop, q), 1 << 20)
    work = asyncio.ensure_future(asyncio.to_thread(fn, reader))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # The client is gone: wake the thread with an error, let it finish, then give up.
        stop = True
        feeder.cancel()
        empty_queue()
        q.put_nowait(Unavailable("the client went away"))
        await asyncio.wait([work])
        raise
    finally:
        stop = True
        empty_queue()
        if not drain:
            feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


async def _download(url: str, msgs: asyncio.Queue[JSON]) -> AsyncIterator[bytes]:
    """An import URL's body, with moby's "Importing" progress lines."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False,
                                     verify=tls_context()) as http, \
                http.stream("GET", url) as r:
            if not r.is_success:  # redirects too: one could lead away from loopback
                raise InvalidArgument(f"error downloading {url}: {r.status_code} {r.reason_phrase}")
            total = int(r.headers.get("content-length") or 0)
            current = 0
            last = 0.0
            async for chunk in r.aiter_raw(1 << 20):
                current += len(chunk)
                now = time.monotonic()
                if now - last >= 0.1 or current == total:
                    last = now
                    msg = progress("Importing", "", current, total)
                    msg.pop("id", None)
                    msgs.put_nowait(msg)
                yield chunk
    except httpx.HTTPError as e:
        raise Unavailable(transport_error(e, url)) from e


# -- filters --------------------------------------------------------------------------------------------


def bool_filter(filters: Filters, name: str) -> bool | None:
    """moby's GetBoolOrDefault: "true"/"1" or "false"/"0"; anything else (or both) is an invalid filter."""
    values = filters.get(name)
    if values is None:
        return None
    is_true = any(v in ("1", "true") for v in values)
    is_false = any(v in ("0", "false") for v in values)
    if is_true == is_false:
        raise InvalidArgument(f"invalid filter '{name}={','.join(values)}'")
    return is_true


def match_labels(labels: dict[str, str], wanted: list[str]) -> bool:
    """moby's MatchKVList: every `key` or `key=value` is present."""
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def reference_match(patterns: list[str], ref: str) -> bool:
    """distribution's FamiliarMatch: a pattern matches the familiar reference or its repository name."""
    name = ref.split("@", 1)[0]
    last = name.rfind(":")
    if last > name.rfind("/"):
        name = name[:last]
    return any(go_path_match(p, ref) or go_path_match(p, name) for p in patterns)


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never cross "/", `[...]`/`[^...]` classes, `\\` escapes."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i == len(pattern):
                raise InvalidArgument("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            cls = []
            if j < len(pattern) and pattern[j] == "^":
                cls.append("^")
                j += 1
            first = True
            while True:
                if j >= len(pattern):
                    raise InvalidArgument("syntax error in pattern")
                if pattern[j] == "]" and not first:
                    break
                first = False
                ch = pattern[j]
                if ch == "\\":
                    j += 1
                    if j >= len(pattern):
                        raise InvalidArgument("syntax error in pattern")
                    ch = pattern[j]
                if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    hi = pattern[j + 2]
                    if hi == "\\" and j + 3 < len(pattern):
                        hi = pattern[j + 3]
                        j += 1
                    if hi < ch:
                        raise InvalidArgument("syntax error in pattern")
                    cls.append(f"{re.escape(ch)}-{re.escape(hi)}")
                    j += 3
                else:
                    cls.append(re.escape(ch))
                    j += 1
            out.append("[" + "".join(cls) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), name, re.DOTALL) is not None


def timestamp(value: str, what: str) -> float:
    """moby's GetTimestamp: unix seconds (with a fraction), RFC 3339 (date or date-time), or a Go
    duration counted back from now ("10m", "1h30m")."""
    v = value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    parts = _DURATION.findall(v)
    if parts and "".join(n + u for n, u in parts) == v:
        return time.time() - sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f'invalid value for "{what}": failed to parse value as time or duration: "{value}"')
    return dt.timestamp()  # a zone-less time is the daemon's local time, as Go parses it


__all__ = ["Images", "ImagesBackendService", "read_body_in_thread"]
