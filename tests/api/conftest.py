"""A berth Engine API over the in-memory fake daemon, served from a background thread on a unix
socket under tmp_path, so that real, blocking clients (the docker CLI, docker-py) can drive it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from berth.api import EngineAPI
from berth.httpd import Server

from .fake import FakeDaemon

T = TypeVar("T")
DOCKER = "/usr/local/bin/docker"


class Engine:
    def __init__(self, sock: str, home: Path) -> None:
        self.sock = sock
        self.home = home
        self.daemon = FakeDaemon()
        self.api = EngineAPI(self.daemon.backends())
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.server: Server | None = None
        self.thread = threading.Thread(target=self._run, name="engine", daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self._started.wait(10) or self._error is not None:
            raise RuntimeError(f"engine did not start: {self._error!r}")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as e:  # surfaced by start()
            self._error = e
            self._started.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.daemon.loop = asyncio.get_running_loop()
        self.server = self.api.server(unix=self.sock)
        await self.server.start()
        self._started.set()
        await self._stop.wait()
        for c in list(self.daemon.containers.values()):
            if c.task is not None:
                c.task.cancel()
        await self.server.close()

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the engine's loop (to read or poke the fake daemon safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.home / ".docker"),
               "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}
        if "BERTH_TEST_TOKEN" in os.environ:
            env["BERTH_TEST_TOKEN"] = os.environ["BERTH_TEST_TOKEN"]
        env.update(extra)
        return env

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 30,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run the real docker CLI 28 against this engine."""
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, timeout=timeout,
                              env=self.env(**(env or {})), stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    home = tmp_path / "home"
    home.mkdir()
    e = Engine(str(tmp_path / "berth.sock"), home)
    e.start()
    try:
        yield e
    finally:
        e.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker_cli: drives the real docker CLI 28 (/usr/local/bin/docker)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.path.exists(DOCKER):
        return
    skip = pytest.mark.skip(reason=f"{DOCKER} (docker CLI 28) is not installed")
    for item in items:
        if "docker_cli" in item.keywords:
            item.add_marker(skip)
