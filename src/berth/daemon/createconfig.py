"""`POST /containers/create`: validate Docker's create body and merge it with the image's config.

    config, host_config, warnings = normalize(body, image_config, name=name, cid=cid, daemon=opts)

`config` and `host_config` are what `docker inspect` shows under Config and HostConfig. The order of
the checks, the defaults and the messages are moby's (daemon/create.go `containerCreate`:
verifyContainerSettings, then adaptContainerSettings, then mergeAndVerifyConfig; daemon_unix.go
verifyPlatformContainerResources; internal/runconfig; volume/mounts/linux_parser.go), so a client
sees the same 400s and the same inspect output. Requests this host cannot grant are clamped with a
Warnings line instead of failing later at start: what moby already discards (blkio weight, swap
limit…) in moby's words, and what moby would pass to runc only to fail (a hard rlimit above the
daemon's, an oom_score_adj below the daemon's) in berth's words.

`DaemonOptions` is the daemon-wide part (cgroup parent, init binary, default ulimits, what the host
supports); `spec.build` takes the same object at start.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import posixpath
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument, NotFound
from berth.runtime import caps as capsmod
from berth.runtime.user import go_atoi

JSON = dict[str, Any]

MIN_MEMORY = 6291456  # moby linuxMinMemory: room for start-up overhead
DEFAULT_SHM_SIZE = 64 << 20
MAX_HOSTNAME = 64
MIN_HEALTH_DURATION = 1_000_000  # 1ms in nanoseconds (containertypes.MinimumDuration)
DEFAULT_INIT_PATH = "/usr/bin/tini-static"

# docker/cli opts.ValidateSysctl: namespaced sysctls a container may set.
IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
    "kernel.shmmni", "kernel.shm_rmid_forced",
})

# go-units ulimitNameMapping
ULIMITS = frozenset({
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
    "rttime", "sigpending", "stack",
})
RLIM_INFINITY = (1 << 64) - 1

# Log drivers berthd can run, and the options moby's json-file driver accepts.
LOG_DRIVERS: dict[str, frozenset[str]] = {
    "json-file": frozenset({"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}),
    "none": frozenset(),
}

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
_CONSISTENCY = ("consistent", "cached", "delegated", "default")

# ---------------------------------------------------------------------------------------------
# Daemon-wide options


@dataclass
class HostFeatures:
    """What the cgroup hierarchy supports (moby's SysInfo): a missing one is discarded with a warning."""

    memory_limit: bool = True
    swap_limit: bool = True
    memory_reservation: bool = True
    memory_swappiness: bool = True
    oom_kill_disable: bool = True
    pids_limit: bool = True
    cpu_shares: bool = True
    cpu_cfs: bool = True
    cpu_realtime: bool = True
    cpuset: bool = True
    blkio_weight: bool = True
    blkio_weight_device: bool = True
    blkio_read_bps: bool = True
    blkio_write_bps: bool = True
    blkio_read_iops: bool = True
    blkio_write_iops: bool = True
    cgroup_namespaces: bool = True
    seccomp: bool = True
    cpus: str = ""  # the cpuset this host offers, e.g. "0-1" ("" = unknown: not checked)
    mems: str = ""

    @classmethod
    def detect(cls) -> HostFeatures:
        """Probe this host as moby's pkg/sysinfo does (files of the root cgroups)."""
        from berth.runtime import cgroups
        from berth.runtime.cgroups import paths

        f = cls(cgroup_namespaces=os.path.exists("/proc/self/ns/cgroup"), seccomp=_seccomp_available())
        if cgroups.detect() == "v2":
            return _detect_v2(f)
        mounts: dict[str, str] = {}
        for m in paths.cgroup_mounts():
            if m.fstype == "cgroup":
                for opt in m.options:
                    mounts.setdefault(opt, m.mountpoint)

        def has(sub: str, name: str) -> bool:
            return sub in mounts and os.path.exists(os.path.join(mounts[sub], name))

        f.memory_limit = "memory" in mounts
        f.swap_limit = has("memory", "memory.memsw.limit_in_bytes")
        f.memory_reservation = has("memory", "memory.soft_limit_in_bytes")
        f.oom_kill_disable = has("memory", "memory.oom_control")
        f.memory_swappiness = has("memory", "memory.swappiness")
        f.cpu_shares = has("cpu", "cpu.shares")
        f.cpu_cfs = has("cpu", "cpu.cfs_quota_us")
        f.cpu_realtime = has("cpu", "cpu.rt_period_us")
        f.blkio_weight = has("blkio", "blkio.weight")
        f.blkio_weight_device = has("blkio", "blkio.weight_device")
        f.blkio_read_bps = has("blkio", "blkio.throttle.read_bps_device")
        f.blkio_write_bps = has("blkio", "blkio.throttle.write_bps_device")
        f.blkio_read_iops = has("blkio", "blkio.throttle.read_iops_device")
        f.blkio_write_iops = has("blkio", "blkio.throttle.write_iops_device")
        f.pids_limit = "pids" in mounts
        f.cpuset = "cpuset" in mounts
        if f.cpuset:
            f.cpus = _read_text(os.path.join(mounts["cpuset"], "cpuset.cpus"))
            f.mems = _read_text(os.path.join(mounts["cpuset"], "cpuset.mems"))
        return f


def _seccomp_available() -> bool:
    try:
        with open("/proc/self/status") as fh:
            return any(line.startswith("Seccomp:") for line in fh)
    except OSError:
        return False


def _read_text(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _detect_v2(f: HostFeatures) -> HostFeatures:
    controllers = set(_read_text("/sys/fs/cgroup/cgroup.controllers").split())
    mem = "memory" in controllers
    f.memory_limit = f.memory_reservation = mem
    f.swap_limit = mem and any(os.path.exists(os.path.join("/sys/fs/cgroup", d, "memory.swap.max"))
                               for d in ("", "init.scope", "system.slice"))
    f.oom_kill_disable = f.memory_swappiness = False  # moby: not on cgroup v2
    f.cpu_shares = f.cpu_cfs = "cpu" in controllers
    f.cpu_realtime = False
    io = "io" in controllers
    f.blkio_weight = f.blkio_weight_device = f.blkio_read_bps = f.blkio_write_bps = io
    f.blkio_read_iops = f.blkio_write_iops = io
    f.pids_limit = "pids" in controllers
    f.cpuset = "cpuset" in controllers
    if f.cpuset:
        f.cpus = _read_text("/sys/fs/cgroup/cpuset.cpus.effective")
        f.mems = _read_text("/sys/fs/cgroup/cpuset.mems.effective")
    return f


def _lacks_sys_resource() -> bool:
    return "CAP_SYS_RESOURCE" not in capsmod.from_mask(capsmod.current()["effective"])


def _host_hard_rlimits() -> dict[str, int]:
    """Without CAP_SYS_RESOURCE no hard limit can be raised: ours are the ceiling."""
    return current_hard_rlimits() if _lacks_sys_resource() else {}


def _host_oom_floor() -> int:
    """Without CAP_SYS_RESOURCE oom_score_adj cannot go below ours (containerd's restrict_oom_score_adj)."""
    return int(_read_text("/proc/self/oom_score_adj") or 0) if _lacks_sys_resource() else -1000


def _host_cgroup_version() -> int:
    from berth.runtime import cgroups

    return 2 if cgroups.detect() == "v2" else 1


@dataclass
class DaemonOptions:
    """berthd's settings that shape every container (dockerd's flags and what the host allows).

    What the host allows defaults to what this host allows (probed when the object is made):
    `host_caps` (the daemon's bounding set), `cgroup_version`, `features`, and, when the daemon
    lacks CAP_SYS_RESOURCE, `daemon_hard_rlimits` ("nofile" -> hard limit) and `oom_score_adj_min`;
    requests beyond them are clamped. Tests pass explicit values. `container_ns(ref, kind)` returns
    the namespace path ("/proc/<pid>/ns/<kind>", kind in net/ipc/pid) of a running container for the
    `container:<ref>` modes, raising NotFound/Conflict as the daemon sees fit.
    """

    cgroup_parent: str = "berth"
    data_root: str = ""  # berthd's data root: binds of it (or of a parent) get rslave propagation
    init_path: str = DEFAULT_INIT_PATH
    init: bool = False  # dockerd --init: every container gets the init unless it says Init=false
    default_ulimits: list[JSON] = field(default_factory=list)  # [{"Name","Soft","Hard"}], dockerd --default-ulimit
    seccomp_profile_override: str | None = None  # dockerd --seccomp-profile: JSON text or "unconfined"
    daemon_hard_rlimits: dict[str, int] = field(default_factory=_host_hard_rlimits)
    oom_score_adj_min: int = field(default_factory=_host_oom_floor)
    host_caps: tuple[str, ...] = field(default_factory=lambda: tuple(capsmod.host_bounding()))
    cgroup_version: int = field(default_factory=_host_cgroup_version)
    shm_size: int = DEFAULT_SHM_SIZE
    ipc_mode: str = "private"
    cgroupns_mode: str = ""  # "" = Docker's default for the cgroup version ("host" on v1, "private" on v2)
    no_new_privileges: bool = False
    runtime_name: str = ""  # the default runtime's name, filled into an empty HostConfig.Runtime
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    host_hostname: str = ""  # the host's name, a --network host container's default hostname
    ncpu: int = 0
    features: HostFeatures = field(default_factory=HostFeatures.detect)
    masked_paths: list[str] | None = None  # None: berth.runtime.spec.masked_paths() (Docker's list)
    readonly_paths: list[str] | None = None
    container_ns: Callable[[str, str], str] | None = None
    network_exists: Callable[[str], bool] | None = None  # user-defined networks; None: there are none

    def __post_init__(self) -> None:
        if not self.ncpu:
            self.ncpu = os.cpu_count() or 1
        if not self.host_hostname:
            self.host_hostname = socket.gethostname()

    @classmethod
    def detect(cls, **overrides: Any) -> DaemonOptions:
        """Options for this host (the defaults probe it), with `overrides`."""
        return cls(**overrides)

    def default_cgroupns(self) -> str:
        return self.cgroupns_mode or ("private" if self.cgroup_version == 2 else "host")

    def default_masked_paths(self) -> list[str]:
        if self.masked_paths is not None:
            return list(self.masked_paths)
        from berth.runtime.spec import masked_paths

        return masked_paths()

    def default_readonly_paths(self) -> list[str]:
        if self.readonly_paths is not None:
            return list(self.readonly_paths)
        from berth.runtime.spec import READONLY_PATHS

        return list(READONLY_PATHS)


def current_hard_rlimits() -> dict[str, int]:
    """This process's finite hard limits, by Docker's ulimit name."""
    out = {}
    for name in ULIMITS:
        res = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if res is None:
            continue
        hard = resource.getrlimit(res)[1]
        if hard != resource.RLIM_INFINITY:
            out[name] = hard
    return out


# ---------------------------------------------------------------------------------------------
# JSON decoding with Go's semantics: a missing key or null is the zero value, a wrong type is a 400.

_GO_TYPES = {"str": "string", "bool": "bool", "int": "int64", "uint": "uint64", "uint16": "uint16",
             "uint32": "uint32", "strs": "[]string", "strslice": "strslice.StrSlice", "map": "map[string]string",
             "set": "map[string]struct {}", "intp": "*int64", "boolp": "*bool", "any": "interface {}"}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return f"number {v}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_error(v: Any, where: str, kind: str) -> InvalidArgument:
    return InvalidArgument(f"json: cannot unmarshal {_json_kind(v)} into Go struct field {where} "
                           f"of type {_GO_TYPES.get(kind, kind)}")


def _int(v: Any, where: str, kind: str = "int") -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _type_error(v, where, kind)
    n = int(v)
    lo, hi = {"int": (-(1 << 63), (1 << 63) - 1), "uint": (0, (1 << 64) - 1), "uint16": (0, 0xFFFF),
              "uint32": (0, 0xFFFFFFFF)}[kind]
    if not lo <= n <= hi:
        raise _type_error(v, where, kind)
    return n


def _decode(v: Any, kind: str, where: str) -> Any:
    if v is None:
        return {"str": "", "bool": False, "int": 0, "uint": 0, "uint16": 0, "uint32": 0}.get(kind)
    if kind == "str":
        if not isinstance(v, str):
            raise _type_error(v, where, kind)
        return v
    if kind in ("bool", "boolp"):
        if not isinstance(v, bool):
            raise _type_error(v, where, kind)
        return v
    if kind in ("int", "uint", "uint16", "uint32"):
        return _int(v, where, kind)
    if kind == "intp":
        return _int(v, where, "int")
    if kind == "strslice" and isinstance(v, str):
        return [v]  # StrSlice also takes a single string
    if kind in ("strs", "strslice"):
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise _type_error(v, where, kind)
        return list(v)
    if kind == "map":
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise _type_error(v, where, kind)
        return dict(v)
    if kind == "set":
        if not isinstance(v, dict):
            raise _type_error(v, where, kind)
        return {k: {} for k in v}
    return copy.deepcopy(v)  # "any": kept as sent


def _pick(obj: JSON, name: str) -> Any:
    """Go matches JSON keys to fields case-insensitively, preferring the exact spelling."""
    if name in obj:
        return obj[name]
    low = name.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return v
    return None


def _struct(obj: Any, schema: tuple[tuple[str, str], ...], where: str) -> JSON:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise InvalidArgument(f"json: cannot unmarshal {_json_kind(obj)} into Go value of type {where}")
    return {name: _decode(_pick(obj, name), kind, f"{where}.{name}") for name, kind in schema}


# Config, in the order moby's struct encodes it (API 1.50); `omit` fields are omitempty.
CONFIG_FIELDS: tuple[tuple[str, str], ...] = (
    ("Hostname", "str"), ("Domainname", "str"), ("User", "str"), ("AttachStdin", "bool"),
    ("AttachStdout", "bool"), ("AttachStderr", "bool"), ("ExposedPorts", "set"), ("Tty", "bool"),
    ("OpenStdin", "bool"), ("StdinOnce", "bool"), ("Env", "strs"), ("Cmd", "strslice"), ("Healthcheck", "any"),
    ("ArgsEscaped", "bool"), ("Image", "str"), ("Volumes", "set"), ("WorkingDir", "str"),
    ("Entrypoint", "strslice"), ("NetworkDisabled", "bool"), ("OnBuild", "strs"), ("Labels", "map"),
    ("StopSignal", "str"), ("StopTimeout", "intp"), ("Shell", "strslice"),
)
_CONFIG_OMITEMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "OnBuild", "StopSignal",
                     "StopTimeout", "Shell")

HEALTH_FIELDS = (("Test", "strs"), ("Interval", "int"), ("Timeout", "int"), ("StartPeriod", "int"),
                 ("StartInterval", "int"), ("Retries", "int"))

HOST_CONFIG_FIELDS: tuple[tuple[str, str], ...] = (
    ("Binds", "strs"), ("ContainerIDFile", "str"), ("LogConfig", "any"), ("NetworkMode", "str"),
    ("PortBindings", "any"), ("RestartPolicy", "any"), ("AutoRemove", "bool"), ("VolumeDriver", "str"),
    ("VolumesFrom", "strs"), ("ConsoleSize", "any"), ("Annotations", "map"), ("CapAdd", "strslice"),
    ("CapDrop", "strslice"), ("CgroupnsMode", "str"), ("Dns", "strs"), ("DnsOptions", "strs"),
    ("DnsSearch", "strs"), ("ExtraHosts", "strs"), ("GroupAdd", "strs"), ("IpcMode", "str"), ("Cgroup", "str"),
    ("Links", "strs"), ("OomScoreAdj", "int"), ("PidMode", "str"), ("Privileged", "bool"),
    ("PublishAllPorts", "bool"), ("ReadonlyRootfs", "bool"), ("SecurityOpt", "strs"), ("StorageOpt", "map"),
    ("Tmpfs", "map"), ("UTSMode", "str"), ("UsernsMode", "str"), ("ShmSize", "int"), ("Sysctls", "map"),
    ("Runtime", "str"), ("Isolation", "str"),
    # Resources
    ("CpuShares", "int"), ("Memory", "int"), ("NanoCpus", "int"), ("CgroupParent", "str"),
    ("BlkioWeight", "uint16"), ("BlkioWeightDevice", "any"), ("BlkioDeviceReadBps", "any"),
    ("BlkioDeviceWriteBps", "any"), ("BlkioDeviceReadIOps", "any"), ("BlkioDeviceWriteIOps", "any"),
    ("CpuPeriod", "int"), ("CpuQuota", "int"), ("CpuRealtimePeriod", "int"), ("CpuRealtimeRuntime", "int"),
    ("CpusetCpus", "str"), ("CpusetMems", "str"), ("Devices", "any"), ("DeviceCgroupRules", "strs"),
    ("DeviceRequests", "any"), ("MemoryReservation", "int"), ("MemorySwap", "int"), ("MemorySwappiness", "intp"),
    ("OomKillDisable", "boolp"), ("PidsLimit", "intp"), ("Ulimits", "any"), ("CpuCount", "int"),
    ("CpuPercent", "int"), ("IOMaximumIOps", "uint"), ("IOMaximumBandwidth", "uint"),
    # after Resources
    ("Mounts", "any"), ("MaskedPaths", "strs"), ("ReadonlyPaths", "strs"), ("Init", "boolp"),
)
_HOST_OMITEMPTY = ("Annotations", "StorageOpt", "Tmpfs", "Sysctls", "Runtime", "Mounts", "Init")


def _objects(v: Any, schema: tuple[tuple[str, str], ...], where: str) -> list[JSON] | None:
    if v is None:
        return None
    if not isinstance(v, list):
        raise _type_error(v, where, "[]" + where.rsplit(".", 1)[-1])
    return [_struct(item, schema, where) for item in v]


def decode_host_config(raw: Any) -> JSON:
    hc = _struct(raw, HOST_CONFIG_FIELDS, "HostConfig")
    hc["LogConfig"] = _struct(hc["LogConfig"], (("Type", "str"), ("Config", "map")), "LogConfig")
    hc["RestartPolicy"] = _struct(hc["RestartPolicy"], (("Name", "str"), ("MaximumRetryCount", "int")),
                                  "RestartPolicy")
    if hc["PortBindings"] is not None and not isinstance(hc["PortBindings"], dict):
        raise _type_error(hc["PortBindings"], "HostConfig.PortBindings", "nat.PortMap")
    size = hc["ConsoleSize"]
    if size is None:
        size = [0, 0]
    if not isinstance(size, list) or len(size) > 2:
        raise _type_error(size, "HostConfig.ConsoleSize", "[2]uint")
    hc["ConsoleSize"] = [_int(x, "HostConfig.ConsoleSize", "uint") for x in size] + [0] * (2 - len(size))
    for key in ("BlkioWeightDevice",):
        hc[key] = _objects(hc[key], (("Path", "str"), ("Weight", "uint16")), f"HostConfig.{key}")
    for key in ("BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps"):
        hc[key] = _objects(hc[key], (("Path", "str"), ("Rate", "uint")), f"HostConfig.{key}")
    hc["Devices"] = _objects(hc["Devices"], (("PathOnHost", "str"), ("PathInContainer", "str"),
                                             ("CgroupPermissions", "str")), "HostConfig.Devices")
    hc["Ulimits"] = _objects(hc["Ulimits"], (("Name", "str"), ("Hard", "int"), ("Soft", "int")), "HostConfig.Ulimits")
    if hc["DeviceRequests"] is not None and not isinstance(hc["DeviceRequests"], list):
        raise _type_error(hc["DeviceRequests"], "HostConfig.DeviceRequests", "[]container.DeviceRequest")
    if hc["Mounts"] is not None:
        if not isinstance(hc["Mounts"], list):
            raise _type_error(hc["Mounts"], "HostConfig.Mounts", "[]mount.Mount")
        hc["Mounts"] = [_decode_mount(m) for m in hc["Mounts"]]
    return hc


_MOUNT_FIELDS = (("Type", "str"), ("Source", "str"), ("Target", "str"), ("ReadOnly", "bool"),
                 ("Consistency", "str"), ("BindOptions", "any"), ("VolumeOptions", "any"), ("ImageOptions", "any"),
                 ("TmpfsOptions", "any"), ("ClusterOptions", "any"))
_BIND_OPTION_FIELDS = (("Propagation", "str"), ("NonRecursive", "bool"), ("CreateMountpoint", "bool"),
                       ("ReadOnlyNonRecursive", "bool"), ("ReadOnlyForceRecursive", "bool"))
_TMPFS_OPTION_FIELDS = (("SizeBytes", "int"), ("Mode", "uint32"), ("Options", "any"))


def _drop_zero(d: JSON) -> JSON:
    """Go's omitempty for the mount types: every field of them is omitempty."""
    return {k: v for k, v in d.items() if v not in ("", 0, False, None, [], {})}


def _decode_mount(raw: Any) -> JSON:
    m = _struct(raw, _MOUNT_FIELDS, "mount.Mount")
    if m["BindOptions"] is not None:
        m["BindOptions"] = _drop_zero(_struct(m["BindOptions"], _BIND_OPTION_FIELDS, "mount.BindOptions"))
    if m["TmpfsOptions"] is not None:
        t = _struct(m["TmpfsOptions"], _TMPFS_OPTION_FIELDS, "mount.TmpfsOptions")
        opts = t["Options"]
        if opts is not None and (not isinstance(opts, list) or not all(
                isinstance(o, list) and all(isinstance(s, str) for s in o) for o in opts)):
            raise _type_error(opts, "mount.TmpfsOptions.Options", "[][]string")
        m["TmpfsOptions"] = _drop_zero(t)
    out = _drop_zero({k: v for k, v in m.items() if k not in ("BindOptions", "TmpfsOptions")})
    for k in ("BindOptions", "TmpfsOptions"):
        if m[k] is not None:
            out[k] = m[k]
    return {k: out[k] for k, _ in _MOUNT_FIELDS if k in out}


# ---------------------------------------------------------------------------------------------
# Parsers shared with spec.build


@dataclass
class BindSpec:
    """One -v "src:dst[:mode]" (moby linuxParser.ParseMountRaw), already validated."""

    source: str
    destination: str
    writable: bool
    propagation: str  # "" = the default (rprivate)
    mode: str


def _valid_mode(mode: str) -> bool:
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "prop": 0, "copy": 0, "consistency": 0}
    for o in mode.split(","):
        if o in ("rw", "ro"):
            counts["rw"] += 1
        elif o in ("z", "Z"):
            counts["label"] += 1
        elif o in PROPAGATIONS:
            counts["prop"] += 1
        elif o in ("nocopy",):
            counts["copy"] += 1
        elif o in _CONSISTENCY:
            counts["consistency"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def parse_bind(raw: str) -> BindSpec:
    """Parse a HostConfig.Binds entry. A source that is not an absolute path names a volume:
    berth has no volumes yet, which is a 400 saying so."""
    arr = raw.split(":", 3)
    if arr[0] == "":
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    mode = ""
    if len(arr) == 1:
        source, target = "", arr[0]
    elif len(arr) == 2:
        if _valid_mode(arr[1]):
            raise InvalidArgument(f"invalid volume specification: '{raw}'")
        source, target = arr
    elif len(arr) == 3:
        source, target, mode = arr
    else:
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    if not source.startswith("/"):
        what = f"named volume {source!r}" if source else "an anonymous volume"
        raise InvalidArgument(f"invalid volume specification: '{raw}': {what}: named volumes are not supported "
                              "yet, bind an absolute host path instead")
    prefix = f"invalid volume specification: '{raw}': invalid mount config for type \"bind\": "
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        raise InvalidArgument(prefix + "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise InvalidArgument(prefix + f"invalid mount path: '{target}' mount path must be absolute")
    opts = mode.split(",") if mode else []
    propagation = next((o for o in opts if o in PROPAGATIONS), "")
    return BindSpec(posixpath.normpath(source), posixpath.normpath(target), "ro" not in opts, propagation, mode)


def mount_points(hc: JSON) -> list[JSON]:
    """The container's `Mounts` as inspect and `ps` show them (moby's MountPoints, made at create):
    each bind (-v and --mount) and each --mount tmpfs; --tmpfs entries are not listed."""
    out: list[JSON] = []
    for raw in hc.get("Binds") or []:
        b = parse_bind(raw)
        out.append({"Type": "bind", "Source": b.source, "Destination": b.destination, "Mode": b.mode,
                    "RW": b.writable, "Propagation": b.propagation or "rprivate"})
    for m in hc.get("Mounts") or []:
        dest = posixpath.normpath(m["Target"])
        if m["Type"] == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": not m.get("ReadOnly"),
                        "Propagation": ""})
        elif m["Type"] == "bind":
            opts = m.get("BindOptions") or {}
            out.append({"Type": "bind", "Source": posixpath.normpath(m["Source"]), "Destination": dest, "Mode": "",
                        "RW": not m.get("ReadOnly"), "Propagation": opts.get("Propagation") or "rprivate"})
    return out


def daemon_root_propagation(source: str, propagation: str | None, data_root: str) -> bool:
    """moby validateBindDaemonRoot: a bind of the daemon's root (or of a directory holding it)
    must be rslave or rshared, so that the daemon's unmounts reach the container. True when the
    bind gave no propagation and so gets rslave; a private or slave one is a 400."""
    if not data_root or not (source.startswith(data_root) or data_root.startswith(source)):
        return False
    if propagation is None:
        return True
    if propagation in ("rslave", "rshared", ""):
        return propagation == ""
    raise InvalidArgument('invalid mount config: must use either propagation mode "rslave" or "rshared" when mount '
                          f"source is within the daemon root, daemon root: {json.dumps(data_root)}, bind mount "
                          f"source: {json.dumps(source)}, propagation: {json.dumps(propagation)}")


def tmpfs_data(options: JSON | None, read_only: bool) -> str:
    """moby ConvertTmpfsOptions: a --mount type=tmpfs as the --tmpfs option string."""
    raw: list[str] = []
    if read_only:
        raw.append("ro")
    opts = options or {}
    if opts.get("Mode"):
        raw.append(f"mode={opts['Mode']:o}")
    size = opts.get("SizeBytes") or 0
    if size:
        suffix = ""
        for s, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                size, suffix = size // div, s
                break
        raw.append(f"size={size}{suffix}")
    for opt in opts.get("Options") or []:
        if not 1 <= len(opt) <= 2:
            raise InvalidArgument("invalid option array length")
        if opt[0] not in ("exec", "noexec"):
            raise InvalidArgument(f"invalid option: {opt[0]}")
        raw.append(opt[0] if len(opt) == 1 else f"{opt[0]}={opt[1]}")
    return ",".join(raw)


_TMPFS_FLAG_KEYS = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev", "nodev": "nodev",
    "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync", "dirsync": "dirsync",
    "remount": "remount", "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "bind": "bind", "rbind": "bind",
    "relatime": "relatime", "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
}
_PROPAGATION_FLAGS = ("bind", "rbind", "unbindable", "runbindable", *PROPAGATIONS)
_TMPFS_DATA = ("", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


def _go_quote_list(items: list[str]) -> str:
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """moby/sys/mount MergeTmpfsOptions: a later flag or data key overrides an earlier one."""
    seen_flags: set[str] = set()
    seen_data: set[str] = set()
    out: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in _PROPAGATION_FLAGS or option in _TMPFS_FLAG_KEYS:
            key = "propagation" if option in _PROPAGATION_FLAGS else _TMPFS_FLAG_KEYS[option]
            if key not in seen_flags:
                out.insert(0, option)
                seen_flags.add(key)
            continue
        parts = option.split("=", 1)
        if len(parts) != 2 or parts[0] not in _TMPFS_DATA:
            raise InvalidArgument(f"Invalid tmpfs option {_go_quote_list(parts)}")
        if parts[0] not in seen_data:
            out.insert(0, option)
            seen_data.add(parts[0])
    return out


def tmpfs_options(data: str) -> list[str]:
    """The OCI options of a tmpfs mount with moby's defaults (noexec,nosuid,nodev,rprivate) then `data`."""
    return merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", *(data.split(",") if data else [])])


@dataclass
class SecurityOptions:
    no_new_privileges: bool = False
    seccomp: str = ""  # "", "unconfined", "builtin" or a JSON profile
    apparmor: str = ""
    labels: list[str] = field(default_factory=list)
    writable_cgroups: bool | None = None


def _parse_go_bool(v: str) -> bool | None:
    return {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}.get(v)


def parse_security_opts(opts: list[str] | None, *, daemon_nnp: bool = False) -> SecurityOptions:
    """moby parseSecurityOpt: `no-new-privileges[:|=bool]`, `seccomp=`, `apparmor=`, `label=`, `writable-cgroups`."""
    out = SecurityOptions(no_new_privileges=daemon_nnp)
    for opt in opts or []:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "writable-cgroups":
            out.writable_cgroups = True
            continue
        if opt == "disable":
            out.labels.append("disable")
            continue
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:
            key, _, value = opt.partition(":")
        else:
            raise InvalidArgument(f"invalid --security-opt 1: {json.dumps(opt)}")
        if key == "label":
            out.labels.append(value)
        elif key == "apparmor":
            out.apparmor = value
        elif key == "seccomp":
            out.seccomp = value
        elif key in ("no-new-privileges", "writable-cgroups"):
            b = _parse_go_bool(value)
            if b is None:
                raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}")
            if key == "no-new-privileges":
                out.no_new_privileges = b
            else:
                out.writable_cgroups = b
        else:
            raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}")
    return out


def load_seccomp_profile(text: str) -> JSON:
    """A Docker-format seccomp profile sent inline (the CLI reads the file and sends its content)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: json: cannot unmarshal "
                              f"{_json_kind(profile)} into Go value of type seccomp.Seccomp")
    return profile


def normalize_capabilities(names: list[str] | None, available: tuple[str, ...] | list[str]) -> list[str]:
    """moby NormalizeLegacyCapabilities: upper-case, add CAP_, keep "ALL"; unknown or unavailable is an error."""
    out = []
    for c in names or []:
        c = c.upper()
        if c == "ALL":
            out.append(c)
            continue
        if not c.startswith("CAP_"):
            c = "CAP_" + c
        if c not in capsmod.CAPS:
            raise InvalidArgument(f"unknown capability: {json.dumps(c)}")
        if c not in available:
            raise InvalidArgument("capability not supported by your kernel or not available in the current "
                                  f"environment: {json.dumps(c)}")
        out.append(c)
    return out


def tweak_capabilities(add: list[str] | None, drop: list[str] | None, privileged: bool,
                       available: tuple[str, ...] | list[str]) -> list[str]:
    """moby TweakCapabilities: Docker's 14 defaults ± CapAdd/CapDrop; "ALL" = what the host can grant."""
    every = [c for c in capsmod.CAPS if c in available]
    if privileged:
        return every
    if not add and not drop:
        return list(capsmod.DOCKER_DEFAULT)
    cap_drop = normalize_capabilities(drop, available)
    cap_add = normalize_capabilities(add, available)
    if "ALL" in cap_add:
        return [c for c in every if c not in cap_drop]
    if "ALL" in cap_drop:
        return [c for c in cap_add if c != "ALL"]
    return [c for c in capsmod.DOCKER_DEFAULT if c not in cap_drop] + cap_add


def parse_signal(raw: str) -> int:
    """moby/sys/signal ParseSignal: a number, or a name with or without SIG (RTMIN+n, RTMAX-n too)."""
    n = go_atoi(raw)
    if n is not None:
        if n == 0:
            raise InvalidArgument(f"Invalid signal: {raw}")
        return n
    name = raw.upper().removeprefix("SIG")
    rtmin, rtmax = signal.SIGRTMIN, signal.SIGRTMAX
    if name.startswith("RTMIN+") or name.startswith("RTMAX-"):
        off = go_atoi(name[6:])
        if off is not None and 1 <= off <= 15:
            return int(rtmin + off if name.startswith("RTMIN") else rtmax - off)
    special = {"RTMIN": rtmin, "RTMAX": rtmax, "IOT": signal.SIGABRT, "POLL": signal.SIGIO, "CLD": signal.SIGCHLD}
    if name in special:
        return int(special[name])
    sig = getattr(signal.Signals, "SIG" + name, None) if name.isalnum() else None
    if sig is None:
        raise InvalidArgument(f"Invalid signal: {raw}")
    return int(sig)


def validate_sysctls(sysctls: dict[str, str] | None, *, network_mode: str, ipc_mode: str) -> None:
    """Docker's allowed sysctls (docker/cli ValidateSysctl), checked against the namespaces the
    container gets as runc checks them at start: IPC ones need a private IPC namespace, net.* a
    network namespace that is not the host's."""
    for key, value in (sysctls or {}).items():
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc_mode == "host":
                raise InvalidArgument(f"sysctl {json.dumps(key)} is not allowed in the hosts ipc namespace")
        elif key.startswith("net."):
            if network_mode == "host":
                raise InvalidArgument(f"sysctl {json.dumps(key)} not allowed in host network namespace")
        else:
            raise InvalidArgument(f"sysctl '{key}={value}' is not allowed")


def parse_cpuset(value: str, what: str) -> set[int]:
    """A cpuset list ("0-2,4"): moby's parsers.ParseUintList with its errors."""
    out: set[int] = set()
    if value == "":
        return out
    for part in value.split(","):
        lo, sep, hi = part.partition("-")
        try:
            if not lo.isdigit() or (sep and not hi.isdigit()):
                raise ValueError
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise InvalidArgument(f"Invalid value {value} for cpuset {what}: invalid format: {value}") from None
        if b < a:
            raise InvalidArgument(f"Invalid value {value} for cpuset {what}: invalid range format: {part}")
        out.update(range(a, b + 1))
    return out


# ---------------------------------------------------------------------------------------------
# normalize


def normalize(body: JSON, image_config: JSON | None, *, name: str, cid: str, daemon: DaemonOptions,
              ) -> tuple[JSON, JSON, list[str]]:
    """Validate a create body and merge it with the image's config, as moby's containerCreate does.

    `body` is the whole request (Config fields at the top level, plus HostConfig and
    NetworkingConfig); `image_config` is the image's `config` object (Cmd, Env, …) or the whole
    image config document; `cid` is the new container's id (its first 12 characters are the
    default hostname); `name` is its name (part of neither object). Returns (Config, HostConfig,
    Warnings) as `docker inspect` shows them. Raises InvalidArgument (400) for anything the
    request got wrong, NotFound for a network that does not exist.
    """
    if not isinstance(body, dict) or not body:
        raise InvalidArgument("config cannot be empty in order to create a container")
    config = _struct(body, CONFIG_FIELDS, "Config")
    if config["Healthcheck"] is not None:
        config["Healthcheck"] = _struct(config["Healthcheck"], HEALTH_FIELDS, "Config.Healthcheck")
    if config["Volumes"] is None:
        config["Volumes"] = {}
    hc = decode_host_config(body.get("HostConfig"))
    if hc["PortBindings"] is None:
        hc["PortBindings"] = {}
    if hc["NetworkMode"] in ("", "default"):
        hc["NetworkMode"] = "bridge"  # moby's router names the default network at once
    if hc["PidsLimit"] is not None and hc["PidsLimit"] <= 0:
        hc["PidsLimit"] = None  # 0 and -1 both mean unlimited (moby's router)
    if hc["RestartPolicy"]["Name"] == "":
        hc["RestartPolicy"]["Name"] = "no"

    _validate_request(config, hc, daemon)
    warnings: list[str] = []
    _validate_config(config)
    _validate_host_config(hc, daemon)
    _verify_platform(config, hc, daemon, warnings)
    _validate_berth(config, hc, daemon, warnings)
    _adapt(hc, daemon)

    image = _image_section(image_config)
    if image is not None:
        _merge(config, image)
    if config["Entrypoint"] == [""]:
        config["Entrypoint"] = None
    if not config["Entrypoint"] and not config["Cmd"]:
        raise InvalidArgument("No command specified")
    if hc["PublishAllPorts"] and config["ExposedPorts"]:
        raise InvalidArgument("port publishing is not supported yet")
    _merge_log_config(hc["LogConfig"], daemon)

    if config["Hostname"] == "":
        config["Hostname"] = daemon.host_hostname if hc["NetworkMode"] == "host" else cid[:12]
    if len(config["Hostname"]) > MAX_HOSTNAME:
        raise InvalidArgument(f"hostname {json.dumps(config['Hostname'])} is too long "
                              f"(maximum {MAX_HOSTNAME} bytes)")
    if hc["MaskedPaths"] is None and not hc["Privileged"]:
        hc["MaskedPaths"] = daemon.default_masked_paths()
    if hc["ReadonlyPaths"] is None and not hc["Privileged"]:
        hc["ReadonlyPaths"] = daemon.default_readonly_paths()

    out_config = {k: v for k, v in config.items() if not (k in _CONFIG_OMITEMPTY and _empty(k, v))}
    if out_config.get("Healthcheck") is not None:
        out_config["Healthcheck"] = {k: v for k, v in out_config["Healthcheck"].items() if v}
    out_hc = {k: v for k, v in hc.items() if not (k in _HOST_OMITEMPTY and _empty(k, v))}
    return out_config, out_hc, warnings


_POINTERS = ("Healthcheck", "StopTimeout", "Init")


def _empty(key: str, v: Any) -> bool:
    """Go's omitempty: nil, false, 0, "" and empty slices and maps; a pointer only when nil."""
    if key in _POINTERS:
        return v is None
    return v is None or v is False or (isinstance(v, (str, list, dict)) and not v)


def _image_section(image_config: JSON | None) -> JSON | None:
    if image_config is None:
        return None
    if isinstance(image_config.get("config"), dict) and "rootfs" in image_config:
        return image_config["config"]  # a whole image config document
    return image_config


def _validate_request(config: JSON, hc: JSON, daemon: DaemonOptions) -> None:
    """internal/runconfig validateCreateRequest."""
    mode = hc["NetworkMode"]
    if mode == "container" or mode.startswith("container:"):
        if mode.partition(":")[2] == "":
            raise InvalidArgument("invalid network mode: invalid container format container:<name|id>")
        if config["Hostname"]:
            raise InvalidArgument("conflicting options: hostname and the network mode")
        if hc["Links"]:
            raise InvalidArgument("conflicting options: container type network can't be used with links. "
                                  "This would result in undefined behavior")
        if hc["Dns"]:
            raise InvalidArgument("conflicting options: dns and the network mode")
        if hc["ExtraHosts"]:
            raise InvalidArgument("conflicting options: custom host-to-IP mapping and the network mode")
        if hc["PortBindings"] or hc["PublishAllPorts"]:
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if config["ExposedPorts"]:
            raise InvalidArgument("conflicting options: port exposing and the container type network mode")
    if hc["UTSMode"] == "host" and config["Hostname"]:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if mode == "host" and hc["Links"]:
        raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                              "This would result in undefined behavior")
    if hc["Isolation"] not in ("", "default"):
        raise InvalidArgument(f"invalid isolation ({hc['Isolation']}): linux only supports 'default'")
    if hc["IOMaximumBandwidth"]:
        raise InvalidArgument("invalid option: QoS maximum bandwidth configuration is not supported on linux")
    if hc["IOMaximumIOps"]:
        raise InvalidArgument("invalid option: QoS maximum IOPs configuration is not supported on linux")
    f = daemon.features
    if (hc["CpuRealtimePeriod"] or hc["CpuRealtimeRuntime"]) and not f.cpu_realtime:
        raise InvalidArgument("kernel does not support CPU real-time scheduler")
    if hc["CpuRealtimePeriod"] and hc["CpuRealtimeRuntime"] and hc["CpuRealtimeRuntime"] > hc["CpuRealtimePeriod"]:
        raise InvalidArgument("cpu real-time runtime cannot be higher than cpu real-time period")
    if f.cpu_shares and hc["CpuShares"] < 0:
        raise InvalidArgument(f"invalid CPU shares ({hc['CpuShares']}): value must be a positive integer")


def _validate_config(config: JSON) -> None:
    """moby validateContainerConfig."""
    wd = config["WorkingDir"]
    if wd:
        if not wd.startswith("/"):
            raise InvalidArgument(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
        config["WorkingDir"] = posixpath.normpath(wd)
        if config["WorkingDir"].startswith("//"):
            config["WorkingDir"] = "/" + config["WorkingDir"].lstrip("/")
    if config["StopSignal"]:
        parse_signal(config["StopSignal"])
    for env in config["Env"] or []:
        if env.partition("=")[0] == "":
            raise InvalidArgument(f"invalid environment variable: {env}")
    hc = config["Healthcheck"]
    if hc is not None:
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
            if hc[key] != 0 and hc[key] < MIN_HEALTH_DURATION:
                raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
        if hc["Retries"] < 0:
            raise InvalidArgument("Retries in Healthcheck cannot be negative")


def _validate_host_config(hc: JSON, daemon: DaemonOptions) -> None:
    """moby validateHostConfig."""
    if hc["AutoRemove"] and hc["RestartPolicy"]["Name"] not in ("no", ""):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    for m in hc["Mounts"] or []:
        validate_mount(m)
    for host in hc["ExtraHosts"] or []:
        name, sep, ip = host.partition(":")
        if not sep or not name:
            raise InvalidArgument(f"bad format for add-host: {json.dumps(host)}")
        if ip != "host-gateway":
            try:
                ipaddress.ip_address(ip.strip())
            except ValueError:
                raise InvalidArgument(f"invalid IP address in add-host: {json.dumps(ip)}") from None
    validate_restart_policy(hc["RestartPolicy"])
    for key, vals in (("CapAdd", hc["CapAdd"]), ("CapDrop", hc["CapDrop"])):
        try:
            normalize_capabilities(vals, daemon.host_caps)
        except InvalidArgument as e:
            raise InvalidArgument(f"invalid {key}: {e}") from None
    for k in hc["Annotations"] or {}:
        if k == "":
            raise InvalidArgument("invalid Annotations: the empty string is not permitted as an annotation key")


def validate_restart_policy(rp: JSON) -> None:
    """moby ValidateRestartPolicy."""
    if rp["Name"] in ("always", "unless-stopped", "no"):
        if rp["MaximumRetryCount"] != 0:
            msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            raise InvalidArgument(msg + (" and cannot be negative" if rp["MaximumRetryCount"] < 0 else ""))
    elif rp["Name"] == "on-failure":
        if rp["MaximumRetryCount"] < 0:
            raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    else:
        raise InvalidArgument(f"invalid restart policy: unknown policy '{rp['Name']}'; use one of 'no', 'always', "
                              "'on-failure', or 'unless-stopped'")


def validate_mount(m: JSON) -> None:
    """moby linuxParser.ValidateMountConfig (with the bind source checked on this host)."""
    typ = m.get("Type", "")

    def err(msg: str) -> InvalidArgument:
        return InvalidArgument(f"invalid mount config for type {json.dumps(typ)}: {msg}")

    for key, want in (("BindOptions", "bind"), ("VolumeOptions", "volume"), ("ImageOptions", "image"),
                      ("TmpfsOptions", "tmpfs"), ("ClusterOptions", "cluster")):
        if m.get(key) is not None and typ != want:
            raise err(f"field {key} must not be specified")
    target = m.get("Target", "")
    if not target:
        raise err("field Target must not be empty")
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        raise err("invalid specification: destination can't be '/'")
    if not target.replace("\\", "/").startswith("/"):
        raise err(f"invalid mount path: '{target}' mount path must be absolute")
    if typ == "bind":
        source = m.get("Source", "")
        if not source:
            raise err("field Source must not be empty")
        prop = (m.get("BindOptions") or {}).get("Propagation", "")
        if prop and prop not in PROPAGATIONS:
            raise err(f"invalid propagation mode: {prop}")
        if not source.startswith("/"):
            raise err(f"invalid mount path: '{source}' mount path must be absolute")
        if not os.path.exists(source) and not (m.get("BindOptions") or {}).get("CreateMountpoint"):
            raise err(f"bind source path does not exist: {source}")
    elif typ == "tmpfs":
        if m.get("Source"):
            raise err("field Source must not be specified")
        try:
            tmpfs_data(m.get("TmpfsOptions"), bool(m.get("ReadOnly")))
        except InvalidArgument as e:
            raise err(str(e)) from None
    elif typ in ("volume", "image", "cluster", "npipe"):
        raise err(f"{typ} mounts are not supported yet")
    else:
        raise err("mount type unknown")


def _verify_platform(config: JSON, hc: JSON, daemon: DaemonOptions, warnings: list[str]) -> None:
    """moby verifyPlatformContainerSettings and verifyPlatformContainerResources."""
    if len(config["Hostname"]) > MAX_HOSTNAME:
        raise InvalidArgument(f"hostname {json.dumps(config['Hostname'])} is too long (maximum {MAX_HOSTNAME} bytes)")
    verify_resources(hc, daemon.features, daemon.ncpu, warnings)
    ipc = hc["IpcMode"]
    if not (ipc in ("", "none", "private", "shareable", "host") or (ipc.startswith("container:") and ipc[10:])):
        raise InvalidArgument(f"invalid IPC mode: {ipc}")
    pid = hc["PidMode"]
    if not (pid in ("", "host") or (pid.startswith("container:") and pid[10:])):
        raise InvalidArgument(f"invalid PID mode: {pid}")
    if hc["ShmSize"] < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if hc["UTSMode"] not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {hc['UTSMode']}")
    if not -1000 <= hc["OomScoreAdj"] <= 1000:
        raise InvalidArgument(f"Invalid value {hc['OomScoreAdj']}, range for oom score adj is [-1000, 1000]")
    if hc["NetworkMode"] == "host" and hc["PortBindings"]:
        warnings.append("Published ports are discarded when using host network mode")
        hc["PortBindings"] = {}
    if hc["Runtime"] == "":
        hc["Runtime"] = daemon.runtime_name  # which runtimes exist is the daemon's business: it checks
    for dest in hc["Tmpfs"] or {}:
        if posixpath.normpath(dest.replace("\\", "/")) == "/":
            raise InvalidArgument("invalid specification: destination can't be '/'")
        if not dest.replace("\\", "/").startswith("/"):
            raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
    if hc["CgroupnsMode"] not in ("", "host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {hc['CgroupnsMode']}")
    if hc["CgroupnsMode"] == "private" and not daemon.features.cgroup_namespaces:
        warnings.append("Your kernel does not support cgroup namespaces.  Cgroup namespace setting discarded.")


def verify_resources(r: JSON, f: HostFeatures, ncpu: int, warnings: list[str], *, update: bool = False) -> None:
    """moby verifyPlatformContainerResources: errors raised, what the host lacks discarded with a warning."""
    if r["MemorySwappiness"] == -1:
        r["MemorySwappiness"] = None
    if r["Memory"] != 0 and r["Memory"] < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if r["Memory"] > 0 and not f.memory_limit:
        warnings.append("Your kernel does not support memory limit capabilities or the cgroup is not mounted. "
                        "Limitation discarded.")
        r["Memory"], r["MemorySwap"] = 0, -1
    if r["Memory"] > 0 and r["MemorySwap"] != -1 and not f.swap_limit:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                        "Memory limited without swap.")
        r["MemorySwap"] = -1
    if r["Memory"] > 0 and r["MemorySwap"] > 0 and r["MemorySwap"] < r["Memory"]:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if r["Memory"] == 0 and r["MemorySwap"] > 0 and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if r["MemorySwappiness"] is not None and not f.memory_swappiness:
        warnings.append("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded.")
        r["MemorySwappiness"] = None
    if r["MemorySwappiness"] is not None and not 0 <= r["MemorySwappiness"] <= 100:
        raise InvalidArgument(f"Invalid value: {r['MemorySwappiness']}, valid memory swappiness range is 0-100")
    if r["MemoryReservation"] > 0 and not f.memory_reservation:
        warnings.append("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
                        "Limitation discarded.")
        r["MemoryReservation"] = 0
    if 0 < r["MemoryReservation"] < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if r["Memory"] > 0 and r["MemoryReservation"] > 0 and r["Memory"] < r["MemoryReservation"]:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
    if r["OomKillDisable"] is not None and not f.oom_kill_disable:
        if r["OomKillDisable"]:
            warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        r["OomKillDisable"] = None
    if r["OomKillDisable"] and r["Memory"] == 0:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result in "
                        "the system running out of resources.")
    if r["PidsLimit"] is not None and not f.pids_limit:
        if r["PidsLimit"] > 0:
            warnings.append("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. "
                            "PIDs limit discarded.")
        r["PidsLimit"] = None

    if r["NanoCpus"] > 0 and r["CpuPeriod"] > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r["NanoCpus"] > 0 and r["CpuQuota"] > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r["NanoCpus"] > 0 and not f.cpu_cfs:
        raise InvalidArgument("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the "
                              "cgroup is not mounted")
    if r["NanoCpus"] != 0 and not 0 <= r["NanoCpus"] <= ncpu * 10**9:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if r["CpuShares"] > 0 and not f.cpu_shares:
        warnings.append("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
        r["CpuShares"] = 0
    if (r["CpuPeriod"] or r["CpuQuota"]) and not f.cpu_cfs:
        warnings.append("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
        r["CpuPeriod"] = r["CpuQuota"] = 0
    if r["CpuPeriod"] and not 1000 <= r["CpuPeriod"] <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < r["CpuQuota"] < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r["CpuPercent"] > 0:
        warnings.append("linux does not support CPU percent. Percent discarded.")
        r["CpuPercent"] = 0

    if (r["CpusetCpus"] or r["CpusetMems"]) and not f.cpuset:
        warnings.append("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
        r["CpusetCpus"] = r["CpusetMems"] = ""
    for key, what, have in (("CpusetCpus", "cpus", f.cpus), ("CpusetMems", "mems", f.mems)):
        want = parse_cpuset(r[key], what)
        if want and have and not want <= parse_cpuset(have, what):
            label = "CPUs" if what == "cpus" else "memory nodes"
            raise InvalidArgument(f"Requested {label} are not available - requested {r[key]}, available: {have}")

    if r["BlkioWeight"] > 0 and not f.blkio_weight:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
        r["BlkioWeight"] = 0
    if r["BlkioWeight"] > 0 and not 10 <= r["BlkioWeight"] <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    if r["IOMaximumBandwidth"] or r["IOMaximumIOps"]:
        raise InvalidArgument("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
    discard: list[tuple[str, bool, str]] = [
        ("BlkioWeightDevice", f.blkio_weight_device,
         "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."),
        ("BlkioDeviceReadBps", f.blkio_read_bps,
         "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read "
         "limit discarded."),
        ("BlkioDeviceWriteBps", f.blkio_write_bps,
         "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write "
         "limit discarded."),
        ("BlkioDeviceReadIOps", f.blkio_read_iops,
         "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read "
         "limit discarded."),
        ("BlkioDeviceWriteIOps", f.blkio_write_iops,
         "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write "
         "limit discarded."),
    ]
    for key, supported, msg in discard:
        if r[key] and not supported:
            warnings.append(msg)
            r[key] = []


def _validate_berth(config: JSON, hc: JSON, daemon: DaemonOptions, warnings: list[str]) -> None:
    """What berth checks at create that moby leaves to start (or to features berth lacks yet)."""
    if hc["PortBindings"]:
        raise InvalidArgument("port publishing is not supported yet")
    mode = hc["NetworkMode"]
    builtin = mode in ("default", "bridge", "none", "host") or mode.startswith("container:")
    if not builtin and (daemon.network_exists is None or not daemon.network_exists(mode)):
        raise NotFound(f"network {mode} not found")
    if hc["Links"]:
        raise InvalidArgument("links are not supported yet")
    if hc["VolumesFrom"]:
        raise InvalidArgument("--volumes-from is not supported yet")
    if hc["VolumeDriver"] not in ("", "local"):
        raise InvalidArgument(f"volume driver {hc['VolumeDriver']} is not supported: volumes are not supported yet")
    for req in hc["DeviceRequests"] or []:
        driver = req.get("Driver", "") if isinstance(req, dict) else ""
        wanted = req.get("Capabilities") if isinstance(req, dict) else None
        raise InvalidArgument(f"could not select device driver {json.dumps(driver)} with capabilities: "
                              f"{_go_caps(wanted)}")
    tmpfs = hc["Tmpfs"] or {}
    seen: set[str] = set()
    for raw in hc["Binds"] or []:
        b = parse_bind(raw)
        daemon_root_propagation(b.source, b.propagation or None, daemon.data_root)
        if b.destination in seen or b.destination in tmpfs:
            raise InvalidArgument(f"Duplicate mount point: {b.destination}")
        seen.add(b.destination)
    for m in hc["Mounts"] or []:
        if m["Type"] == "bind":
            bind_opts = m.get("BindOptions")
            daemon_root_propagation(m["Source"], None if bind_opts is None else bind_opts.get("Propagation", ""),
                                    daemon.data_root)
        dest = posixpath.normpath(m["Target"])
        if dest in seen:
            raise InvalidArgument(f"Duplicate mount point: {m['Target']}")
        seen.add(dest)
    for data in tmpfs.values():
        tmpfs_options(data)
    for d in hc["Devices"] or []:
        _validate_device(d)
    for rule in hc["DeviceCgroupRules"] or []:
        parse_device_cgroup_rule(rule)
    validate_sysctls(hc["Sysctls"], network_mode=mode, ipc_mode=hc["IpcMode"] or daemon.ipc_mode)

    sec = parse_security_opts(hc["SecurityOpt"])
    if sec.seccomp not in ("", "unconfined", "builtin"):
        if not daemon.features.seccomp:
            raise InvalidArgument("seccomp is not enabled in your kernel, cannot run a custom seccomp profile")
        load_seccomp_profile(sec.seccomp)

    _check_log_driver(hc["LogConfig"], daemon)

    ulimits = hc["Ulimits"]
    for ul in ulimits or []:
        if ul["Name"] not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {ul['Name']}")
        soft, hard = ul["Soft"], ul["Hard"]
        if hard != -1:
            if soft == -1:
                raise InvalidArgument("ulimit soft limit must be less than or equal to hard limit: soft: -1 "
                                      f"(unlimited), hard: {hard}")
            if soft > hard:
                raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        cap = daemon.daemon_hard_rlimits.get(ul["Name"])
        if cap is not None and _rlimit_value(hard) > cap:
            warnings.append(f"Ulimit {ul['Name']}: the hard limit {_show_limit(hard)} is above the daemon's own hard "
                            f"limit ({cap}), which it cannot raise without CAP_SYS_RESOURCE. Limited to {cap}.")
            ul["Hard"] = cap
            if _rlimit_value(soft) > cap:
                ul["Soft"] = cap
    if hc["OomScoreAdj"] < daemon.oom_score_adj_min:
        warnings.append(f"OomScoreAdj {hc['OomScoreAdj']} is below the daemon's own OOM score adjustment, which it "
                        f"cannot lower without CAP_SYS_RESOURCE. Set to {daemon.oom_score_adj_min}.")
        hc["OomScoreAdj"] = daemon.oom_score_adj_min


def _go_caps(wanted: Any) -> str:
    if not isinstance(wanted, list):
        return "[]"
    return "[" + " ".join("[" + " ".join(str(c) for c in (g or [])) + "]" for g in wanted) + "]"


def _rlimit_value(v: int) -> int:
    return RLIM_INFINITY if v < 0 else v


def _show_limit(v: int) -> str:
    return "unlimited" if v < 0 else str(v)


def _validate_device(d: JSON) -> None:
    perms = d.get("CgroupPermissions", "")
    if perms and (len(perms) > 3 or any(c not in "rwm" for c in perms) or len(set(perms)) != len(perms)):
        raise InvalidArgument(f"invalid device mode: {perms}")
    host = d.get("PathOnHost", "")
    if not host.startswith("/"):
        raise InvalidArgument(f"invalid device path: {host}")
    target = d.get("PathInContainer", "")
    if target and not target.startswith("/"):
        raise InvalidArgument(f"invalid device path in container: {target}")


_RULE_TYPES = ("a", "b", "c")


def parse_device_cgroup_rule(rule: str) -> JSON:
    """A --device-cgroup-rule "c 1:3 rwm" as an OCI device cgroup entry (moby's regexp, in code)."""
    parts = rule.split(" ")
    ok = len(parts) == 3 and parts[0] in _RULE_TYPES
    if ok:
        major, sep, minor = parts[1].partition(":")
        access = parts[2]
        ok = (sep == ":" and all(x == "*" or x.isdigit() for x in (major, minor)) and major != "" and minor != ""
              and 1 <= len(access) <= 3 and all(c in "rwm" for c in access))
    if not ok:
        raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'")
    return {"allow": True, "type": parts[0], "major": -1 if major == "*" else int(major),
            "minor": -1 if minor == "*" else int(minor), "access": access}


def _check_log_driver(log: JSON, daemon: DaemonOptions) -> None:
    typ = log["Type"] or daemon.log_driver
    if typ not in LOG_DRIVERS:
        raise InvalidArgument(f"failed to create logger: logger: no log driver named '{typ}' is registered")
    for key in log["Config"] or {}:
        if key not in LOG_DRIVERS[typ]:
            raise InvalidArgument(f"unknown log opt '{key}' for {typ} log driver")


def _merge_log_config(log: JSON, daemon: DaemonOptions) -> None:
    """moby mergeAndVerifyLogConfig: the daemon's driver and options fill what the request left out."""
    if not log["Type"]:
        log["Type"] = daemon.log_driver
    if log["Config"] is None:
        log["Config"] = {}
    if log["Type"] == daemon.log_driver:
        for k, v in daemon.log_opts.items():
            log["Config"].setdefault(k, v)


def _adapt(hc: JSON, daemon: DaemonOptions) -> None:
    """moby adaptContainerSettings: defaults filled after validation."""
    if hc["Memory"] > 0 and hc["MemorySwap"] == 0:
        hc["MemorySwap"] = hc["Memory"] * 2  # moby: swap defaults to the memory limit again
    if hc["ShmSize"] == 0:
        hc["ShmSize"] = daemon.shm_size
    if hc["IpcMode"] == "":
        hc["IpcMode"] = daemon.ipc_mode
    if hc["CgroupnsMode"] == "":
        hc["CgroupnsMode"] = "host" if hc["Privileged"] and daemon.cgroup_version != 2 else daemon.default_cgroupns()
    has_label = any(o.split("=")[0] == "label" for o in hc["SecurityOpt"] or [])
    if not has_label and (hc["IpcMode"] == "host" or hc["PidMode"] == "host" or hc["Privileged"]):
        hc["SecurityOpt"] = [*(hc["SecurityOpt"] or []), "label=disable"]
    if hc["OomKillDisable"] is None:
        hc["OomKillDisable"] = False


def _merge(user: JSON, image: JSON) -> None:
    """moby's merge (daemon/commit.go): the image's config fills what the request left out."""
    if user["User"] == "":
        user["User"] = _str(image.get("User"))
    if not user["ExposedPorts"]:
        ports = image.get("ExposedPorts")
        user["ExposedPorts"] = {k: {} for k in ports} if isinstance(ports, dict) else None
    elif isinstance(image.get("ExposedPorts"), dict):
        for port in image["ExposedPorts"]:
            user["ExposedPorts"].setdefault(port, {})
    image_env = [e for e in image.get("Env") or [] if isinstance(e, str)]
    if not user["Env"]:
        user["Env"] = list(image_env) if image.get("Env") is not None else None
    else:
        keys = {e.partition("=")[0] for e in user["Env"]}
        user["Env"] = user["Env"] + [e for e in image_env if e.partition("=")[0] not in keys]
    if user["Labels"] is None:
        user["Labels"] = {}
    for k, v in (image.get("Labels") or {}).items():
        user["Labels"].setdefault(k, v)
    if not user["Entrypoint"]:
        if not user["Cmd"]:
            user["Cmd"] = _strs(image.get("Cmd"))
        if user["Entrypoint"] is None:
            user["Entrypoint"] = _strs(image.get("Entrypoint"))
    ihc = image.get("Healthcheck")
    if isinstance(ihc, dict):
        ihc = _struct(ihc, HEALTH_FIELDS, "Healthcheck")
        if user["Healthcheck"] is None:
            user["Healthcheck"] = ihc
        else:
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not user["Healthcheck"][key]:
                    user["Healthcheck"][key] = ihc[key]
    if user["WorkingDir"] == "":
        user["WorkingDir"] = _str(image.get("WorkingDir"))
    image_vols = image.get("Volumes")
    if not user["Volumes"]:
        user["Volumes"] = {k: {} for k in image_vols} if isinstance(image_vols, dict) else None
    elif isinstance(image_vols, dict):
        for k in image_vols:
            user["Volumes"][k] = {}
    if user["StopSignal"] == "":
        user["StopSignal"] = _str(image.get("StopSignal"))


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _strs(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [s for s in v if isinstance(s, str)]
    return None
