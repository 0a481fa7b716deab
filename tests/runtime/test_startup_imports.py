"""Python's start-up is most of a container start: the runtime's path must not import the heavy
stdlib modules (each costs milliseconds, on every `berth-runtime run`). Speed itself is measured in
bench/runtime.py; this only keeps the imports from creeping back."""

from __future__ import annotations

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
HEAVY = {"typing", "contextlib", "collections", "enum", "re", "json", "dataclasses", "subprocess", "shutil",
         "signal", "socket", "asyncio", "threading", "datetime", "argparse", "logging"}


def test_runtime_start_path_stays_light() -> None:
    code = (
        f"import sys; sys.path.append({SRC!r})\n"
        "import berth.runtime.cli, berth.runtime.container, berth.runtime.cgroups\n"
        "from berth.runtime.cgroups import manager_for\n"
        "m = manager_for('/x', 'y')\n"
        "import berth.runtime.seccomp as s; s.compile_bpf; s.load_bpf\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not loaded & HEAVY, f"the runtime's start path imports {sorted(loaded & HEAVY)}"
