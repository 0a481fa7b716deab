from __future__ import annotations

import os

import pytest


@pytest.fixture
def sock(tmp_path: os.PathLike[str]) -> str:
    return os.path.join(tmp_path, "api.sock")
