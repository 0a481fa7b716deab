from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from berth.image import bootstrap
from berth.image.service import ImageService


@pytest.fixture
def svc(tmp_path) -> Iterator[ImageService]:
    yield ImageService(str(tmp_path / "data"))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox:latest made by `bootstrap.busybox` (Debian's busybox-static), as a docker save tarball."""
    out = str(tmp_path_factory.mktemp("bootstrap") / "busybox.tar")
    bootstrap.busybox(out)
    return out


def state(svc: ImageService) -> tuple:
    """Everything a load may change: images, refs, blobs, snapshots, layers."""
    return (sorted((r.id, tuple(r.refs)) for r in svc.meta.images()), sorted(svc.content.walk()),
            sorted(i.key for i in svc.snapshots.all()), sorted(x.chain_id for x in svc.meta.layers()),
            sorted(os.listdir(os.path.join(svc.snapshots.root))))
