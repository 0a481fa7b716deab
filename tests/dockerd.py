"""A private Docker daemon (Debian's dockerd 20.10): the oracle for the tests that compare with Docker.

It never touches /var/run/docker.sock: its socket, data root and exec root are its own, its names carry
the test session token, the bridge and iptables are off (containers run with `--network none`), and a
busybox image made from /bin/busybox (tests/rootfs.py) is imported as `busybox:latest`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time

from tests import leaks
from tests.rootfs import make_busybox_rootfs

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def available() -> str | None:
    """None if a private dockerd can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("dockerd", "containerd", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker.io)"
    if not os.path.exists(DOCKER):
        return "the docker CLI is not installed"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    return None


class Dockerd:
    def __init__(self, base: str, extra_args: tuple[str, ...] = ()) -> None:
        self.base = base
        self.extra_args = extra_args  # more dockerd flags (e.g. --add-runtime)
        self.data_root = os.path.join(base, "root")
        # containerd's sockets live in the exec root and unix socket paths stop at 108 bytes: keep it short
        self.exec_root = f"/tmp/{leaks.name('bcx')}"
        self.sock = os.path.join(base, "docker.sock")
        self.host = f"unix://{self.sock}"
        self.config_dir = os.path.join(base, "client-config")
        os.makedirs(self.config_dir, exist_ok=True)
        self.log_path = os.path.join(base, "dockerd.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for docker and berth: this daemon, a private client config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BERTH_HOST", "BERTH_TLS"))}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=self.config_dir, DOCKER_CLI_HINTS="false")
        return env

    def _log(self) -> int:
        """A descriptor for dockerd's stderr (the child keeps its own copy)."""
        self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        return self._log_fd

    def start(self) -> None:
        cfg = os.path.join(self.base, "daemon.json")
        with open(cfg, "w") as f:
            f.write("{}")
        ns = leaks.name("berth-cli")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", self.data_root, "--exec-root", self.exec_root,
             "--pidfile", os.path.join(self.base, "dockerd.pid"), "-H", self.host, "--config-file", cfg,
             "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--containerd-namespace", ns, "--containerd-plugins-namespace", ns + "p", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=self._log(), start_new_session=True)
        os.close(self._log_fd)
        leaks.allow_pid(self.proc.pid)
        deadline = time.monotonic() + 60
        while self.docker("version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log_path) as f:
                    raise RuntimeError("dockerd did not start:\n" + f.read()[-3000:])
            time.sleep(0.1)

    def load_busybox(self) -> None:
        root = make_busybox_rootfs(os.path.join(self.base, "bbroot"))
        tar = os.path.join(self.base, "busybox.tar")
        with tarfile.open(tar, "w") as tf:
            for entry in sorted(os.listdir(root)):
                tf.add(os.path.join(root, entry), arcname=entry)
        p = self.docker("import", "-c", 'CMD ["sh"]', tar, "busybox:latest")
        if p.returncode != 0:
            raise RuntimeError(f"docker import failed: {p.stderr}")

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 60,
               text: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=text, input=input,
                              timeout=timeout)

    def cleanup_containers(self) -> None:
        """Remove every container (their shims and mounts must not outlive a test)."""
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.cleanup_containers()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        leaks.disallow_pid(self.proc.pid)
        self.proc = None
        # what dockerd left mounted (e.g. the host netns it binds under its exec root on first use)
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f
                    if line.split()[4].startswith((self.exec_root + "/", self.base + "/"))]
        for mp in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)


def session_fixture(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Body of the session-scoped `dockerd` fixture (shared by tests/cli and tests/client)."""
    import pytest

    why = available()
    if why:
        pytest.skip(why)
    d = Dockerd(str(tmp_path_factory.mktemp("dockerd")))
    try:
        d.start()
        d.load_busybox()
        yield d
    finally:
        d.stop()
