"""Fixtures: a `berth registry serve` process on a free loopback port, shared per module."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import leaks
from tests.registry.helpers import RegistryProcess


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    reg = RegistryProcess(str(tmp_path_factory.mktemp("registry"))).start()
    assert reg.proc is not None
    leaks.allow_pid(reg.proc.pid)
    yield reg
    pid = reg.proc.pid
    err = reg.stop()
    leaks.disallow_pid(pid)
    assert "Traceback" not in err, err


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30) as c:
        yield c
