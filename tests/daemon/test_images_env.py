"""Shared set-up for the images backend tests (no tests here).

- `Engine`: berth's Engine API with the real `Images` backend (and a minimal system backend for `/auth`,
  `/info`, `/version`) over a real ImageService under tmp_path, served on a unix socket from a thread so
  that blocking clients (the docker CLI 28, docker-py) can drive it.
- `Registry`: berth's registry server as a real process on a free loopback port, with helpers that put
  real images in it (the official busybox layouts, synthetic images, multi-arch indexes).
- `Proxy`: a loopback TCP proxy that records the HTTP requests it relays and can slow responses down.
- `network_guard`: fails any name lookup or connection to anything but loopback or a unix socket.

Other test modules import the fixtures from here (`from tests.daemon.test_images_env import ...`).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import bcrypt
import pytest

from berth.api import EngineAPI
from berth.api.app import Backends
from berth.daemon.images import Images
from berth.daemon.registries import RegistrySettings
from berth.httpd import Server
from berth.image.service import ImageService
from berth.registry.client import Credentials, RegistryClient
from tests import leaks
from tests.registry.helpers import RegistryProcess, layout, manifest_of

T = TypeVar("T")
DOCKER = "/usr/local/bin/docker"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

needs_docker = pytest.mark.skipif(not os.path.exists(DOCKER), reason=f"{DOCKER} (docker CLI 28) is not installed")
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the engine -------------------------------------------------------------------------------------


class MiniSystem:
    """The smallest SystemBackend the CLI needs around images: `/auth` goes to the images backend."""

    def __init__(self, images: Images) -> None:
        self.images = images

    async def info(self) -> dict[str, Any]:
        return {"RegistryConfig": self.images.settings.info()}

    async def df(self, *, types: list[str] | None) -> dict[str, Any]:
        return {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}

    async def events(self, *, since: float | None, until: float | None, filters: dict[str, list[str]]):
        if False:
            yield {}

    async def auth(self, config: dict[str, Any]) -> dict[str, Any]:
        return await self.images.auth(config)

    async def version_components(self) -> list[dict[str, Any]]:
        return []


class Engine:
    def __init__(self, root: Path, settings: RegistrySettings) -> None:
        self.root = root
        self.sock = str(root / "berth.sock")
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)
        self.store = ImageService(str(root / "data"))
        self.events: list[tuple[str, str, dict[str, str]]] = []
        self.images = Images(self.store, settings=settings,
                             on_event=lambda a, i, attrs: self.events.append((a, i, attrs)))
        self.api = EngineAPI(Backends(images=self.images, system=MiniSystem(self.images)))
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.server: Server | None = None
        self.thread = threading.Thread(target=self._run, name="images-engine", daemon=True)

    def start(self) -> Engine:
        self.thread.start()
        if not self._started.wait(10) or self._error is not None:
            raise RuntimeError(f"engine did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as e:
            self._error = e
            self._started.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.server = self.api.server(unix=self.sock)
        await self.server.start()
        self._started.set()
        await self._stop.wait()
        await self.server.close()
        await self.images.aclose()

    def stop(self) -> None:
        if self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.home / ".docker"),
               "DOCKER_CLI_HINTS": "false", "BERTH_TEST_TOKEN": leaks.TOKEN}
        env.update(extra)
        return env

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real docker CLI 28 against this engine (stdout is not a TTY: one line per message)."""
        return subprocess.run([DOCKER, *args], input=input.decode() if input is not None else None,
                              capture_output=True, text=True, timeout=timeout, env=self.env(),
                              stdin=None if input is not None else subprocess.DEVNULL)

    def client(self):
        import docker

        return docker.DockerClient(base_url=f"unix://{self.sock}", version="1.44", timeout=120)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make(settings: RegistrySettings | None = None, name: str = "engine") -> Engine:
        root = tmp_path / name
        root.mkdir()
        e = Engine(root, settings or RegistrySettings()).start()
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.stop()


# -- the registry -----------------------------------------------------------------------------------


@dataclass
class Image:
    """An image as a registry holds it: blobs by digest, the manifest bytes and type."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.blobs[self.doc["config"]["digest"]])

    @property
    def layer_digests(self) -> list[str]:
        return [x["digest"] for x in self.doc["layers"]]

    @property
    def image_id(self) -> str:
        return str(self.doc["config"]["digest"])


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_image(layers: list[bytes], *, arch: str = "amd64", os_: str = "linux", variant: str | None = None,
               cmd: list[str] | None = None, labels: dict[str, str] | None = None,
               gzipped: list[bytes] | None = None) -> Image:
    """An OCI image from plain layer tars (gzipped here unless given), with a real config and history."""
    gz = gzipped or [gzip.compress(t, compresslevel=1, mtime=0) for t in layers]
    cfg: dict[str, Any] = {"architecture": arch, "os": os_, "created": "2024-05-01T10:00:00Z",
                           "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/usr/bin:/bin"], "Labels": labels or None},
                           "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]},
                           "history": [{"created": "2024-05-01T10:00:00Z", "created_by": f"layer {i}"}
                                       for i in range(len(layers))]}
    if variant:
        cfg["variant"] = variant
    config = json.dumps(cfg).encode()
    blobs = {sha(config): config, **{sha(g): g for g in gz}}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha(g), "size": len(g)}
                                      for g in gz]}).encode()
    return Image(manifest, OCI_MANIFEST, blobs)


def busybox(tmp: Path, variant: str = "latest-musl") -> Image:
    """The official busybox image (an OCI layout from docker-library), as a registry would hold it."""
    src = layout(variant, str(tmp / f"layout-{variant}"))
    doc, raw, _ = manifest_of(src)
    blobs = {}
    for d in [doc["config"]["digest"], *(x["digest"] for x in doc["layers"])]:
        with open(os.path.join(src, "blobs", *d.split(":")), "rb") as f:
            blobs[d] = f.read()
    return Image(raw, doc["mediaType"], blobs)


class Registry:
    """berth's registry server on a free loopback port; `push` puts images in it with berth's client."""

    def __init__(self, root: str, *args: str, creds: tuple[str, str] | None = None) -> None:
        self.proc = RegistryProcess(root, list(args)).start()
        assert self.proc.proc is not None
        leaks.allow_pid(self.proc.proc.pid)
        self.creds = creds

    @property
    def host(self) -> str:
        return self.proc.host

    @property
    def url(self) -> str:
        return self.proc.url

    def stop(self) -> str:
        assert self.proc.proc is not None
        pid = self.proc.proc.pid
        err = self.proc.stop()
        leaks.disallow_pid(pid)
        return err

    def _run(self, coro_fn: Any) -> Any:
        async def go() -> Any:
            creds = Credentials(*self.creds) if self.creds else None
            async with RegistryClient(self.host, credentials=creds) as c:
                return await coro_fn(c)

        return asyncio.run(go())

    def push(self, repo: str, tag: str | None, image: Image) -> str:
        async def go(c: RegistryClient) -> str:
            for d, data in image.blobs.items():
                if await c.blob_exists(repo, d) is None:
                    await c.upload_blob(repo, d, data)
            await c.put_manifest(repo, tag or image.digest, image.manifest, image.media_type)
            return image.digest

        return str(self._run(go))

    def push_index(self, repo: str, tag: str, entries: list[tuple[Image, dict[str, str] | None]]) -> bytes:
        """An OCI index over images (a None platform makes an attestation-like entry without one)."""
        for img, _ in entries:
            self.push(repo, None, img)
        manifests = []
        for img, plat in entries:
            d: dict[str, Any] = {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)}
            if plat is not None:
                d["platform"] = plat
            else:
                d["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
                d["platform"] = {"architecture": "unknown", "os": "unknown"}
            manifests.append(d)
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()

        async def go(c: RegistryClient) -> None:
            await c.put_manifest(repo, tag, index, OCI_INDEX)

        self._run(go)
        return index

    def manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        async def go(c: RegistryClient) -> tuple[bytes, str]:
            body, media_type, _ = await c.get_manifest(repo, ref)
            return body, media_type

        return self._run(go)

    def blob(self, repo: str, digest: str) -> bytes:
        async def go(c: RegistryClient) -> bytes:
            return b"".join([x async for x in c.fetch_blob(repo, digest)])

        return self._run(go)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(str(tmp_path / "registry"))
    yield reg
    err = reg.stop()
    assert "Traceback" not in err, err


def htpasswd(path: Path, users: dict[str, str]) -> str:
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                            for u, p in users.items()))
    return str(path)


# -- a recording, throttling proxy ------------------------------------------------------------------


@dataclass
class Seen:
    at: float
    method: str
    path: str
    headers: dict[str, str]


class Proxy:
    """Relays loopback TCP to `target`; records every HTTP request head the client sends; optionally
    holds each response to `rate` bytes per second per connection."""

    def __init__(self, target: str, rate: float | None = None) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.rate = rate
        self.requests: list[Seen] = []
        self.bytes_down = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        self._conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _record(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = ([*lines[0].split(" "), "", "", ""])[:3]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k:
                headers[k.strip().lower()] = v.strip()
        with self._lock:
            self.requests.append(Seen(time.monotonic(), method, path, headers))

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns += [client, upstream]

        def up() -> None:
            buf, parsing = b"", True
            try:
                while chunk := client.recv(65536):
                    buf += chunk
                    # Pull requests have no body, so each head ends with a blank line; once a request
                    # with a body goes by (a push), stop looking at this connection.
                    while parsing and b"\r\n\r\n" in buf:
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        self._record(head)
                        low = head.lower()
                        if (b"content-length:" in low and b"content-length: 0" not in low) or b"chunked" in low:
                            parsing = False
                    upstream.sendall(chunk)
            except OSError:
                pass
            finally:
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=up, daemon=True).start()
        try:
            while chunk := upstream.recv(65536):
                if self.rate:
                    for i in range(0, len(chunk), 16384):
                        piece = chunk[i:i + 16384]
                        client.sendall(piece)
                        time.sleep(len(piece) / self.rate)
                else:
                    client.sendall(chunk)
                with self._lock:
                    self.bytes_down += len(chunk)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def blob_gets(self) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and "/blobs/" in r.path]

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.thread.join()
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def make_proxy() -> Iterator[Any]:
    proxies: list[Proxy] = []

    def make(target: str, rate: float | None = None) -> Proxy:
        p = Proxy(target, rate)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


# -- no traffic beyond loopback ---------------------------------------------------------------------


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):
        return True  # a unix socket
    host = str(address[0])
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every name lookup or connection this process attempts to anything but loopback is refused and
    recorded; the test asserts the list stays empty."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address):
            attempts.append(f"connect {address}")
            raise OSError(f"network_guard: connection to {address} refused by the test")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address):
            attempts.append(f"connect {address}")
            return 111
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host is not None and not _is_local((host.decode() if isinstance(host, bytes) else host, 0)):
            attempts.append(f"getaddrinfo {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"network_guard: lookup of {host} refused by the test")
        return real_getaddrinfo(host, *args, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def lines(p: subprocess.CompletedProcess[str]) -> list[str]:
    return [x.strip() for x in p.stdout.splitlines() if x.strip()]
