"""Facts about the host that `/version` and `/info` report, read once (they do not change)."""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys

# Go's GOARCH names, which Docker reports in /version's Arch and platform fields.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


@functools.cache
def kernel_version() -> str:
    return os.uname().release


@functools.cache
def machine() -> str:
    return os.uname().machine


def goarch() -> str:
    return _GOARCH.get(machine(), machine())


@functools.cache
def os_release() -> tuple[str, str]:
    """(PRETTY_NAME, VERSION_ID) from /etc/os-release, as dockerd's OperatingSystem/OSVersion."""
    fields: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                for line in f:
                    k, sep, v = line.strip().partition("=")
                    if sep:
                        fields[k] = v.strip().strip('"')
            break
        except OSError:
            continue
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


@functools.cache
def mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def ncpu() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def hostname() -> str:
    return socket.gethostname()


def python_version() -> str:
    """Reported where Docker reports its Go version."""
    return f"python{platform.python_version()}" if sys.implementation.name == "cpython" else sys.version.split()[0]
