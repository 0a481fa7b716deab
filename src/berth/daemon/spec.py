"""At start: a container's Config and HostConfig as an OCI runtime spec, as moby's createSpec builds it.

    spec = build(ContainerView(id, name, config, host_config), rootfs=merged_dir,
                 files={"/etc/hostname": p1, "/etc/hosts": p2, "/etc/resolv.conf": p3}, daemon=opts)

The steps follow moby daemon/oci_linux.go (WithCommonOptions, WithCgroups, WithResources, WithSysctls,
WithDevices, WithUser, WithRlimits, WithNamespaces, WithCapabilities, WithSeccomp, WithMounts, OOM
score, no-new-privileges, masked/read-only paths) on top of Docker's default spec
(`berth.runtime.spec.default_spec`). The user is resolved from the container's own /etc/passwd and
/etc/group read as text (`berth.runtime.user`), never through the host's NSS.

Side effects, as Docker's at start: a missing `-v` bind source directory (or a --mount with
CreateMountpoint) is created on the host. Everything else only reads.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from berth.daemon.createconfig import (
    RLIM_INFINITY,
    DaemonOptions,
    daemon_root_propagation,
    decode_host_config,
    load_seccomp_profile,
    mount_points,
    normalize,
    parse_bind,
    parse_device_cgroup_rule,
    parse_security_opts,
    tmpfs_data,
    tmpfs_options,
    tweak_capabilities,
    validate_restart_policy,
    verify_resources,
)
from berth.errors import BerthError, InvalidArgument
from berth.runtime import user as usermod
from berth.runtime.spec import DEFAULT_PATH_ENV, default_mounts, default_spec

# The daemon takes its calls from this module: normalize and mount_points at create, build at start,
# resources_update.
__all__ = ["ContainerView", "DaemonOptions", "build", "mount_points", "normalize", "resources_update"]

JSON = dict[str, Any]

INIT_IN_CONTAINER = "/sbin/docker-init"
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts")  # moby's NetworkMounts order
_OCTAL = re.compile(r"\\([0-7]{3})")  # mountinfo escapes space, tab, newline, backslash
# Default mounts a read-only root leaves writable (moby WithMounts).
_RO_EXEMPT = ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev")


@dataclass
class ContainerView:
    """What build needs of a container. `config` and `host_config` are what normalize returned
    (the image's config and env were merged into them at create, as moby does); `image_config`
    and `image_env` are carried for the daemon's convenience and not read here."""

    id: str
    name: str
    config: JSON
    host_config: JSON
    image_config: JSON = field(default_factory=dict)
    image_env: list[str] = field(default_factory=list)
    # read-only binds stay non-recursive by default: created through API < 1.44 (moby keeps that)
    ro_non_recursive_default: bool = False
    # why the container's runtime or the kernel cannot make a mount recursively read-only (None: they can)
    rro_unsupported: str | None = None


@dataclass
class _Mount:
    """A user-side mount before it becomes OCI (moby's container.Mount)."""

    destination: str
    source: str
    writable: bool = True
    propagation: str = "rprivate"
    non_recursive: bool = False
    tmpfs: str | None = None  # the tmpfs data string when this is a tmpfs
    auto_slave: bool = False  # rslave because the source holds the daemon root (not asked for)
    ro_non_recursive: bool = False  # BindOptions.ReadOnlyNonRecursive: "ro", submounts stay writable
    ro_force_recursive: bool = False  # BindOptions.ReadOnlyForceRecursive: "rro" or an error


def build(container: ContainerView, *, rootfs: str, files: dict[str, str], daemon: DaemonOptions) -> JSON:
    """The OCI spec (a dict ready for config.json) for starting `container` on `rootfs`.

    `files` maps "/etc/hostname", "/etc/hosts", "/etc/resolv.conf" to the host files the daemon
    wrote; each is bind-mounted in (read-only with a read-only root), unless the user mounted
    something there. Raises InvalidArgument for what the container's own content or request makes
    impossible (an unknown user, a missing device, a bind source that does not exist).
    """
    cfg, hc = container.config, container.host_config
    spec = default_spec(seccomp=False)
    linux: JSON = spec["linux"]
    process: JSON = spec["process"]
    sec = parse_security_opts(hc.get("SecurityOpt"), daemon_nnp=daemon.no_new_privileges)
    privileged = bool(hc.get("Privileged"))
    network_mode = hc.get("NetworkMode") or "bridge"
    pid_mode = hc.get("PidMode") or ""

    # WithCommonOptions
    spec["root"] = {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))}
    mounts = default_mounts()
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not args:
        raise InvalidArgument("No command specified")
    init = hc.get("Init")
    if pid_mode == "" and (init is True or (init is None and daemon.init)):
        if not os.path.exists(daemon.init_path):
            raise BerthError(f'exec: "{daemon.init_path}": executable file not found')
        args = [INIT_IN_CONTAINER, "--", *args]
        mounts.append({"destination": INIT_IN_CONTAINER, "type": "bind", "source": daemon.init_path,
                       "options": ["bind", "ro"]})
    process["args"] = args
    process["cwd"] = cfg.get("WorkingDir") or "/"
    tty = bool(cfg.get("Tty"))
    process["terminal"] = tty
    height, width = [*(hc.get("ConsoleSize") or []), 0, 0][:2]
    if tty and (height or width):
        process["consoleSize"] = {"height": height, "width": width}
    env = [DEFAULT_PATH_ENV, f"HOSTNAME={cfg.get('Hostname', '')}"] + (["TERM=xterm"] if tty else [])
    env = replace_or_append_env(env, cfg.get("Env") or [])
    spec["hostname"] = cfg.get("Hostname", "")
    sysctl: dict[str, str] = {}
    if cfg.get("Domainname"):
        sysctl["kernel.domainname"] = cfg["Domainname"]
    if network_mode != "host" and not network_mode.startswith("container:"):
        # A private network namespace: unprivileged ping and low ports, as Docker grants.
        if _sysctl_exists("net.ipv4.ping_group_range"):
            sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
        if _sysctl_exists("net.ipv4.ip_unprivileged_port_start"):
            sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"

    # WithCgroups, WithResources, WithSysctls, WithDevices
    parent = hc.get("CgroupParent") or daemon.cgroup_parent
    linux["cgroupsPath"] = posixpath.normpath("/" + posixpath.join(parent, container.id).lstrip("/"))
    linux["resources"] = resources(hc)
    sysctl.update(hc.get("Sysctls") or {})
    linux["sysctl"] = sysctl
    devices, rules = _devices(hc, privileged, linux["resources"]["devices"])
    linux["devices"] = devices
    linux["resources"]["devices"] = rules

    # WithUser (from the container's own files) and runc's HOME
    who, extra = usermod.lookup(rootfs, cfg.get("User") or "", hc.get("GroupAdd"))
    process["user"] = {"uid": who.uid, "gid": who.gid, "additionalGids": [who.gid, *who.sgids, *extra]}
    if not any(e.partition("=")[0] == "HOME" for e in env):
        env.append(f"HOME={who.home or '/'}")  # runc sets it from passwd when the env has none
    process["env"] = env

    # WithRlimits, WithNamespaces, WithCapabilities, WithSeccomp
    rlimits = rlimits_for(hc.get("Ulimits"), daemon)
    if rlimits:
        process["rlimits"] = rlimits
    else:
        process.pop("rlimits", None)
    linux["namespaces"] = _namespaces(hc, daemon)
    if hc.get("UTSMode") == "host":
        spec["hostname"] = ""
    caplist = tweak_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), privileged, daemon.host_caps)
    if who.uid == 0:
        process["capabilities"] = {"bounding": caplist, "effective": list(caplist), "permitted": list(caplist)}
    else:
        # moby: no effective/permitted set for a non-root user, as execve would give it none
        process["capabilities"] = {"bounding": caplist}
    profile = _seccomp(sec.seccomp, privileged, caplist, daemon)
    if profile:
        linux["seccomp"] = profile

    # WithMounts
    spec["mounts"] = _mounts(container, mounts, files, daemon, linux)
    if privileged:
        for m in spec["mounts"]:
            if m["destination"] == "/sys":
                m["options"] = [o for o in m["options"] if o != "ro"]
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
    writable_cgroups = privileged if sec.writable_cgroups is None else sec.writable_cgroups
    if writable_cgroups:
        for m in spec["mounts"]:
            if m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"]

    for key in ("devices", "sysctl"):
        if not linux.get(key):
            linux.pop(key, None)  # omitempty, as in Docker's config.json
    if not spec["hostname"]:
        spec.pop("hostname")
    process["oomScoreAdj"] = max(int(hc.get("OomScoreAdj") or 0), daemon.oom_score_adj_min)
    process["noNewPrivileges"] = sec.no_new_privileges
    if hc.get("MaskedPaths") is not None:
        linux["maskedPaths"] = list(hc["MaskedPaths"])
    if hc.get("ReadonlyPaths") is not None:
        linux["readonlyPaths"] = list(hc["ReadonlyPaths"])
    if hc.get("Annotations"):
        spec["annotations"] = dict(hc["Annotations"])
    return spec


def replace_or_append_env(defaults: list[str], overrides: list[str]) -> list[str]:
    """moby ReplaceOrAppendEnvValues: KEY=v replaces in place or appends; a bare KEY removes it."""
    out: list[str | None] = list(defaults)
    index = {e.partition("=")[0]: i for i, e in enumerate(defaults)}
    for value in overrides:
        key, sep, _ = value.partition("=")
        if not sep:
            if key in index:
                out[index[key]] = None
            continue
        if key in index:
            out[index[key]] = value
        else:
            index[key] = len(out)
            out.append(value)
    return [e for e in out if e]


def _sysctl_exists(name: str) -> bool:
    return os.path.exists("/proc/sys/" + name.replace(".", "/"))


def resources(hc: JSON) -> JSON:
    """moby WithResources: memory, cpu, blockIO, pids and the default device rules."""
    from berth.runtime.spec import DEVICE_RULES

    memory: JSON = {}
    if (hc.get("Memory") or 0) > 0:
        memory["limit"] = hc["Memory"]
    if (hc.get("MemoryReservation") or 0) > 0:
        memory["reservation"] = hc["MemoryReservation"]
    if (hc.get("MemorySwap") or 0) > 0:
        memory["swap"] = hc["MemorySwap"]
    if hc.get("MemorySwappiness") is not None:
        memory["swappiness"] = hc["MemorySwappiness"]
    if hc.get("OomKillDisable") is not None:
        memory["disableOOMKiller"] = bool(hc["OomKillDisable"])

    cpu: JSON = {"shares": max(0, int(hc.get("CpuShares") or 0))}
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    nano = hc.get("NanoCpus") or 0
    if nano > 0:
        period = 100000  # 100ms, the CFS default, as moby uses
        cpu["quota"] = nano * period // 10**9
        cpu["period"] = period
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = hc["CpuRealtimePeriod"]
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = hc["CpuRealtimeRuntime"]

    block: JSON = {"weight": int(hc.get("BlkioWeight") or 0)}
    weight_devices = [{**_major_minor(d["Path"]), "weight": d["Weight"]} for d in hc.get("BlkioWeightDevice") or []]
    if weight_devices:
        block["weightDevice"] = weight_devices
    for key, oci in (("BlkioDeviceReadBps", "throttleReadBpsDevice"), ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        devs = [{**_major_minor(d["Path"]), "rate": d["Rate"]} for d in hc.get(key) or []]
        if devs:
            block[oci] = devs

    out: JSON = {"devices": [dict(d) for d in DEVICE_RULES], "memory": memory, "cpu": cpu}
    pids = hc.get("PidsLimit")
    if pids is not None:
        out["pids"] = {"limit": pids if pids > 0 else -1}
    out["blockIO"] = block
    return out


def _major_minor(path: str) -> JSON:
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidArgument(f"stat {path}: {e.strerror.lower() if e.strerror else e}") from None
    return {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)}


def _device_from_path(path: str, permissions: str) -> JSON | None:
    """runc DeviceFromPath: None for something that is not a device node."""
    st = os.lstat(path)
    kind = {stat.S_IFBLK: "b", stat.S_IFCHR: "c", stat.S_IFIFO: "p"}.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return {"type": kind, "path": path, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "access": permissions}


def _devices_from_path(host: str, target: str, permissions: str) -> list[JSON]:
    """moby oci.DevicesFromPath: a device node, or every device under a directory."""
    resolved = os.path.realpath(host) if os.path.islink(host) else host
    try:
        dev = _device_from_path(resolved, permissions)
    except OSError as e:
        raise InvalidArgument(f"error gathering device information while adding custom device {_q(host)}: "
                              f"lstat {resolved}: {(e.strerror or str(e)).lower()}") from None
    if dev is not None:
        return [{**dev, "path": target}]
    found = []
    if os.path.isdir(resolved):
        for top, dirs, names in os.walk(resolved):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(top, n)
                try:
                    child = _device_from_path(p, permissions)
                except OSError:
                    continue
                if child is not None:
                    found.append({**child, "path": target + p[len(resolved):]})
    if not found:
        raise InvalidArgument(f"error gathering device information while adding custom device {_q(host)}: "
                              "not a device node")
    return found


def _q(s: str) -> str:
    return json.dumps(s)  # Go's %q for what we quote


def host_devices(root: str = "/dev") -> list[JSON]:
    """runc HostDevices: every device node under /dev except pts, shm, fd, mqueue and console."""
    out: list[JSON] = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            if name not in ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"):
                out.extend(host_devices(path))
            continue
        if name == "console":
            continue
        try:
            dev = _device_from_path(path, "rwm")
        except OSError:
            continue
        if dev is not None and dev["type"] != "p":
            out.append(dev)
    return out


def _oci_device(d: JSON) -> JSON:
    return {k: d[k] for k in ("type", "path", "major", "minor", "fileMode", "uid", "gid")}


def _devices(hc: JSON, privileged: bool, default_rules: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """moby WithDevices: (linux.devices, linux.resources.devices)."""
    devs: list[JSON] = []
    rules = list(default_rules)
    if privileged:
        devs = [_oci_device(d) for d in host_devices()]
        for m in hc.get("Devices") or []:
            if m["PathOnHost"] == m["PathInContainer"]:
                continue  # /dev is the host's already
            devs.extend(_oci_device(d) for d in _devices_from_path(m["PathOnHost"], m["PathInContainer"], "rwm"))
        return devs, [{"allow": True, "access": "rwm"}]
    for m in hc.get("Devices") or []:
        target = m.get("PathInContainer") or m["PathOnHost"]
        for d in _devices_from_path(m["PathOnHost"], target, m.get("CgroupPermissions") or "rwm"):
            devs.append(_oci_device(d))
            rules.append({"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"],
                          "access": d["access"]})
    rules.extend(parse_device_cgroup_rule(r) for r in hc.get("DeviceCgroupRules") or [])
    return devs, rules


def rlimits_for(ulimits: list[JSON] | None, daemon: DaemonOptions) -> list[JSON]:
    """moby WithRlimits: the container's ulimits, then the daemon's defaults for the others, each
    clamped to the hard limit the daemon can grant (normalize warned when it had to)."""
    merged = list(ulimits or [])
    names = {u["Name"] for u in merged}
    merged += [u for u in daemon.default_ulimits if u["Name"] not in names]
    out = []
    for u in merged:
        soft = RLIM_INFINITY if u["Soft"] < 0 else u["Soft"]
        hard = RLIM_INFINITY if u["Hard"] < 0 else u["Hard"]
        cap = daemon.daemon_hard_rlimits.get(u["Name"])
        if cap is not None:
            hard, soft = min(hard, cap), min(soft, cap)
        out.append({"type": "RLIMIT_" + u["Name"].upper(), "hard": hard, "soft": soft})
    return out


def _ns_path(daemon: DaemonOptions, ref: str, kind: str) -> str:
    if daemon.container_ns is None:
        raise InvalidArgument(f"joining another container's {kind} namespace is not supported by this daemon")
    return daemon.container_ns(ref, kind)


def _namespaces(hc: JSON, daemon: DaemonOptions) -> list[JSON]:
    """moby WithNamespaces, in Docker's order (mount, network, uts, pid, ipc, cgroup)."""
    out: list[JSON] = [{"type": "mount"}]
    net = hc.get("NetworkMode") or "bridge"
    if net.startswith("container:"):
        out.append({"type": "network", "path": _ns_path(daemon, net.partition(":")[2], "net")})
    elif net != "host":
        out.append({"type": "network"})
    if hc.get("UTSMode") != "host":
        out.append({"type": "uts"})
    pid = hc.get("PidMode") or ""
    if pid.startswith("container:"):
        out.append({"type": "pid", "path": _ns_path(daemon, pid.partition(":")[2], "pid")})
    elif pid != "host":
        out.append({"type": "pid"})
    ipc = hc.get("IpcMode") or ""
    if ipc.startswith("container:"):
        out.append({"type": "ipc", "path": _ns_path(daemon, ipc.partition(":")[2], "ipc")})
    elif ipc in ("", "private", "shareable", "none"):
        out.append({"type": "ipc"})
    elif ipc != "host":
        raise InvalidArgument(f"Invalid IPC mode: {ipc}")
    if hc.get("CgroupnsMode") == "private" and daemon.features.cgroup_namespaces:
        out.append({"type": "cgroup"})
    return out


def _seccomp(requested: str, privileged: bool, caplist: list[str], daemon: DaemonOptions) -> JSON | None:
    """moby WithSeccomp: unconfined, the default for the container's bounding set, or a custom profile."""
    from berth.runtime.seccomp import default_oci, to_oci
    from berth.runtime.seccomp.profile import host_kernel

    def custom(text: str) -> JSON:
        return to_oci(load_seccomp_profile(text), caplist, arch=os.uname().machine, kernel=host_kernel())

    if requested == "unconfined":
        return None
    if privileged:
        return custom(requested) if requested not in ("", "builtin") else None
    if not daemon.features.seccomp:
        if requested not in ("", "builtin"):
            raise InvalidArgument("seccomp is not enabled in your kernel, cannot run a custom seccomp profile")
        return None
    if requested == "builtin":
        return default_oci(caplist)
    if requested:
        return custom(requested)
    override = daemon.seccomp_profile_override
    if override == "unconfined":
        return None
    if override:
        return custom(override)
    return default_oci(caplist)


def _user_mounts(container: ContainerView, files: dict[str, str], daemon: DaemonOptions) -> list[_Mount]:
    """moby setupMounts + IpcMounts + TmpfsMounts: binds, then the /etc files, then tmpfs,
    stably ordered by depth so that a parent is mounted before what is under it."""
    hc = container.host_config
    binds: list[_Mount] = []
    tmpfs: list[_Mount] = []
    for raw in hc.get("Binds") or []:
        b = parse_bind(raw)
        _ensure_source(b.source)
        auto = daemon_root_propagation(b.source, b.propagation or None, daemon.data_root)
        binds.append(_Mount(b.destination, b.source, b.writable, "rslave" if auto else b.propagation or "rprivate",
                            auto_slave=auto, ro_non_recursive=container.ro_non_recursive_default))
    for m in hc.get("Mounts") or []:
        dest = posixpath.normpath(m["Target"])
        if m["Type"] == "tmpfs":
            tmpfs.append(_Mount(dest, "tmpfs", tmpfs=tmpfs_data(m.get("TmpfsOptions"), bool(m.get("ReadOnly")))))
            continue
        if m["Type"] != "bind":
            raise InvalidArgument(f"invalid mount config for type {_q(m['Type'])}: {m['Type']} mounts are not "
                                  "supported yet")
        opts = m.get("BindOptions") or {}
        source = posixpath.normpath(m["Source"])
        if not os.path.exists(source):
            if not opts.get("CreateMountpoint"):
                raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: '
                                      f"{m['Source']}")
            _ensure_source(source)
        auto = daemon_root_propagation(source, None if m.get("BindOptions") is None else opts.get("Propagation", ""),
                                       daemon.data_root)
        ro_non_recursive = bool(opts.get("ReadOnlyNonRecursive")) or container.ro_non_recursive_default
        binds.append(_Mount(dest, source, not m.get("ReadOnly"),
                            "rslave" if auto else opts.get("Propagation") or "rprivate",
                            bool(opts.get("NonRecursive")), auto_slave=auto, ro_non_recursive=ro_non_recursive,
                            ro_force_recursive=bool(opts.get("ReadOnlyForceRecursive"))))
    for dest, data in (hc.get("Tmpfs") or {}).items():
        tmpfs.append(_Mount(posixpath.normpath(dest), "tmpfs", tmpfs=data))

    # A user mount on an /etc file takes the network file's place (moby TrySetNetworkMount).
    writable = not hc.get("ReadonlyRootfs")
    net = {dest: _Mount(dest, src, writable) for dest, src in files.items() if dest in NETWORK_FILES}
    for over in [b for b in binds if b.destination in NETWORK_FILES]:
        net[over.destination] = _Mount(over.destination, over.source, over.writable)
        binds.remove(over)
    ipc: list[_Mount] = []
    if hc.get("IpcMode") == "host" and not any(m.destination == "/dev/shm" for m in binds + tmpfs):
        ipc.append(_Mount("/dev/shm", "/dev/shm"))
    ordered = binds + [net[d] for d in NETWORK_FILES if d in net] + ipc + tmpfs
    return sorted(ordered, key=lambda m: m.destination.count("/"))


def _ensure_source(path: str) -> None:
    """A missing bind source becomes a directory, as Docker creates it at start for -v."""
    if not os.path.exists(path):
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"error while creating mount source path '{path}': mkdir {path}: "
                                  f"{(e.strerror or str(e)).lower()}") from None


def _mounts(container: ContainerView, defaults: list[JSON], files: dict[str, str], daemon: DaemonOptions,
            linux: JSON) -> list[JSON]:
    """moby WithMounts: the defaults minus what the user overrides, then the user's mounts."""
    hc = container.host_config
    user = _user_mounts(container, files, daemon)
    user_dests = {m.destination for m in user}
    mount_dev = "/dev" in user_dests
    shm_size = int(hc.get("ShmSize") or daemon.shm_size)
    out: list[JSON] = []
    for d in defaults:
        dest = d["destination"]
        if dest in user_dests or (mount_dev and dest.startswith("/dev/")):
            continue
        if dest == "/dev/shm":
            if hc.get("IpcMode") == "none":
                continue
            d = {**d, "options": [o for o in d["options"] if not o.startswith("size=")] + [f"size={shm_size}"]}
        out.append(d)
    for u in user:
        if u.tmpfs is not None:
            out.append({"destination": u.destination, "type": "tmpfs", "source": "tmpfs",
                        "options": tmpfs_options(u.tmpfs)})
            continue
        _check_propagation(u, linux)
        opts = ["bind" if u.non_recursive else "rbind"]
        if not u.writable:
            opts.append(_read_only_option(u, container.rro_unsupported))
        if u.propagation:
            opts.append(u.propagation)
        out.append({"destination": u.destination, "type": "bind", "source": u.source, "options": opts})
    if hc.get("ReadonlyRootfs"):
        for d in out:
            if d["destination"] in _RO_EXEMPT or d["destination"] in user_dests:
                continue
            if "ro" not in d["options"]:
                d["options"] = [*d["options"], "ro"]
    return out


def _read_only_option(m: _Mount, rro_unsupported: str | None) -> str:
    """moby (since v25): a read-only bind is recursively read-only ("rro", its submounts too) when
    the kernel and the runtime can do it, unless asked not to (ReadOnlyNonRecursive)."""
    if m.ro_non_recursive and m.ro_force_recursive:
        raise InvalidArgument("mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive")
    if rro_unsupported is not None:
        if m.ro_force_recursive:
            raise InvalidArgument(rro_unsupported)
        return "ro"
    return "ro" if m.ro_non_recursive else "rro"


def _check_propagation(m: _Mount, linux: JSON) -> None:
    """A shared or slave bind needs a source mount that propagates; the root follows (moby)."""
    if m.propagation in ("shared", "rshared"):
        mountpoint, optional = _source_mount(m.source)
        if not any(o.startswith("shared:") for o in optional):
            raise InvalidArgument(f"path {m.source} is mounted on {mountpoint} but it is not a shared mount")
        if linux.get("rootfsPropagation") not in ("shared", "rshared"):
            linux["rootfsPropagation"] = "shared"
    elif m.propagation in ("slave", "rslave"):
        mountpoint, optional = _source_mount(m.source)
        if not any(o.startswith(("shared:", "master:")) for o in optional):
            if m.auto_slave:
                return  # moby falls back to the default root propagation for the daemon's own root
            raise InvalidArgument(f"path {m.source} is mounted on {mountpoint} but it is not a shared or slave mount")
        if linux.get("rootfsPropagation") not in ("shared", "rshared", "slave", "rslave"):
            linux["rootfsPropagation"] = "rslave"


def _source_mount(source: str) -> tuple[str, list[str]]:
    """The mount that holds `source` (the longest mountpoint above it) and its optional fields."""
    path = os.path.realpath(source)
    best, best_opts = "", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left = line.partition(" - ")[0].split()
            if len(left) < 6:
                continue
            mp = _OCTAL.sub(lambda o: chr(int(o.group(1), 8)), left[4])
            inside = path == mp or path.startswith(mp.rstrip("/") + "/")
            if inside and len(mp) >= len(best):
                best, best_opts = mp, left[6:]
    if not best:
        raise InvalidArgument(f"Can't find mount point of {source}")
    return best, best_opts


# --- docker update ----------------------------------------------------------------------------

# (request field, what moby leaves alone): the fields moby's UpdateContainer copies when set
_UPDATABLE = (("BlkioWeight", 0), ("CpuShares", 0), ("NanoCpus", 0), ("CpuPeriod", 0), ("CpuQuota", 0),
              ("CpusetCpus", ""), ("CpusetMems", ""), ("Memory", 0), ("MemorySwap", 0), ("MemoryReservation", 0),
              ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0), ("PidsLimit", None))


def resources_update(host_config: JSON, resources: JSON, *, daemon: DaemonOptions,
                     cid: str = "") -> tuple[JSON, list[str]]:
    """`docker update`: validate the request (moby verifyContainerSettings with update=true), merge
    what it sets into `host_config` IN PLACE (moby UpdateContainer: zero means "unchanged"), and
    return (the OCI resources for the runtime's update, warnings). Only the fields the request sets
    are in the OCI resources, as moby's toContainerdResources builds them."""
    req = decode_host_config(resources)
    warnings: list[str] = []
    verify_resources(req, daemon.features, daemon.ncpu, warnings, update=True)
    if req["PidsLimit"] is not None and req["PidsLimit"] <= 0:
        req["PidsLimit"] = 0  # 0 and -1 both mean unlimited (moby's router)
    # the blkio device lists are not updated: moby's router drops them below API 1.55 (every client today)
    prefix = f"Cannot update container {cid}: " if cid else ""
    cur = host_config

    def conflict(msg: str) -> InvalidArgument:
        return InvalidArgument(prefix + msg)

    if req["NanoCpus"] > 0 and (cur.get("CpuPeriod") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if req["NanoCpus"] > 0 and (cur.get("CpuQuota") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if req["CpuPeriod"] > 0 and (cur.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if req["CpuQuota"] > 0 and (cur.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if req["Memory"] and req["Memory"] > (cur.get("MemorySwap") or 0) and req["MemorySwap"] == 0:
        raise conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap "
                       "at the same time")
    rp = req["RestartPolicy"]
    if rp["Name"]:
        validate_restart_policy(rp)
        if cur.get("AutoRemove") and rp["Name"] != "no":
            raise conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
    for key, unchanged in _UPDATABLE:
        if req[key] != unchanged:
            cur[key] = req[key]
    if rp["Name"]:
        cur["RestartPolicy"] = dict(rp)
    return _update_resources(req), warnings


def _update_resources(r: JSON) -> JSON:
    """moby toContainerdResources: the OCI resources an update sets (absent = unchanged)."""
    out: JSON = {}
    block: JSON = {}
    if r["BlkioWeight"]:
        block["weight"] = r["BlkioWeight"]
    if block:
        out["blockIO"] = block
    cpu: JSON = {k: v for k, v in (("cpus", r["CpusetCpus"]), ("mems", r["CpusetMems"])) if v}
    if r["CpuShares"]:
        cpu["shares"] = r["CpuShares"]
    period = quota = 0
    if r["NanoCpus"]:
        period = 100000
        quota = r["NanoCpus"] * period // 10**9
    quota = quota or r["CpuQuota"]
    period = period or r["CpuPeriod"]
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    if cpu:
        out["cpu"] = cpu
    memory = {k: r[f] for k, f in (("limit", "Memory"), ("reservation", "MemoryReservation")) if r[f]}
    if r["MemorySwap"] > 0:
        memory["swap"] = r["MemorySwap"]
    if memory:
        out["memory"] = memory
    if r["PidsLimit"] is not None:
        out["pids"] = {"limit": r["PidsLimit"] if r["PidsLimit"] > 0 else -1}
    return out
