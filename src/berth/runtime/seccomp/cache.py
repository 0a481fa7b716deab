"""Where compiled BPF is kept: in memory for this process, and on disk for the next ones.

Files are `<key>.bpf` holding sha256(bpf) followed by the BPF, written to a temporary name, fsynced
and renamed, so a reader sees a whole file or none; the digest catches anything else (a torn or
edited file is ignored and recompiled). Because a planted file would weaken every container's
filter, the directory is only used if it belongs to us and nobody else can write to it.
"""

from __future__ import annotations

import os

try:  # the builtin module: importing hashlib loads OpenSSL, ~3 ms on the container-start path
    from _sha256 import sha256
except ImportError:  # Python >= 3.12 renamed it
    from hashlib import sha256

DEFAULT_DIR = "/var/cache/berth/seccomp"
ENV = "BERTH_SECCOMP_CACHE"
_MEMORY_MAX = 64

_memory: dict[str, bytes] = {}


def directory(cache_dir: str | None) -> str:
    """The disk cache directory: the argument, else $BERTH_SECCOMP_CACHE, else the default ("" = none)."""
    if cache_dir is not None:
        return cache_dir
    return os.environ.get(ENV, DEFAULT_DIR)


def get(key: str, cache_dir: str) -> bytes | None:
    bpf = _memory.get(key)
    if bpf is not None or not cache_dir:
        return bpf
    try:
        with open(os.path.join(cache_dir, key + ".bpf"), "rb") as f:
            if not _trusted(os.fstat(f.fileno()), cache_dir):
                return None
            data = f.read()
    except OSError:
        return None
    digest, bpf = data[:32], data[32:]
    if not bpf or len(bpf) % 8 or sha256(bpf).digest() != digest:
        return None
    _remember(key, bpf)
    return bpf


def put(key: str, bpf: bytes, cache_dir: str) -> None:
    _remember(key, bpf)
    if not cache_dir:
        return
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        if not _trusted(os.stat(cache_dir), cache_dir):
            return
        tmp = os.path.join(cache_dir, f".tmp-{os.getpid()}-{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sha256(bpf).digest() + bpf)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(cache_dir, key + ".bpf"))
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a cache we cannot write is only slower: the BPF is still returned


def clear_memory() -> None:
    _memory.clear()


def _remember(key: str, bpf: bytes) -> None:
    if len(_memory) >= _MEMORY_MAX:
        _memory.pop(next(iter(_memory)))
    _memory[key] = bpf


def _trusted(st: os.stat_result, cache_dir: str) -> bool:
    """Ours, and not writable by group or others (for the directory and the file alike)."""
    try:
        dst = os.stat(cache_dir)
    except OSError:
        return False
    me = os.geteuid()
    return st.st_uid == me and dst.st_uid == me and not (st.st_mode | dst.st_mode) & 0o022
