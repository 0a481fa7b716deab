"""berthd's side of the registry protocol: pull, push, login, search and distribution inspect.

    dist = Distribution(store, RegistrySettings.load(daemon_json))
    async for msg in dist.pull(image="busybox", tag="latest", platform=None, auth=None): ...
    async for msg in dist.push("localhost:5000/app", tag="v1", auth={"username": ..., "password": ...}): ...
    await dist.login({"username": ..., "password": ..., "serveraddress": "localhost:5000"})
    await dist.aclose()

Messages are moby's, in moby's order (distribution/xfer and pull_v2/push_v2), so the docker CLI draws its
usual per-layer lines. A pull resolves the reference through the registry settings (docker.io names try
the mirrors in order), walks index → platform manifest → config, then downloads the missing layers, at
most three at a time, each streamed into the content store through a resumable, verifying writer (an
interrupted download continues where it stopped, with a Range request), and unpacks them in chain order
as soon as each one and its parent are there. A push sends up to five layers at a time: a layer the
repository has is skipped, one that another repository of the same registry holds is mounted from it,
the rest are uploaded. Errors found before the first message raise (a real HTTP status, e.g. moby's 404
"pull access denied ..."); later ones end the stream in-band.

Threads: the image store is synchronous, so its work (writing chunks, commits, unpacking, compression)
runs through `asyncio.to_thread`; the network side stays on the loop (httpx).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx

import berth
from berth.api import jsonstream as js
from berth.errors import BerthError, Forbidden, InvalidArgument, NotFound, Unauthorized, Unavailable
from berth.image.service import ImageService
from berth.oci import mediatypes as mt
from berth.oci import reference
from berth.oci.digest import Digest
from berth.oci.manifest import Descriptor, ImageConfig, Manifest, chain_ids, digest_of, parse_manifest
from berth.oci.reference import Reference
from berth.registry import errors as rerr
from berth.registry.client import Credentials, Platform, RegistryClient, Resolved
from berth.store.content import DigestMismatchError

from .registries import Endpoint, RegistrySettings, normalize_server

log = logging.getLogger("berth.daemon.distribution")

JSON = dict[str, Any]
T = TypeVar("T")
# (action, actor id, attributes): the daemon turns these into `image` events.
EventSink = Callable[[str, str, dict[str, str]], None]

MAX_DOWNLOADS = 3  # moby's max-concurrent-downloads default
MAX_UPLOADS = 5  # moby's max-concurrent-uploads default
MAX_MOUNT_ATTEMPTS = 3
_WRITE_BATCH = 1 << 20  # bytes handed to the store's writer per thread hop
_PROGRESS_EVERY = 0.1  # seconds between two progress lines of one layer (moby's rate limit)
_CLIENT_CACHE = 16
_END = object()


# -- progress messages, as moby's stream formatter writes them --------------------------------------


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("1.235MB")."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def progress_bar(current: int, total: int) -> str:
    """The deprecated `progress` string moby still sends (the docker CLI prints it when not on a TTY)."""
    if total <= 0:
        return f"{human_size(current):>8}" if current > 0 else ""
    pct = min(50, int(current / total * 100) // 2)
    bar = f"[{'=' * pct}>{' ' * (50 - pct)}] "
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else f"{human_size(current):>8}"
    return bar + numbers


def progress(action: str, id: str, current: int, total: int) -> JSON:
    msg = js.progress(action, id, current, total)
    bar = progress_bar(current, total)
    if bar:
        msg["progress"] = bar
    return msg


def update(action: str, id: str) -> JSON:
    """moby's progress.Update: a status line for one layer, with an empty progressDetail."""
    return {"status": action, "progressDetail": {}, "id": id}


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


# -- errors in moby's words ----------------------------------------------------------------------------


def errcode_text(e: rerr.RegistryError) -> str:
    """distribution's errcode.Error: "<code in words>: <message>" ("manifest unknown: manifest unknown")."""
    words = e.code.lower().replace("_", " ")
    return e.message if e.message.lower().startswith(words + ":") else f"{words}: {e.message}"


def pull_error(e: BaseException, ref: Reference, endpoint: Endpoint) -> BerthError:
    """moby's translatePullError: what a failed resolve becomes for the client."""
    if isinstance(e, rerr.Denied | rerr.Unauthorized):
        return NotFound(f"pull access denied for {ref.familiar_name()}, repository does not exist or may require "
                        f"'docker login': {errcode_text(e)}")
    if isinstance(e, rerr.ManifestUnknown):
        return NotFound(f"manifest for {ref.familiar()} not found: {errcode_text(e)}")
    if isinstance(e, rerr.NameUnknown):
        return NotFound(f"repository {ref.familiar_name()} not found: {errcode_text(e)}")
    if isinstance(e, httpx.HTTPError | OSError):
        return Unavailable(transport_error(e, f"{endpoint.base}/v2/"))
    if isinstance(e, BerthError):
        return e
    return BerthError(str(e) or type(e).__name__)


def transport_error(e: BaseException, url: str) -> str:
    """Go's `Get "<url>": dial tcp …: connect: connection refused` shape, from what httpx raised."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return f'Get "{url}": {cause.strerror.lower()}'
        cause = cause.__cause__ or cause.__context__
    return f'Get "{url}": {e or type(e).__name__}'


def credentials(auth: JSON | None) -> Credentials | None:
    """X-Registry-Auth (or a /auth body) → Credentials; `auth` (base64 user:pass) is accepted as docker-py sends it."""
    if not auth:
        return None
    user, pw = str(auth.get("username") or ""), str(auth.get("password") or "")
    if not user and auth.get("auth"):
        try:
            user, _, pw = base64.b64decode(str(auth["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidArgument("invalid auth configuration: cannot decode \"auth\"")
    creds = Credentials(user, pw, str(auth.get("identitytoken") or ""), str(auth.get("registrytoken") or ""))
    return creds if any((creds.username, creds.password, creds.identity_token, creds.registry_token)) else None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every registry client of the process: loading the CA bundle costs
    ~40 ms, which httpx would otherwise pay again for each new client (each registry host, even one
    spoken to over plain http). SSLContext is safe to share between connections and threads."""
    return httpx.create_ssl_context()


# -- thread helpers ------------------------------------------------------------------------------------


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`asyncio.to_thread`, except that a cancelled caller still waits for the thread to finish, so
    nothing (a writer's abort, a file close) races with work still running there."""
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise


class _Trusting:
    """A hasher stand-in for `fetch_blob`: the content store's writer hashes every byte already and
    refuses a wrong digest at commit, so hashing a second time would only cost a core."""

    def __init__(self, digest: Digest) -> None:
        self._hex = digest.hex

    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hex


@dataclass
class _Layer:
    desc: Descriptor
    diff_id: str
    chain_id: str
    id: str  # the short id the CLI shows


class _Messages:
    """Progress lines from concurrent tasks, handed to the response in order of arrival."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, msg: JSON) -> None:
        self.q.put_nowait(msg)


class _Ticker:
    """Rate limit for one layer's progress lines; the last line (current == total) always passes."""

    def __init__(self) -> None:
        self._last = 0.0

    def due(self, current: int, total: int) -> bool:
        now = time.monotonic()
        if current >= total or now - self._last >= _PROGRESS_EVERY:
            self._last = now
            return True
        return False


class Distribution:
    """Pull, push, login, search and `GET /distribution/{name}/json` over an ImageService."""

    def __init__(self, store: ImageService, settings: RegistrySettings | None = None, *,
                 user_agent: str = f"berth/{berth.__version__}", on_event: EventSink | None = None,
                 max_downloads: int = MAX_DOWNLOADS, max_uploads: int = MAX_UPLOADS) -> None:
        self.store = store
        self.settings = settings or RegistrySettings()
        self.user_agent = user_agent
        self.on_event = on_event
        self.max_downloads = max_downloads
        self.max_uploads = max_uploads
        self._clients: OrderedDict[tuple[Any, ...], RegistryClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def _new_client(self, endpoint: Endpoint, creds: Credentials | None) -> RegistryClient:
        # RegistryClient hands `verify` to httpx, which takes an SSLContext as well (its annotation says
        # bool | str only).
        verify = cast(Any, tls_context())
        return RegistryClient(endpoint.host, credentials=creds, insecure=endpoint.insecure, verify=verify,
                              user_agent=self.user_agent)

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for c in clients:
            await c.aclose()

    def _event(self, action: str, actor: str, **attrs: str) -> None:
        if self.on_event is not None:
            try:
                self.on_event(action, actor, attrs)
            except Exception:
                log.exception("image event sink failed")

    def _client(self, endpoint: Endpoint, creds: Credentials | None) -> RegistryClient:
        """A client per registry and credentials, kept for reuse: its connections and tokens stay warm."""
        key = (endpoint.host, endpoint.insecure, creds)
        c = self._clients.get(key)
        if c is not None:
            self._clients.move_to_end(key)
            return c
        c = self._new_client(endpoint, creds)
        self._clients[key] = c
        if len(self._clients) > _CLIENT_CACHE:
            _, old = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return c

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        """One holder of `key` at a time across concurrent pulls: a blob's download (its ingest is named
        by digest) or a layer's unpacking (by chain id). An entry goes away with its last user."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    # -- pull ------------------------------------------------------------------------------------------

    async def pull(self, *, image: str, tag: str | None, platform: str | None,
                   auth: JSON | None) -> AsyncIterator[JSON]:
        """`POST /images/create?fromImage=&tag=`: moby's progress stream; no tag and no digest pulls every tag."""
        ref = pull_reference(image, tag)
        plat = Platform.parse(platform) if platform else None
        creds = credentials(auth)
        endpoints = self.settings.pull_endpoints(ref)
        first: Resolved | None = None
        if ref.tag is None and ref.digest is None:
            endpoint, client, tags = await self._list_tags(endpoints, ref, creds)
            refs = [ref.with_tag(t) for t in tags]
        else:
            endpoint, client, first = await self._resolve(endpoints, ref, plat, creds)
            refs = [ref]
        updated = False
        for r in refs:
            resolved = first if first is not None else (await self._resolve([endpoint], r, plat, creds))[2]
            first = None
            async for msg in self._pull_resolved(client, r, resolved):
                if msg is _END:
                    updated = True
                    continue
                yield msg
        shown = ref.familiar()
        yield js.status(f"Status: {'Downloaded newer image' if updated else 'Image is up to date'} for {shown}")

    async def _list_tags(self, endpoints: list[Endpoint], ref: Reference,
                         creds: Credentials | None) -> tuple[Endpoint, RegistryClient, list[str]]:
        failures: list[tuple[Endpoint, BaseException]] = []
        for ep in endpoints:
            client = self._client(ep, creds)
            try:
                tags = await client.tags(ref.path)
            except (rerr.RegistryError, httpx.HTTPError, OSError) as e:
                failures.append((ep, e))
                continue
            if tags:
                return ep, client, sorted(tags)
            failures.append((ep, rerr.NameUnknown(f"repository name not known to registry: {ref.path}")))
        raise self._resolve_failure(ref, failures)

    async def _resolve(self, endpoints: list[Endpoint], ref: Reference, plat: Platform | None,
                       creds: Credentials | None) -> tuple[Endpoint, RegistryClient, Resolved]:
        """The first endpoint that has `ref`. Mirrors may fail (moby falls back on any mirror error);
        the registry itself may not."""
        failures: list[tuple[Endpoint, BaseException]] = []
        for ep in endpoints:
            client = self._client(ep, creds)
            try:
                resolved = await client.resolve(ref.path, ref.digest or ref.tag or reference.DEFAULT_TAG, plat)
            except (rerr.RegistryError, httpx.HTTPError, OSError, BerthError) as e:
                failures.append((ep, e))
                if ep.mirror:
                    log.info("mirror %s: %s", ep.base, e)
                    continue
                raise pull_error(e, ref, ep) from e
            return ep, client, resolved
        raise self._resolve_failure(ref, failures)

    def _resolve_failure(self, ref: Reference, failures: list[tuple[Endpoint, BaseException]]) -> BerthError:
        """Only mirrors were tried (docker.io is disabled) and none had `ref`: say so, with each one's answer."""
        if len(failures) == 1 and not self.settings.docker_io_disabled:
            ep, e = failures[0]
            return pull_error(e, ref, ep)
        detail = "; ".join(f"{ep.base}: {pull_error(e, ref, ep)}" for ep, e in failures)
        msg = f"{ref.familiar()} was not found in the registry mirrors ({detail})"
        if self.settings.docker_io_disabled:
            msg += "; docker.io is disabled on this daemon (\"default-registry\": \"\")"
        if all(isinstance(pull_error(e, ref, ep), NotFound) for ep, e in failures):
            return NotFound(msg)
        return Unavailable(msg)

    async def _pull_resolved(self, client: RegistryClient, ref: Reference, resolved: Resolved) -> AsyncIterator[Any]:
        """One tag or digest: messages, then `_END` if the reference now names a different image."""
        store = self.store
        yield js.status(f"Pulling from {ref.path}", id=ref.digest or ref.tag)
        m = parse_manifest(resolved.manifest, resolved.media_type)
        if resolved.config is None:
            raise InvalidArgument(f"manifest {resolved.digest} has no image config")
        if m.config.media_type and m.config.media_type not in mt.CONFIGS:
            raise InvalidArgument(f"unsupported image config media type {m.config.media_type!r}: "
                                  "not a container image")
        config = ImageConfig.parse(resolved.config)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(m.layers):
            raise InvalidArgument(f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, "
                                  f"got {len(m.layers)}")
        chains = chain_ids(diff_ids)
        layers = [_Layer(d, diff, chain, short_id(d.digest)) for d, diff, chain in zip(m.layers, diff_ids, chains,
                                                                                        strict=True)]
        manifest_digest = str(resolved.digest)
        repo_digest = str(resolved.index_digest or resolved.digest)
        keys = [config.id, manifest_digest, *chains, *(x.desc.digest for x in layers)]
        with store.lease(*keys):
            await in_thread(store.content.put, resolved.config, m.config.digest)
            await in_thread(store.store_manifest, resolved.manifest, resolved.media_type, manifest_digest)
            have = await in_thread(self._image_complete, config.id)
            if not have:
                async for msg in self._fetch_layers(client, ref.path, layers):
                    yield msg
            tagged = ref if ref.digest else ref.with_default_tag()
            before = await in_thread(store.meta.ref_target, str(tagged))
            image_id = await in_thread(store.image_from_manifest, manifest_digest, [str(tagged)])
            await in_thread(store.add_repo_digest, str(ref.repo()), repo_digest, image_id)
        yield js.status(f"Digest: {repo_digest}")
        self._event("pull", tagged.familiar(), name=tagged.familiar_name())
        if before != image_id:
            yield _END

    def _image_complete(self, image_id: str) -> bool:
        """moby skips the layer transfer when the image (its config) is already in the store."""
        row = self.store.meta.get_image(image_id)
        return row is not None and all(self._layer_present(c) for c in row.chain)

    def _layer_present(self, chain_id: str) -> bool:
        return self.store.meta.get_layer(chain_id) is not None and self.store.snapshots.exists(chain_id)

    async def _fetch_layers(self, client: RegistryClient, repo: str, layers: list[_Layer]) -> AsyncIterator[JSON]:
        """moby's download manager: "Already exists" for the present prefix of the chain, then
        parallel downloads and in-order extraction, with every line in between."""
        present = 0
        for layer in layers:
            if not await in_thread(self._layer_present, layer.chain_id):
                break
            present += 1
        for layer in layers[:present]:
            yield update("Already exists", layer.id)
        todo = layers[present:]
        for layer in todo:
            yield update("Pulling fs layer", layer.id)
        if not todo:
            return
        out = _Messages()
        runner = asyncio.ensure_future(self._transfer(client, repo, layers, present, out))
        runner.add_done_callback(lambda _: out.q.put_nowait(_END))
        try:
            while True:
                msg = await out.q.get()
                if msg is _END:
                    break
                yield msg
            runner.result()  # raises what failed
        finally:
            if not runner.done():
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner

    async def _transfer(self, client: RegistryClient, repo: str, layers: list[_Layer], present: int,
                        out: _Messages) -> None:
        slots = asyncio.Semaphore(self.max_downloads)
        downloads = [asyncio.ensure_future(self._download(client, repo, layer, slots, out))
                     for layer in layers[present:]]
        try:
            parent = layers[present - 1].chain_id if present else None
            pending = set(downloads)
            for layer, dl in zip(layers[present:], downloads, strict=True):
                while not dl.done():  # a failed download ends the pull at once, not when its turn comes
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for t in done:
                        t.result()
                dl.result()
                await self._extract(layer, parent, out)
                parent = layer.chain_id
        finally:
            for dl in downloads:
                dl.cancel()
            await asyncio.gather(*downloads, return_exceptions=True)

    async def _download(self, client: RegistryClient, repo: str, layer: _Layer, slots: asyncio.Semaphore,
                        out: _Messages) -> None:
        if slots.locked():
            out.put(update("Waiting", layer.id))
        async with slots, self._exclusive(f"blob {layer.desc.digest}"):
            store = self.store
            if await in_thread(store.has_blob, layer.desc.digest):
                out.put(update("Download complete", layer.id))  # another pull (or image) brought it
                return
            await self._download_blob(client, repo, layer, out)
            out.put(update("Download complete", layer.id))

    async def _download_blob(self, client: RegistryClient, repo: str, layer: _Layer, out: _Messages) -> None:
        """Stream the blob into a named (so resumable) ingest; the writer verifies size and digest."""
        desc = layer.desc
        d = Digest.parse(desc.digest)
        w = await in_thread(self.store.content.writer, desc.digest, desc.size, f"pull-{desc.digest}")
        try:
            current = w.offset
            ticker = _Ticker()
            buf = bytearray()
            if current:
                log.info("resuming download of %s at %d of %d bytes", desc.digest, current, desc.size)
            async for chunk in client.fetch_blob(repo, d, size=desc.size, offset=current, hasher=_Trusting(d)):
                buf += chunk
                current += len(chunk)
                if len(buf) >= _WRITE_BATCH:
                    await in_thread(w.write, bytes(buf))
                    buf.clear()
                if ticker.due(current, desc.size):
                    out.put(progress("Downloading", layer.id, current, desc.size))
            if buf:
                await in_thread(w.write, bytes(buf))
            out.put(update("Verifying Checksum", layer.id))
            await in_thread(w.commit)
        except DigestMismatchError:
            raise InvalidArgument(f"filesystem layer verification failed for digest {desc.digest}") from None
        except rerr.DigestInvalid:
            await in_thread(w.abort, False)
            raise InvalidArgument(f"filesystem layer verification failed for digest {desc.digest}") from None
        except BaseException:
            await in_thread(w.abort)  # a named ingest keeps what arrived, for the next attempt
            raise

    async def _extract(self, layer: _Layer, parent: str | None, out: _Messages) -> None:
        # The store applies the blob in one call, so "Extracting" is reported when it is done.
        desc = layer.desc
        try:
            async with self._exclusive(f"layer {layer.chain_id}"):  # a concurrent pull may unpack it first
                await in_thread(self.store.unpack_layer, layer.chain_id, parent, layer.diff_id, desc.digest,
                                desc.media_type)
        except BerthError as e:
            raise type(e)(f"failed to register layer: {e}") from e
        out.put(progress("Extracting", layer.id, desc.size, desc.size))
        out.put(update("Pull complete", layer.id))

    # -- push ------------------------------------------------------------------------------------------

    async def push(self, name: str, *, tag: str | None, auth: JSON | None) -> AsyncIterator[JSON]:
        """`POST /images/{name}/push?tag=`: every tag of the repository when no tag is given."""
        ref = reference.parse(name)
        if ref.digest is not None or (tag and _is_digest(tag)):
            raise InvalidArgument("cannot push a digest reference")
        if tag:
            ref = ref.with_tag(tag)
        endpoint = self.settings.push_endpoint(ref)
        client = self._client(endpoint, credentials(auth))
        yield js.status(f"The push refers to repository [{ref.repo()}]")
        targets = await in_thread(self._push_targets, ref)
        pushed: set[str] = set()  # blobs known to be in the repository, across tags
        for tagged, image_id in targets:
            async for msg in self._push_tag(client, tagged, image_id, pushed):
                yield msg

    def _push_targets(self, ref: Reference) -> list[tuple[Reference, str]]:
        meta = self.store.meta
        repo_refs = [(reference.parse(r), image_id) for r, image_id in meta.repo_refs(str(ref.repo()))]
        tagged = sorted(((r, i) for r, i in repo_refs if r.tag is not None), key=lambda x: x[0].tag or "")
        if not tagged and not repo_refs:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
        if ref.tag is None:
            if not tagged:
                raise NotFound(f"no tags to push for {ref.familiar_name()}")
            return tagged
        image_id = meta.ref_target(str(ref))
        if image_id is None:
            raise NotFound(f"tag does not exist: {ref.familiar()}")
        return [(ref, image_id)]

    async def _push_tag(self, client: RegistryClient, ref: Reference, image_id: str,
                        pushed: set[str]) -> AsyncIterator[JSON]:
        store = self.store
        rec = await in_thread(store.resolve, image_id)
        reuse = await in_thread(self._reusable_manifest, rec.id)
        diff_ids = rec.config.diff_ids
        ids = [short_id(d) for d in diff_ids]
        # moby walks the chain from the top layer down, and so lists the layers in that order
        for i in reversed(range(len(diff_ids))):
            yield update("Preparing", ids[i])
        out = _Messages()
        slots = asyncio.Semaphore(self.max_uploads)
        config_raw = await in_thread(store.content.read, rec.id)
        with store.lease(rec.id, *rec.chain):
            tasks = [asyncio.ensure_future(self._push_layer(client, ref, diff_ids[i], ids[i],
                                                            reuse.layers[i] if reuse else None, slots, out, pushed))
                     for i in reversed(range(len(diff_ids)))]
            # the config goes up alongside the layers (it is small, and the manifest waits for all of them)
            config = asyncio.ensure_future(self._push_config(client, ref.path, rec.id, config_raw, pushed))
            done = asyncio.ensure_future(asyncio.gather(*tasks))
            done.add_done_callback(lambda _: out.q.put_nowait(_END))
            try:
                while (msg := await out.q.get()) is not _END:
                    yield msg
                descs: list[Descriptor] = list(reversed(done.result()))
                await config
            finally:
                for t in [*tasks, config]:
                    t.cancel()
                await asyncio.gather(done, config, return_exceptions=True)
            if reuse is not None:
                data, media_type = reuse.raw, reuse.media_type
            else:
                data, media_type = docker_manifest(rec.id, len(config_raw), descs), mt.DOCKER_MANIFEST
            try:
                got = await client.put_manifest(ref.path, ref.tag or reference.DEFAULT_TAG, data, media_type)
            except rerr.RegistryError as e:
                raise push_error(e) from e
            digest = digest_of(data)
            if str(got) != digest:
                raise InvalidArgument(f"registry answered digest {got} for manifest {digest}")
            await in_thread(store.add_repo_digest, str(ref.repo()), digest, rec.id)
        yield js.status(f"{ref.tag}: digest: {digest} size: {len(data)}")
        yield {"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(data)}}
        self._event("push", ref.familiar(), name=ref.familiar_name())

    def _reusable_manifest(self, image_id: str) -> _StoredManifest | None:
        """The manifest the image came with, when it can be pushed as is (its digest then survives the
        round trip): a single-platform manifest of this config whose compressed layers are all here."""
        row = self.store.meta.get_image(image_id)
        if row is None or not row.manifest or row.manifest_type not in mt.MANIFESTS:
            return None
        try:
            raw = self.store.content.read(row.manifest)
            m = parse_manifest(raw, row.manifest_type)
        except (NotFound, InvalidArgument):
            return None
        if m.config.digest != image_id or len(m.layers) != len(row.chain):
            return None
        for d in m.layers:
            if mt.LAYER_COMPRESSION.get(d.media_type) not in ("gzip", "zstd") or not self.store.has_blob(d.digest):
                return None
        return _StoredManifest(raw, row.manifest_type, m)

    async def _push_layer(self, client: RegistryClient, ref: Reference, diff_id: str, id: str,
                          desc: Descriptor | None, slots: asyncio.Semaphore, out: _Messages,
                          pushed: set[str]) -> Descriptor:
        if slots.locked():
            out.put(update("Waiting", id))
        async with slots:
            if desc is None:
                desc = await in_thread(self.store.layer_for_push, diff_id)
                desc = Descriptor(mt.DOCKER_LAYER_GZIP if desc.media_type == mt.OCI_LAYER_GZIP else desc.media_type,
                                  desc.digest, desc.size)
            repo = ref.path
            try:
                if desc.digest in pushed or await client.blob_exists(repo, desc.digest) is not None:
                    pushed.add(desc.digest)
                    out.put(update("Layer already exists", id))
                    return desc
                location = None
                for source in (await in_thread(self._mount_sources, ref, diff_id, desc.digest))[:MAX_MOUNT_ATTEMPTS]:
                    location = await client.mount_blob(repo, desc.digest, source)
                    if location is None:
                        pushed.add(desc.digest)
                        out.put(update(f"Mounted from {source}", id))
                        return desc
                    break  # the registry opened an upload instead: use it
                await self._upload(client, repo, desc, id, out, location)
            except rerr.RegistryError as e:
                raise push_error(e) from e
            pushed.add(desc.digest)
            out.put(update("Pushed", id))
            return desc

    def _mount_sources(self, target: Reference, diff_id: str, blob: str) -> list[str]:
        """Repositories of the same registry known to hold the layer: those an image with it was pulled
        from or pushed to (its RepoDigests), most recent first."""
        found: list[str] = []
        meta = self.store.meta
        for row in sorted(meta.images(), key=lambda r: r.added, reverse=True):
            try:
                if diff_id not in self.store.config(row.id).diff_ids:
                    continue
            except (NotFound, InvalidArgument):
                continue
            for r, _, kind in meta.refs_of(row.id):
                if kind != "digest":
                    continue
                src = reference.parse(r)
                if src.domain == target.domain and src.path != target.path and src.path not in found:
                    found.append(src.path)
        return found

    async def _upload(self, client: RegistryClient, repo: str, desc: Descriptor, id: str, out: _Messages,
                      location: str | None) -> None:
        ticker = _Ticker()
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            f = await in_thread(self.store.content.open, desc.digest)
            try:
                while chunk := await in_thread(f.read, _WRITE_BATCH):
                    sent += len(chunk)
                    if ticker.due(sent, desc.size):
                        out.put(progress("Pushing", id, sent, desc.size))
                    yield chunk
            finally:
                f.close()

        if location is None:
            location = await client.start_upload(repo)  # small request first: it settles auth
        await client.upload_blob(repo, desc.digest, body(), size=desc.size, location=location)

    async def _push_config(self, client: RegistryClient, repo: str, digest: str, raw: bytes, pushed: set[str]) -> None:
        try:
            if digest in pushed or await client.blob_exists(repo, digest) is not None:
                return
            await client.upload_blob(repo, digest, raw, size=len(raw))
        except rerr.RegistryError as e:
            raise push_error(e) from e
        pushed.add(digest)

    # -- login, search, inspect ------------------------------------------------------------------------

    async def login(self, config: JSON) -> JSON:
        """`POST /auth`: check the credentials against the registry (challenge, then Basic or a token)."""
        host = normalize_server(str(config.get("serveraddress") or ""))
        endpoint = self.settings.endpoint(host)
        creds = credentials(config)
        client = self._new_client(endpoint, creds)  # not cached: these credentials may be wrong
        url = f"{endpoint.base}/v2/"
        try:
            token = await client.login()
        except rerr.Unauthorized as e:
            scheme = (getattr(client, "_challenge", None) or ("",))[0]
            if scheme == "basic":
                raise Unauthorized(f"login attempt to {url} failed with status: 401 Unauthorized") from e
            raise Unauthorized(f'Get "{url}": {errcode_text(e)}') from e
        except rerr.Denied as e:
            raise Unauthorized(f'Get "{url}": {errcode_text(e)}') from e
        except rerr.RegistryError as e:
            raise BerthError(f"login attempt to {url} failed with status: {e.status}: {errcode_text(e)}") from e
        except (httpx.HTTPError, OSError) as e:
            raise Unavailable(transport_error(e, url)) from e
        finally:
            await client.aclose()
        return {"Status": "Login Succeeded", "IdentityToken": token or ""}

    async def search(self, term: str, *, limit: int | None, filters: dict[str, list[str]],
                     auth: JSON | None = None) -> list[JSON]:
        """`GET /images/search`: the registry's `/v1/search` (berth's registry answers it from its catalog)."""
        if limit is not None and not 1 <= limit <= 100:
            raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
        for k in filters:
            if k not in ("is-official", "is-automated", "stars"):
                raise InvalidArgument(f"invalid filter '{k}'")
        host, query = split_search_term(term)
        creds = credentials(auth)
        results: list[JSON] | None = None
        last: BaseException | None = None
        for ep in self.settings.search_endpoints(host):
            headers = {"User-Agent": self.user_agent}
            if creds is not None and creds.username:
                raw = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            params: dict[str, str | int] = {"q": query, "n": limit or 25}
            try:
                async with httpx.AsyncClient(timeout=30.0, verify=tls_context()) as http:
                    r = await http.get(f"{ep.base}/v1/search", params=params, headers=headers)
                if r.status_code != 200:
                    raise rerr.from_body(r.status_code, r.content)
                doc = r.json()
            except (rerr.RegistryError, httpx.HTTPError, OSError, ValueError) as e:
                last = e
                continue
            results = [x for x in (doc.get("results") or []) if isinstance(x, dict)]
            break
        if results is None:
            if isinstance(last, httpx.HTTPError | OSError):
                raise Unavailable(transport_error(last, "/v1/search"))
            raise BerthError(f"error searching {host}: {last}")
        out = [{"name": str(x.get("name", "")), "description": str(x.get("description") or ""),
                "star_count": int(x.get("star_count") or 0), "is_official": bool(x.get("is_official")),
                "is_automated": bool(x.get("is_automated"))} for x in results]
        return [x for x in out if _search_match(x, filters)][: limit or 25]

    async def inspect(self, name: str, *, auth: JSON | None) -> JSON:
        """`GET /distribution/{name}/json`: the descriptor the registry serves for `name`, and its platforms."""
        ref = reference.parse(name)
        if ref.tag is None and ref.digest is None:
            ref = ref.with_default_tag()
        creds = credentials(auth)
        failures: list[tuple[Endpoint, BaseException]] = []
        for ep in self.settings.pull_endpoints(ref):
            client = self._client(ep, creds)
            try:
                body, media_type, d = await client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
                platforms = await self._platforms(client, ref.path, body, media_type)
            except (rerr.RegistryError, httpx.HTTPError, OSError, BerthError) as e:
                failures.append((ep, e))
                if ep.mirror:
                    continue
                raise pull_error(e, ref, ep) from e
            return {"Descriptor": {"mediaType": media_type, "digest": str(d), "size": len(body)},
                    "Platforms": platforms}
        raise self._resolve_failure(ref, failures)

    async def _platforms(self, client: RegistryClient, repo: str, body: bytes, media_type: str) -> list[JSON]:
        doc = json.loads(body)
        if media_type in mt.INDEXES:
            return [_platform_json(e.get("platform") or {}) for e in doc.get("manifests") or []
                    if isinstance(e, dict) and isinstance(e.get("platform"), dict)]
        cfg = doc.get("config") or {}
        if not cfg.get("digest"):
            return []
        raw = b"".join([c async for c in client.fetch_blob(repo, cfg["digest"], size=cfg.get("size"))])
        return [_platform_json(json.loads(raw))]


@dataclass
class _StoredManifest:
    raw: bytes
    media_type: str
    manifest: Manifest

    @property
    def layers(self) -> list[Descriptor]:
        return list(self.manifest.layers)


def docker_manifest(config_digest: str, config_size: int, layers: list[Descriptor]) -> bytes:
    """A Docker v2 schema 2 manifest, laid out as distribution's MarshalIndent writes it (3 spaces)."""
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
           "config": {"mediaType": mt.DOCKER_CONFIG, "size": config_size, "digest": config_digest},
           "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in layers]}
    return json.dumps(doc, indent=3).encode()


def push_error(e: rerr.RegistryError) -> BerthError:
    if isinstance(e, rerr.Unauthorized | rerr.Denied):
        return Forbidden(errcode_text(e))
    return e


def pull_reference(image: str, tag: str | None) -> Reference:
    """moby's postImagesCreate: `tag` may be a tag or a digest; neither (and none in `image`) means all tags."""
    ref = reference.parse(image)
    if tag:
        if _is_digest(tag):
            Digest.parse(tag)
            return ref.repo().with_digest(tag)
        return ref.with_tag(tag) if ref.digest is None else ref
    return ref


def _is_digest(text: str) -> bool:
    return ":" in text and text.split(":", 1)[0] in ("sha256", "sha512")


def split_search_term(term: str) -> tuple[str, str]:
    """`localhost:5000/busy` → ("localhost:5000", "busy"); `busy` → ("docker.io", "busy")."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return normalize_server(first), rest
    return reference.DEFAULT_DOMAIN, term


def _search_match(result: JSON, filters: dict[str, list[str]]) -> bool:
    for v in filters.get("is-official", []):
        if result["is_official"] != _bool_filter("is-official", v):
            return False
    for v in filters.get("is-automated", []):
        if result["is_automated"] != _bool_filter("is-automated", v):
            return False
    for v in filters.get("stars", []):
        try:
            n = int(v)
        except ValueError:
            raise InvalidArgument(f"invalid filter 'stars={v}'")
        if result["star_count"] < n:
            return False
    return True


def _bool_filter(name: str, v: str) -> bool:
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{name}={v}'")


def _platform_json(p: dict[str, Any]) -> JSON:
    out: JSON = {"architecture": str(p.get("architecture", "")), "os": str(p.get("os", ""))}
    for src, dst in (("os.version", "os.version"), ("variant", "variant")):
        if p.get(src):
            out[dst] = str(p[src])
    if p.get("os.features"):
        out["os.features"] = list(p["os.features"])
    return out

