"""Fixtures: a `berth registry serve` process on a free loopback port, shared per module."""

from __future__ import annotations

from collections.abc import Iterator

import bcrypt
import httpx
import pytest

from tests import leaks
from tests.registry.helpers import RegistryProcess


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from start_registry(str(tmp_path_factory.mktemp("registry")))


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("auth")
    path = d / "htpasswd"
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}"
             for u, p in (("alice", "wonderland"), ("bob", "builder"))]
    lines.append("carol:{SHA}plaintext-style-entries-are-refused")
    path.write_text("\n".join(lines) + "\n")
    (d / "acl").write_text("alice * pull,push,delete\nalice catalog *\nbob team/* pull\n* public/* pull\n")
    return str(d)


def start_registry(root: str, *args: str) -> Iterator[RegistryProcess]:
    reg = RegistryProcess(root, list(args)).start()
    assert reg.proc is not None
    leaks.allow_pid(reg.proc.pid)
    yield reg
    pid = reg.proc.pid
    err = reg.stop()
    leaks.disallow_pid(pid)
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def basic_reg(users: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from start_registry(str(tmp_path_factory.mktemp("basic")), "--htpasswd", f"{users}/htpasswd",
                              "--acl", f"{users}/acl")


@pytest.fixture(scope="module")
def token_reg(users: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from start_registry(str(tmp_path_factory.mktemp("token")), "--htpasswd", f"{users}/htpasswd", "--acl",
                              f"{users}/acl", "--token-realm", "/token", "--token-service", "test-registry")
