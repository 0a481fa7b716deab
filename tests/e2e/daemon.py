"""A real berthd for tests: started as a subprocess on a temporary socket, data root and exec root,
with busybox:latest loaded (made from Debian's busybox-static), stopped and cleaned afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from tests import leaks

BERTHD = os.path.join(os.path.dirname(sys.executable), "berthd")
DOCKER = shutil.which("docker", path="/usr/local/bin") or "docker"


class Berthd:
    def __init__(self, base: str, *extra: str) -> None:
        self.base = base
        self.socket = os.path.join(base, "berth.sock")
        self.data_root = os.path.join(base, "data")
        self.exec_root = os.path.join(base, "exec")
        self.pidfile = os.path.join(base, "berthd.pid")
        self.log = os.path.join(base, "berthd.log")
        self.cgroup_parent = leaks.name("berth-d")
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "BERTH_HOST": self.host, "DOCKER_CONFIG":
                os.path.join(self.base, "docker-config")}

    def start(self) -> None:
        args = [BERTHD, "-H", self.host, "--data-root", self.data_root, "--exec-root", self.exec_root,
                "--pidfile", self.pidfile, "--cgroup-parent", self.cgroup_parent,
                "--config-file", os.path.join(self.base, "daemon.json"), *self.extra]
        if not os.path.exists(os.path.join(self.base, "daemon.json")):
            # tests never reach docker.io: short names resolve only through configured mirrors
            with open(os.path.join(self.base, "daemon.json"), "w") as f:
                f.write('{"default-registry": ""}\n')
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        leaks.allow_pid(self.proc.pid)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log) as f:
                    raise RuntimeError(f"berthd did not start:\n{f.read()}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        """True once the daemon answers on its socket (a stale socket file of a killed one does not)."""
        import socket

        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.socket)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        leaks.disallow_pid(self.proc.pid)
        self.proc = None

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, *args], env=self.env(), capture_output=True, text=True,
                              input=input.decode() if input is not None else None, timeout=timeout)

    def cleanup(self) -> None:
        """Remove every container (and its monitor), then stop the daemon."""
        if self.proc is not None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
        self.stop()
        # anything still mounted under our roots (a failed test) goes too
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(self.base)), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        # the daemon's parent cgroup (berthd creates it at start and, like dockerd, keeps it)
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            path = os.path.join("/sys/fs/cgroup", hierarchy, self.cgroup_parent)
            if os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def busybox_tar(cache_dir: str) -> str:
    from berth.image import bootstrap

    tar = os.path.join(cache_dir, "busybox.tar")
    if not os.path.exists(tar):
        bootstrap.busybox(tar)
    return tar


def preload_busybox(d: Berthd, cache_dir: str) -> None:
    """busybox:latest straight into the (not yet started) daemon's image store."""
    from berth.image.service import ImageService

    svc = ImageService(os.path.join(d.data_root, "image"))
    with open(busybox_tar(cache_dir), "rb") as f:
        svc.load(f)
    svc.meta.close() if hasattr(svc.meta, "close") else None
