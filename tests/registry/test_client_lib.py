"""berth.registry.client against berth's own server processes: resolve, blobs, uploads, auth, credentials."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator

import pytest

from berth.errors import NotFound
from berth.registry import errors as rerr
from berth.registry.client import Credentials, Platform, RegistryClient
from berth.registry.client import credentials as credmod
from tests.helpers import fake_credential_helper
from tests.registry.helpers import RegistryProcess, blob, layout, manifest_of

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_layout(c: RegistryClient, repo: str, src: str, tag: str | None = None) -> tuple[str, bytes, dict]:
    doc, raw, d = manifest_of(src)
    for desc in [doc["config"], *doc["layers"]]:
        if await c.blob_exists(repo, desc["digest"]) is None:
            await c.upload_blob(repo, desc["digest"], blob(src, desc["digest"]))
    await c.put_manifest(repo, tag or d, raw, doc["mediaType"])
    return d, raw, doc


def test_resolve_multi_arch_index_and_fetch_layers(registry: RegistryProcess,
                                                   tmp_path) -> None:  # type: ignore[no-untyped-def]
    musl, glibc = layout("latest-musl", str(tmp_path / "m")), layout("latest-glibc", str(tmp_path / "g"))

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            md, mraw, _ = await push_layout(c, "lib/multi", musl)
            gd, graw, gdoc = await push_layout(c, "lib/multi", glibc)
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": gdoc["mediaType"], "digest": gd, "size": len(graw),
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": gdoc["mediaType"], "digest": md, "size": len(mraw),
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": gdoc["mediaType"], "digest": md, "size": len(mraw),
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]}).encode()
            idx = await c.put_manifest("lib/multi", "latest", index, OCI_INDEX)
            r = await c.resolve("lib/multi", "latest", Platform.parse("linux/amd64"))
            assert str(r.digest) == md and r.manifest == mraw and str(r.index_digest) == str(idx)
            assert r.config == blob(musl, r.json()["config"]["digest"])
            r = await c.resolve("lib/multi", "latest", Platform.parse("linux/arm64"))
            assert str(r.digest) == gd
            with pytest.raises(NotFound):
                await c.resolve("lib/multi", "latest", Platform.parse("linux/s390x"))
            layer = r.json()["layers"][0]
            got = bytearray()
            n = await c.write_blob_to("lib/multi", layer["digest"], got.extend, size=layer["size"])
            assert n == layer["size"] and bytes(got) == blob(glibc, layer["digest"])
            # resolve by digest, and a plain manifest without an index
            r = await c.resolve("lib/multi", md)
            assert r.index is None and str(r.digest) == md

    asyncio.run(go())


def test_fetch_blob_detects_corruption(registry: RegistryProcess) -> None:
    data = os.urandom(300000)
    d = sha(data)

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            await c.upload_blob("lib/corrupt", d, data)
            path = os.path.join(registry.root, "blobs", "sha256", d[7:9], d[7:])
            with open(path, "r+b") as f:
                f.seek(1000)
                f.write(b"\x00" * 8)
            with pytest.raises(rerr.DigestInvalid):
                async for _ in c.fetch_blob("lib/corrupt", d, size=len(data)):
                    pass

    asyncio.run(go())


def test_range_resume_from_offset(registry: RegistryProcess) -> None:
    data = os.urandom(2 << 20)
    d = sha(data)

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            await c.upload_blob("lib/range", d, data, chunk_size=700000)
            h = hashlib.sha256(data[:123456])
            rest = b"".join([x async for x in c.fetch_blob("lib/range", d, offset=123456, hasher=h, size=len(data))])
            assert rest == data[123456:]

    asyncio.run(go())


class CuttingProxy:
    """A loopback TCP proxy whose first connection dies after `cut` bytes of response."""

    def __init__(self, target: tuple[str, int], cut: int) -> None:
        self.target, self.cut = target, cut
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, limit), daemon=True).start()

    def _pipe(self, client: socket.socket, limit: int | None) -> None:
        upstream = socket.create_connection(self.target)

        def up() -> None:
            try:
                while chunk := client.recv(65536):
                    upstream.sendall(chunk)
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        sent = 0
        try:
            while chunk := upstream.recv(65536):
                if limit is not None and sent + len(chunk) > limit:
                    client.sendall(chunk[: limit - sent])
                    break
                client.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[CuttingProxy]:
    host, port = registry.host.split(":")
    p = CuttingProxy((host, int(port)), cut=1 << 20)
    yield p
    p.close()


def test_dropped_download_resumes_with_range(registry: RegistryProcess, proxy: CuttingProxy) -> None:
    data = os.urandom(3 << 20)
    d = sha(data)

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            await c.upload_blob("lib/resume", d, data)
        proxy.connections = 0
        async with RegistryClient(f"127.0.0.1:{proxy.port}") as c:
            got = b"".join([x async for x in c.fetch_blob("lib/resume", d, size=len(data))])
        assert got == data
        assert proxy.connections == 2  # cut once, resumed once

    asyncio.run(go())


def test_uploads_chunked_streamed_mount_and_resume(registry: RegistryProcess) -> None:
    data = os.urandom(1 << 20)
    d = sha(data)

    async def stream():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 100000):
            yield data[i:i + 100000]

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            await c.upload_blob("lib/up1", d, stream(), size=len(data))
            assert await c.blob_exists("lib/up1", d) == len(data)
            await c.upload_blob("lib/up2", d, stream(), chunk_size=300000)
            assert await c.blob_exists("lib/up2", d) == len(data)
            # a mount from a repository that has it: no bytes sent
            await c.upload_blob("lib/up3", d, b"never read", mount_from="lib/up1")
            assert await c.blob_exists("lib/up3", d) == len(data)

    asyncio.run(go())

    async def resume() -> None:
        other = os.urandom(500000)
        async with RegistryClient(registry.host) as c:
            loc = await c.start_upload("lib/up5")
            r = await c.request("PATCH", loc, ["repository:lib/up5:pull,push"], content=other[:200000],
                                headers={"Content-Range": "0-199999"}, ok=(202,))
            loc = r.headers["location"]
            held = await c.upload_status("lib/up5", loc)
            assert held == 200000
            await c.upload_blob("lib/up5", sha(other), other[held:], chunk_size=150000, location=loc, offset=held)
            assert await c.blob_exists("lib/up5", sha(other)) == len(other)

    asyncio.run(resume())


def test_tags_catalog_pagination_and_manifest_errors(registry: RegistryProcess,
                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = layout("latest-uclibc", str(tmp_path / "u"))

    async def go() -> None:
        async with RegistryClient(registry.host) as c:
            d, raw, doc = await push_layout(c, "lib/paged", src)
            for t in ("t3", "t1", "t2", "t0", "t4"):
                await c.put_manifest("lib/paged", t, raw, doc["mediaType"])
            assert await c.tags("lib/paged", page_size=2) == ["t0", "t1", "t2", "t3", "t4"]
            assert "lib/paged" in await c.catalog(page_size=1)
            with pytest.raises(rerr.NameUnknown):
                await c.tags("lib/none")
            with pytest.raises(rerr.ManifestUnknown):
                await c.get_manifest("lib/paged", "nope")
            assert await c.head_manifest("lib/paged", "nope") is None
            assert str((await c.head_manifest("lib/paged", "t1"))[0]) == d  # type: ignore[index]
            bad = raw.replace(b"schemaVersion", b"schemaversion")
            with pytest.raises(rerr.ManifestInvalid):
                await c.put_manifest("lib/paged", "bad", bad, "application/vnd.oci.image.manifest.v1+json")
            # a manifest altered on the server is caught by its digest
            path = os.path.join(registry.root, "blobs", "sha256", d[7:9], d[7:])
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            with open(path, "r+b") as f:
                f.write(b" ")
            with pytest.raises(rerr.DigestInvalid):
                await c.get_manifest("lib/paged", d)

    asyncio.run(go())


def test_basic_auth_and_token_flow_with_scopes(basic_reg: RegistryProcess, token_reg: RegistryProcess) -> None:
    data = b"auth blob"

    async def go(reg: RegistryProcess) -> None:
        async with RegistryClient(reg.host, credentials=Credentials("alice", "wonderland")) as c:
            await c.ping()
            await c.upload_blob("team/lib", sha(data), data)
            await c.upload_blob("team/lib2", sha(data), b"", mount_from="team/lib")
            assert await c.blob_exists("team/lib2", sha(data)) == len(data)
            assert await c.login() == ""
        async with RegistryClient(reg.host, credentials=Credentials("bob", "builder")) as c:
            assert b"".join([x async for x in c.fetch_blob("team/lib", sha(data))]) == data
            with pytest.raises((rerr.Unauthorized, rerr.Denied)):
                await c.upload_blob("team/lib", sha(b"bob's"), b"bob's")
        async with RegistryClient(reg.host, credentials=Credentials("alice", "wrong")) as c:
            with pytest.raises(rerr.Unauthorized):
                await c.blob_exists("team/lib", sha(data))
            with pytest.raises(rerr.Unauthorized):
                await c.login()
        async with RegistryClient(reg.host) as c:  # anonymous
            with pytest.raises(rerr.Unauthorized):
                await c.blob_exists("team/lib", sha(data))

    asyncio.run(go(basic_reg))
    asyncio.run(go(token_reg))


def test_credentials_from_docker_config_and_helper(token_reg: RegistryProcess, tmp_path,  # type: ignore[no-untyped-def]
                                                   monkeypatch) -> None:
    import base64

    auths = {"auths": {f"http://{token_reg.host}/v2/": {
        "auth": base64.b64encode(b"alice:wonderland").decode()}}}
    assert credmod.lookup(auths, token_reg.host) == Credentials("alice", "wonderland")
    # a credential helper speaking the docker-credential-* protocol, found on PATH
    bindir = tmp_path / "bin"
    fake_credential_helper(str(bindir), str(tmp_path / "store.json"))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    cfg_path = str(tmp_path / "docker" / "config.json")
    os.makedirs(os.path.dirname(cfg_path))
    with open(cfg_path, "w") as f:
        json.dump({"credHelpers": {token_reg.host: "berthtest"}}, f)
    credmod.save(cfg_path, token_reg.host, Credentials("alice", "wonderland"))
    saved = credmod.load_config(cfg_path)
    assert saved["auths"][token_reg.host] == {}  # the secret went to the helper, not the file
    with open(cfg_path) as f:
        assert "wonderland" not in f.read()

    async def go() -> None:
        async with RegistryClient(token_reg.host, docker_config=credmod.load_config(cfg_path)) as c:
            await c.upload_blob("team/helper", sha(b"h"), b"h")
            assert await c.blob_exists("team/helper", sha(b"h")) == 1

    asyncio.run(go())
    credmod.remove(cfg_path, token_reg.host)
    assert credmod.lookup(credmod.load_config(cfg_path), token_reg.host) is None
    with pytest.raises(NotFound):
        credmod.remove(str(tmp_path / "none.json"), token_reg.host)
    # without helpers, docker login writes base64 into auths
    plain = str(tmp_path / "plain.json")
    credmod.save(plain, "docker.io", Credentials("u", "p"))
    entry = credmod.load_config(plain)["auths"]["https://index.docker.io/v1/"]
    assert entry["auth"] == base64.b64encode(b"u:p").decode()
