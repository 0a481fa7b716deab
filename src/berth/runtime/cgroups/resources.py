"""OCI `linux.resources`: type checks and the v1 -> v2 conversions runc makes.

Type errors are caught here, before any file is written; values only the kernel can judge (a CPU
that does not exist, a limit below current usage) are refused by the kernel and rolled back."""

from __future__ import annotations

from berth.errors import InvalidArgument, NotImplementedYet


def _is_cpu_list(value: str) -> bool:
    """ "0-3,5" syntax (no `re`: this module is on the container start path)."""
    for part in value.strip().split(","):
        lo, dash, hi = part.partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            return False
    return True


def section(resources: dict, name: str) -> dict:
    value = resources.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"linux.resources.{name} must be an object")
    return value


def get_int(d: dict, key: str, where: str, *, unsigned: bool = False) -> int | None:
    """An integer field, or None when absent. JSON booleans are not integers here."""
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be an integer, not {value!r}")
    if unsigned and value < 0:
        raise InvalidArgument(f"linux.resources.{where}.{key} must not be negative, not {value}")
    return value


def get_str(d: dict, key: str, where: str) -> str | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be a string, not {value!r}")
    return value


def get_cpu_list(d: dict, key: str) -> str | None:
    """cpu.cpus / cpu.mems: "0-3,5". The syntax is checked here; which CPUs exist, by the kernel."""
    value = get_str(d, key, "cpu")
    if value is not None and not _is_cpu_list(value):
        raise InvalidArgument(f"invalid value for cpuset {key}: {value!r}")
    return value


def check_unsupported(resources: dict) -> None:
    """Fields berth does not implement yet fail loudly: ignoring a limit would be worse."""
    for key in ("hugepageLimits", "rdma"):
        if resources.get(key):
            raise NotImplementedYet(f"linux.resources.{key} is not supported by berth yet")
    net = resources.get("network")
    if isinstance(net, dict) and (net.get("classID") is not None or net.get("priorities")):
        raise NotImplementedYet("linux.resources.network is not supported by berth yet")


def swappiness(memory: dict) -> int | None:
    """memory.swappiness: None (or runc's -1) leaves the kernel's value."""
    value = get_int(memory, "swappiness", "memory")
    if value is None or value == -1 or value == 2**64 - 1:
        return None
    if not 0 <= value <= 100:
        raise InvalidArgument(f"invalid memory swappiness value: {value} (valid range is 0-100)")
    return value


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2..262144] (default 1024) -> v2 cpu.weight [1..10000] (default 100).

    The current runc/crun formula: a quadratic in log2(shares) through (2,1), (1024,100),
    (262144,10000); 0 stays 0, meaning unset."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math  # here, not at the top: only v2 needs it

    lg = math.log2(shares)
    return math.ceil(10 ** ((lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0))


def swap_to_v2(memory_swap: int, memory: int) -> int:
    """OCI swap is memory+swap; v2's memory.swap.max is swap alone (runc's conversion)."""
    if memory == -1 and memory_swap == 0:
        return -1  # unlimited memory with swap unset: unlimited swap too, as v1 behaves
    if memory_swap in (-1, 0) or memory == -1:
        return memory_swap
    if memory == 0:
        raise InvalidArgument("unable to set swap limit without memory limit")
    if memory < 0:
        raise InvalidArgument(f"invalid memory value: {memory}")
    if memory_swap < memory:
        raise InvalidArgument("memory+swap limit should be >= memory limit")
    return memory_swap - memory


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10..1000] -> io.weight [1..10000], linearly (runc)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def v2_num(value: int) -> str:
    """runc's numToStr: 0 is unset (""), -1 is "max"."""
    if value == 0:
        return ""
    if value == -1:
        return "max"
    return str(value)


def pids_value(limit: int) -> str:
    """pids.limit: >0 as is, 0 as 1 (systemd cannot say 0; runc keeps both drivers alike), <0 max."""
    if limit > 0:
        return str(limit)
    return "1" if limit == 0 else "max"


def throttle_devices(block_io: dict, key: str) -> list[tuple[int, int, int]]:
    out = []
    for i, dev in enumerate(block_io.get(key) or []):
        if not isinstance(dev, dict):
            raise InvalidArgument(f"linux.resources.blockIO.{key}[{i}] must be an object")
        where = f"blockIO.{key}[{i}]"
        major = get_int(dev, "major", where, unsigned=True)
        minor = get_int(dev, "minor", where, unsigned=True)
        rate = get_int(dev, "rate", where, unsigned=True)
        if major is None or minor is None or rate is None:
            raise InvalidArgument(f"linux.resources.{where} needs major, minor and rate")
        out.append((major, minor, rate))
    return out


def weight_devices(block_io: dict) -> list[tuple[int, int, int | None, int | None]]:
    out = []
    for i, dev in enumerate(block_io.get("weightDevice") or []):
        if not isinstance(dev, dict):
            raise InvalidArgument(f"linux.resources.blockIO.weightDevice[{i}] must be an object")
        where = f"blockIO.weightDevice[{i}]"
        major = get_int(dev, "major", where, unsigned=True)
        minor = get_int(dev, "minor", where, unsigned=True)
        if major is None or minor is None:
            raise InvalidArgument(f"linux.resources.{where} needs major and minor")
        weight = get_int(dev, "weight", where, unsigned=True)
        out.append((major, minor, weight, get_int(dev, "leafWeight", where, unsigned=True)))
    return out
