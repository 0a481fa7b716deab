"""Seccomp for berth's OCI runtime: Docker's default profile, resolution to OCI, BPF compile and load.

    profile = default_profile()                  # Docker's format (berth's copy of Docker's default policy)
    oci = to_oci(profile, caps)                  # what moby puts in the spec for that bounding set
    bpf = compile_bpf(oci)                       # libseccomp (ctypes), once; cached in memory and on disk
    load_bpf(bpf, oci.get("flags"))              # in the container init, just before execve: one syscall

Only `load_bpf` runs in the container's init; it needs neither libseccomp nor JSON.
"""

from __future__ import annotations

from berth.runtime.seccomp.compile import compile_bpf
from berth.runtime.seccomp.load import load_bpf
from berth.runtime.seccomp.profile import default_oci, default_profile, to_oci

__all__ = ["compile_bpf", "default_oci", "default_profile", "load_bpf", "to_oci"]
