"""Shared fixtures. Every test is checked for leaked kernel state (mounts, cgroups, netns, links,
processes): a test that leaves any behind fails, because a user's machine would keep them too."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests import leaks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves mounts, cgroups, netns, links or processes behind."""
    if os.geteuid() != 0 or request.node.get_closest_marker("allow_leaks"):
        yield
        return
    leaks.add_scope(str(request.config._tmp_path_factory.getbasetemp()))  # type: ignore[attr-defined]
    before = leaks.snapshot()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        diff = leaks.new_since(before)
        if not diff or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if diff:
        leaks.cleanup(diff)
        pytest.fail("test leaked state:\n" + "\n".join(f"  {k}: {v}" for k, v in diff.items()), pytrace=False)


@pytest.fixture
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox root filesystem made from Debian's busybox-static (applets as symlinks)."""
    from tests.rootfs import make_busybox_rootfs

    return make_busybox_rootfs(str(tmp_path_factory.mktemp("bbroot")))


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]
