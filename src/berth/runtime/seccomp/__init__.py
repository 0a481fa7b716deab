"""Seccomp for berth's OCI runtime: Docker's default profile, resolution to OCI, BPF compile and load.

    profile = default_profile()                  # Docker's format (berth's copy of Docker's default policy)
    oci = to_oci(profile, caps)                  # what moby puts in the spec for that bounding set
    bpf = compile_bpf(oci)                       # libseccomp (ctypes), once; cached in memory and on disk
    load_bpf(bpf, oci.get("flags"))              # in the container init, just before execve: one syscall

Submodules are imported on first use (PEP 562), so a runtime that only compiles and loads never
imports the profile code (json, re), and the init's `load_bpf` needs neither libseccomp nor JSON.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms on the start path
if TYPE_CHECKING:
    from berth.runtime.seccomp.compile import compile_bpf
    from berth.runtime.seccomp.load import load_bpf
    from berth.runtime.seccomp.profile import default_oci, default_profile, to_oci

__all__ = ["compile_bpf", "default_oci", "default_profile", "load_bpf", "to_oci"]

_WHERE = {"compile_bpf": "compile", "load_bpf": "load", "default_oci": "profile", "default_profile": "profile",
          "to_oci": "profile"}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import sys

    full = f"{__name__}.{module}"
    __import__(full)
    value = getattr(sys.modules[full], name)
    globals()[name] = value
    return value
