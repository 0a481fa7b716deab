from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import leaks
from tests.e2e.daemon import Berthd, preload_busybox


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def berthd(tmp_path_factory: pytest.TempPathFactory, image_cache: str) -> Iterator[Berthd]:
    """One daemon per test module (each test cleans up its own containers)."""
    base = str(tmp_path_factory.mktemp("berthd"))
    leaks.add_scope(base)
    d = Berthd(base)
    preload_busybox(d, image_cache)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def docker(berthd: Berthd):  # type: ignore[no-untyped-def]
    return berthd.docker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(os.path.dirname(__file__)):
            item.add_marker(pytest.mark.root)
