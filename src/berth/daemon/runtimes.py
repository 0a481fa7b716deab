"""The OCI runtimes a container can use: berth's own (driven as a library inside the monitor) or an
external one with runc's command line (runc, crun, berth-runtime itself), driven by its CLI.

The daemon talks to a container's runtime through `handle(...)`: kill, pause, resume, update,
processes, cgroup. For berth's runtime these are library calls; for an external runtime they run
its command line with its own `--root`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from berth.errors import BerthError, InvalidArgument

BUILTIN = "berth"


def _hybrid_cgroups() -> bool:
    return os.path.isdir("/sys/fs/cgroup/unified") and os.path.ismount("/sys/fs/cgroup/unified")


class ExternalRuntime:
    """An OCI runtime with runc's CLI, e.g. /usr/sbin/runc, /usr/bin/crun."""

    def __init__(self, name: str, path: str, root: str) -> None:
        self.name = name
        self.path = shutil.which(path) or path
        self.root = root

    def command(self, *args: str) -> list[str]:
        cmd = [self.path, "--root", self.root, *args]
        if os.path.basename(self.path).startswith("crun") and _hybrid_cgroups():
            # crun refuses hybrid cgroups ("cgroups in hybrid mode not supported"): give it a private
            # mount namespace where the cgroup2 mount is hidden, as notes/handson.md describes.
            return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh", *cmd]
        return cmd

    def run(self, *args: str, timeout: float = 60) -> str:
        p = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if p.returncode != 0:
            raise BerthError(_last_error(p.stderr) or f"{self.name} {args[0]} failed with exit status {p.returncode}")
        return p.stdout


def _last_error(stderr: str) -> str:
    """runc logs `time=… level=error msg="…"`: the message is what users need."""
    for line in reversed(stderr.strip().splitlines()):
        if 'msg="' in line:
            return line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
        if line.strip():
            return line.strip()
    return ""


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split("-")[0].split(".")
        return (int(parts[0]), int(parts[1])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def _rro_unsupported(name: str, ext: ExternalRuntime | None) -> str | None:
    if not _kernel_at_least(5, 12):
        return "rro is not supported: mount_setattr is not available (kernel is older than 5.12?)"
    if ext is None:
        return None  # berth's own runtime
    import json

    try:
        features = json.loads(ext.run("features", timeout=10))
    except (BerthError, OSError, ValueError, subprocess.TimeoutExpired):
        return f'rro is not supported by runtime "{name}": OCI features struct is not available'
    if "rro" in (features.get("mountOptions") or []):
        return None
    return f'rro is not supported by runtime "{name}"'


class Runtimes:
    """The runtimes berthd knows: its own plus `--add-runtime name=path` / daemon.json `runtimes`."""

    def __init__(self, configured: dict[str, str], default: str, exec_root: str) -> None:
        self.paths = dict(configured)
        self.default = default
        self.exec_root = exec_root
        self._rro: dict[str, str | None] = {}

    def validate(self, name: str | None) -> str:
        name = name or self.default
        if name not in self.paths:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")
        return name

    def rro_unsupported(self, name: str) -> str | None:
        """Why a mount cannot be made recursively read-only under runtime `name` (None if it can):
        the kernel needs mount_setattr (5.12), the runtime must list "rro" in its features."""
        if name not in self._rro:
            self._rro[name] = _rro_unsupported(name, None if self.is_builtin(name) else self.external(name))
        return self._rro[name]

    def is_builtin(self, name: str) -> bool:
        return name == BUILTIN

    def external(self, name: str) -> ExternalRuntime:
        return ExternalRuntime(name, self.paths[name], os.path.join(self.exec_root, "runtimes", name))

    def request(self, name: str) -> dict[str, Any]:
        """What a monitor needs to drive the runtime `name`."""
        if self.is_builtin(name):
            return {"name": BUILTIN}
        ext = self.external(name)
        return {"name": name, "command": ext.command()}

    def handle(self, name: str, container_id: str, runtime_root: str) -> Any:
        if self.is_builtin(name):
            from berth.runtime.container import Runtime

            return Runtime(runtime_root).get(container_id)
        return ExternalHandle(self.external(name), container_id)


class ExternalHandle:
    """The daemon-side operations on a container run by an external runtime."""

    def __init__(self, rt: ExternalRuntime, cid: str) -> None:
        self.rt = rt
        self.id = cid

    def kill(self, sig: int, all_processes: bool = False) -> None:
        args = ["kill", *(["--all"] if all_processes else []), self.id, str(sig)]
        self.rt.run(*args)

    def pause(self) -> None:
        self.rt.run("pause", self.id)

    def resume(self) -> None:
        self.rt.run("resume", self.id)

    def update(self, resources: dict[str, Any]) -> None:
        import json
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(resources, f)
        try:
            self.rt.run("update", "--resources", f.name, self.id)
        finally:
            os.unlink(f.name)

    def delete(self, force: bool = False) -> None:
        self.rt.run("delete", *(["--force"] if force else []), self.id)

    def processes(self) -> list[int]:
        import json

        return list(json.loads(self.rt.run("ps", "--format", "json", self.id) or "[]"))

    def cgroup(self) -> Any:
        import json

        from berth.runtime import cgroups

        state = json.loads(self.rt.run("state", self.id))
        bundle = state.get("bundle", "")
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        return cgroups.manager_for((spec.get("linux") or {}).get("cgroupsPath"), self.id)
