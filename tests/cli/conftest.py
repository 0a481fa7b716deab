"""Fixtures for the CLI tests: the private dockerd oracle, a recording API stub, and a way to run
`berth` (as a real process, the way users run it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.cli.stub import Stub
from tests.dockerd import DOCKER, Dockerd, session_fixture

BERTH = [sys.executable, "-m", "berth.cli.main"]


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    yield from session_fixture(tmp_path_factory)


@pytest.fixture
def oracle(dockerd: Dockerd) -> Iterator[Dockerd]:
    """The daemon, with every container removed after the test."""
    yield dockerd
    dockerd.cleanup_containers()


def run_berth(args: list[str], env: dict[str, str], input: str | bytes | None = None, timeout: float = 60,
              text: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([*BERTH, *args], env=env, capture_output=True, text=text, input=input, timeout=timeout)


def run_docker(args: list[str], env: dict[str, str], input: str | bytes | None = None, timeout: float = 60,
               text: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=text, input=input, timeout=timeout)


needs_docker_cli = pytest.mark.skipif(not os.path.exists(DOCKER) and shutil.which("docker") is None,
                                      reason="the docker CLI is not installed")


@pytest.fixture
def stub(tmp_path: os.PathLike[str]) -> Iterator[Stub]:
    s = Stub(os.path.join(tmp_path, "api.sock"))
    yield s
    s.close()


def stub_env(s: Stub, tmp_path: os.PathLike[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BERTH_HOST"))}
    cfg = os.path.join(tmp_path, "client-config")
    os.makedirs(cfg, exist_ok=True)
    env.update(DOCKER_HOST=f"unix://{s.path}", DOCKER_CONFIG=cfg, DOCKER_CLI_HINTS="false")
    return env
