"""Shared helpers for registry tests: real image layouts from the fixtures, and a real server process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures")
BUSYBOX = os.path.realpath(os.path.join(FIXTURES, "busybox"))


def layout(variant: str, dest: str) -> str:
    """Copy a busybox OCI layout to `dest` with real blob files (the fixtures store blobs as path stubs)."""
    src = os.path.join(BUSYBOX, variant)
    os.makedirs(os.path.join(dest, "blobs", "sha256"), exist_ok=True)
    for name in ("oci-layout", "index.json"):
        shutil.copyfile(os.path.join(src, name), os.path.join(dest, name))
    for entry in os.listdir(os.path.join(src, "blobs", "sha256")):
        path = os.path.join(src, "blobs", "sha256", entry)
        with open(path, "rb") as f:
            head = f.read(256)
        if head.startswith(b"../") and len(head) < 200:
            path = os.path.normpath(os.path.join(os.path.dirname(path), head.decode().strip()))
        shutil.copyfile(path, os.path.join(dest, "blobs", "sha256", entry))
        with open(os.path.join(dest, "blobs", "sha256", entry), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == entry
    return dest


def manifest_of(layout_dir: str) -> tuple[dict, bytes, str]:
    with open(os.path.join(layout_dir, "index.json")) as f:
        idx = json.load(f)
    d = idx["manifests"][0]["digest"]
    with open(os.path.join(layout_dir, "blobs", *d.split(":")), "rb") as f:
        raw = f.read()
    return json.loads(raw), raw, d


def blob(layout_dir: str, digest: str) -> bytes:
    with open(os.path.join(layout_dir, "blobs", *digest.split(":")), "rb") as f:
        return f.read()


@dataclass
class RegistryProcess:
    """`berth registry serve` as a real process on a free loopback port."""

    root: str
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    url: str = ""

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def start(self) -> RegistryProcess:
        cmd = [sys.executable, "-c", "import sys; from berth.registry.server import main; sys.exit(main(sys.argv[1:]))",
               "serve", "--addr", "127.0.0.1:0", "--root", self.root, "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"registry did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    def stop(self) -> str:
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            assert self.proc.stderr is not None
            err = self.proc.stderr.read()
            for s in (self.proc.stdout, self.proc.stderr):
                if s is not None:
                    s.close()
            self.proc = None
        return err


def run(cmd: list[str], timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload,no-any-return]


def wait_until(pred, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())
