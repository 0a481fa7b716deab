"""Helpers for runtime tests: a bundle from busybox, and `berth-runtime` run as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from tests import leaks
from tests.rootfs import make_busybox_rootfs

RUNTIME = os.path.join(os.path.dirname(sys.executable), "berth-runtime")


class Bundle:
    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.state_root = root
        self.rootfs = os.path.join(path, "rootfs")

    def config(self, args: list[str], *, seccomp: bool = False, **overrides: Any) -> dict[str, Any]:
        """Docker's default spec for `args`, with `overrides` merged in (dotted keys reach into dicts)."""
        from berth.runtime.spec import default_spec

        spec = default_spec(args, seccomp=seccomp)
        spec["linux"]["cgroupsPath"] = "/" + leaks.name("berth-rt")
        for key, value in overrides.items():
            target = spec
            parts = key.split("__")
            for p in parts[:-1]:
                target = target.setdefault(p, {})
            target[parts[-1]] = value
        return spec

    def write(self, spec: dict[str, Any]) -> None:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(spec, f)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # Output goes to files, not pipes: a detached container inherits the runtime's stdio (as
        # with runc), so a pipe would stay open until the container exits.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([RUNTIME, "--root", self.state_root, *args], stdin=subprocess.DEVNULL, stdout=out,
                               stderr=err, timeout=timeout, cwd=self.path, check=False)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())

    def run(self, args: list[str], **overrides: Any) -> subprocess.CompletedProcess[str]:
        self.write(self.config(args, **overrides))
        return self.cli("run", "--bundle", self.path, leaks.name("c"))

    def sh(self, script: str, **overrides: Any) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], **overrides)


def make_bundle(tmp_path: str) -> Bundle:
    path = os.path.join(tmp_path, "bundle")
    os.makedirs(path)
    make_busybox_rootfs(os.path.join(path, "rootfs"))
    return Bundle(path, os.path.join(tmp_path, "state"))
