"""Seccomp profiles in Docker's format, and their resolution into an OCI `linux.seccomp` object.

Resolution is what moby does when it builds a container's spec (moby/profiles seccomp_linux.go
`setupSeccomp`): keep the archMap entry of the host architecture, then keep each rule whose
includes all hold and whose excludes do not — `caps` against the container's bounding set,
`arches` against the host architecture (libseccomp's names: amd64, x86, x32, arm64…), `minKernel`
against the host kernel's "major.minor".
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.seccomp import compact

# uname machine -> the architecture names Docker's profiles use in includes/excludes.arches
_MACHINE_TO_NATIVE = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "aarch64": "arm64", "arm64": "arm64", "armv6l": "arm", "armv7l": "arm", "armv8l": "arm",
    "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
    "loongarch64": "loong64", "mips64": "mips64",
}
# native name -> the OCI architecture whose archMap entry applies
_NATIVE_TO_OCI = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "x32": "SCMP_ARCH_X32", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "loong64": "SCMP_ARCH_LOONGARCH64", "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64", "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsel": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}
# OCI LinuxSeccomp fields copied as they are
_KERNEL_RE = re.compile(r"\s*(\d+)\.(\d+)")
_PASSTHROUGH = ("defaultAction", "defaultErrnoRet", "flags", "listenerPath", "listenerMetadata")


@functools.cache
def _default_compact() -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(__file__), "default.json"), "rb") as f:
        data: dict[str, Any] = json.load(f)
    return data


def default_profile() -> dict[str, Any]:
    """berth's default profile in Docker's format (Docker's default policy); a fresh dict every call."""
    return compact.to_docker(_default_compact())


def native_arch(machine: str) -> str:
    """"x86_64" (uname) or "amd64" (already native) -> "amd64", the name Docker profiles use."""
    if machine in _NATIVE_TO_OCI:
        return machine
    try:
        return _MACHINE_TO_NATIVE[machine]
    except KeyError:
        raise InvalidArgument(f"seccomp: unsupported architecture {machine!r}") from None


def host_kernel() -> tuple[int, int]:
    """(major, minor) of the running kernel, parsed as moby does ("6.18.44-fc" -> (6, 18))."""
    return parse_kernel(os.uname().release)


def parse_kernel(release: str) -> tuple[int, int]:
    """Like Go's Sscanf("%d.%d"): leading digits of the first two dot-separated fields."""
    m = _KERNEL_RE.match(release)
    if not m:
        raise InvalidArgument(f"failed to parse kernel version {release!r}")
    return int(m.group(1)), int(m.group(2))


def _kernel_at_least(want: str, kernel: tuple[int, int]) -> bool:
    return kernel >= parse_kernel(want)


def to_oci(profile: dict[str, Any], caps: Iterable[str], *, arch: str = "x86_64",
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """Resolve a Docker-format profile for a container with bounding set `caps` on `arch` / `kernel`.

    Returns an OCI `linux.seccomp` object (a new dict that shares nothing with `profile`). An empty
    profile (no defaultAction, no syscalls) means seccomp is off: returns {} as moby returns nil.
    """
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return {}
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                              "use either 'architectures' or 'archMap'")
    native = native_arch(arch)
    bounding = set(caps)
    kern = host_kernel() if kernel is None else kernel

    out: dict[str, Any] = {k: copy.deepcopy(profile[k]) for k in _PASSTHROUGH if k in profile}
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == _NATIVE_TO_OCI[native]:
            arches = [entry["architecture"], *(entry.get("subArchitectures") or [])]
            break
    if arches:
        out["architectures"] = arches

    syscalls = []
    for call in profile.get("syscalls") or []:
        if call.get("name") and call.get("names"):
            raise InvalidArgument("both 'name' and 'names' are specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if native in (exc.get("arches") or ()) or bounding.intersection(exc.get("caps") or ()):
            continue
        if exc.get("minKernel") and _kernel_at_least(exc["minKernel"], kern):
            continue
        if inc.get("arches") and native not in inc["arches"]:
            continue
        if not bounding.issuperset(inc.get("caps") or ()):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kern):
            continue
        rule: dict[str, Any] = {"names": list(call.get("names") or [call.get("name")]), "action": call["action"]}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            rule["args"] = [dict(a) for a in call["args"]]
        syscalls.append(rule)
    out["syscalls"] = syscalls
    return out


def default_oci(caps: Iterable[str]) -> dict[str, Any]:
    """The default profile resolved for this host (architecture and kernel) and bounding set `caps`."""
    return to_oci(default_profile(), caps, arch=os.uname().machine, kernel=host_kernel())
