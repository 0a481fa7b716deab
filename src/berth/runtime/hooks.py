"""OCI lifecycle hooks: each gets the container state as JSON on stdin (runtime-spec config.md#posix-platform-hooks)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from berth.runtime.errors import StartError

# Hooks whose failure fails the operation; poststart/poststop failures are only reported.
FATAL = {"prestart", "createRuntime", "createContainer", "startContainer"}


def run_hooks(hooks: list[dict[str, Any]], state: dict[str, Any], name: str, warn: Any = None) -> None:
    data = json.dumps(state).encode()
    for i, h in enumerate(hooks):
        path = h.get("path")
        if not path:
            raise StartError(f"{name} hook {i}: path is required")
        args = h.get("args") or [path]
        env = {k: v for k, _, v in (e.partition("=") for e in h.get("env") or [])}
        try:
            p = subprocess.run(args, executable=path, input=data, env=env, capture_output=True,
                               timeout=h.get("timeout"), check=False)
        except subprocess.TimeoutExpired:
            err = f"error running {name} hook #{i}: timeout after {h.get('timeout')} seconds"
        except OSError as e:
            err = f"error running {name} hook #{i}: {e.strerror}"
        else:
            if p.returncode == 0:
                continue
            err = (f"error running {name} hook #{i}: exit status {p.returncode}, "
                   f"stdout: {p.stdout.decode(errors='replace')}, stderr: {p.stderr.decode(errors='replace')}")
        if name in FATAL:
            raise StartError(err)
        if warn:
            warn(err)
