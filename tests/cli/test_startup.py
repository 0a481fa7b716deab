"""The hot paths import only what they use: Python start-up is most of a CLI call's cost, so `ps`,
`run` and `exec` must not pull in heavy modules (checked on real runs against the API stub)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.test_requests import SmartStub, _attach, _exec_start

HEAVY = {"asyncio", "threading", "typing", "dataclasses", "argparse", "ssl", "http.client", "urllib.request",
         "urllib.parse", "email.parser", "httpx", "platform", "tarfile", "subprocess", "inspect",
         "berth.cli.template", "berth.cli.gotypes"}


@pytest.mark.parametrize("args", [["ps"], ["ps", "-a", "--format", "{{.ID}}\t{{.Names}}"], ["images"],
                                  ["run", "--rm", "busybox", "true"], ["exec", "x", "true"], ["stop", "x"]])
def test_hot_paths_stay_lean(args: list[str], tmp_path: os.PathLike[str]) -> None:
    s = SmartStub(os.path.join(tmp_path, "api.sock"))
    s.routes[("POST", "/containers/abc123/attach")] = _attach
    s.routes[("POST", "/exec/e1/start")] = _exec_start
    env = dict(os.environ, DOCKER_HOST=f"unix://{s.path}", DOCKER_CONFIG=str(tmp_path))
    try:
        p = subprocess.run([sys.executable, "-X", "importtime", "-m", "berth.cli.main", *args], env=env,
                           capture_output=True, text=True, timeout=30)
    finally:
        s.close()
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {line.split("|")[2].strip() for line in p.stderr.splitlines()
                if line.startswith("import time:") and "imported package" not in line}
    assert "berth.client.http" in imported  # the probe sees real imports
    assert not (imported & HEAVY), sorted(imported & HEAVY)
