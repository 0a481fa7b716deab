"""`run`/`create` flags and their translation into the create request, field for field as docker 28
builds it (so the daemon sees the same JSON from berth and from docker)."""

from __future__ import annotations

import os

from berth import units
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag, Values
from berth.cli.validate import (
    _check_mode,
    _convert_publish,
    _kv_file,
    _kv_map,
    _parse_device,
    _parse_restart,
    _parse_security_opts,
    _parse_volume,
    _throttle,
    _validate_mac,
    _weight_device,
    normalize_caps,
    parse_mem,
    parse_mem_swap,
    parse_mount,
    parse_port_range,
    parse_port_specs,
    parse_uint16,
    parse_ulimit,
    validate_attach,
    validate_env,
    validate_extra_host,
    validate_ip,
    validate_label,
    validate_link,
    validate_sysctl,
)

__all__ = ["build_create_body", "container_flags", "parse_mem", "parse_mem_swap", "parse_port_specs", "parse_uint16",
           "validate_env"]

# -- the flag table ----------------------------------------------------------------------------------

F = Flag


def container_flags() -> list[Flag]:
    """Docker's containerOptions flags (addFlags in cli/command/container/opts.go)."""
    return [
        F("attach", "a", LIST, help="Attach to STDIN, STDOUT or STDERR", conv=validate_attach),
        F("device-cgroup-rule", "", LIST, help="Add a rule to the cgroup allowed devices list"),
        F("device", "", LIST, help="Add a host device to the container"),
        F("gpus", "", STRING, api="1.40", help="GPU devices to add to the container ('all' to pass all GPUs)",
          type_name="gpu-request"),
        F("env", "e", LIST, help="Set environment variables", conv=validate_env),
        F("env-file", "", LIST, help="Read in a file of environment variables"),
        F("entrypoint", "", STRING, help="Overwrite the default ENTRYPOINT of the image"),
        F("group-add", "", LIST, help="Add additional groups to join"),
        F("hostname", "h", STRING, help="Container host name"),
        F("domainname", "", STRING, help="Container NIS domain name"),
        F("interactive", "i", BOOL, help="Keep STDIN open even if not attached"),
        F("label", "l", LIST, help="Set meta data on a container", conv=validate_label),
        F("label-file", "", LIST, help="Read in a line delimited file of labels"),
        F("read-only", "", BOOL, help="Mount the container's root filesystem as read only"),
        F("restart", "", STRING, default="no", help="Restart policy to apply when a container exits"),
        F("stop-signal", "", STRING, help="Signal to stop the container"),
        F("stop-timeout", "", INT, api="1.25", help="Timeout (in seconds) to stop a container"),
        F("sysctl", "", LIST, help="Sysctl options", conv=validate_sysctl, type_name="map"),
        F("tty", "t", BOOL, help="Allocate a pseudo-TTY"),
        F("ulimit", "", LIST, help="Ulimit options", conv=parse_ulimit, type_name="ulimit"),
        F("user", "u", STRING, help="Username or UID (format: <name|uid>[:<group|gid>])"),
        F("workdir", "w", STRING, help="Working directory inside the container"),
        F("rm", "", BOOL, help="Automatically remove the container and its associated anonymous volumes when it exits"),
        F("cap-add", "", LIST, help="Add Linux capabilities"),
        F("cap-drop", "", LIST, help="Drop Linux capabilities"),
        F("privileged", "", BOOL, help="Give extended privileges to this container"),
        F("security-opt", "", LIST, help="Security Options"),
        F("userns", "", STRING, help="User namespace to use"),
        F("cgroupns", "", STRING, api="1.41", help="Cgroup namespace to use (host|private)"),
        F("add-host", "", LIST, help="Add a custom host-to-IP mapping (host:ip)", conv=validate_extra_host),
        F("dns", "", LIST, help="Set custom DNS servers", conv=validate_ip),
        F("dns-opt", "", LIST, hidden=True),
        F("dns-option", "", LIST, help="Set DNS options"),
        F("dns-search", "", LIST, help="Set custom DNS search domains"),
        F("expose", "", LIST, help="Expose a port or a range of ports"),
        F("ip", "", STRING, help="IPv4 address (e.g., 172.30.100.104)"),
        F("ip6", "", STRING, help="IPv6 address (e.g., 2001:db8::33)"),
        F("link", "", LIST, help="Add link to another container", conv=validate_link),
        F("link-local-ip", "", LIST, help="Container IPv4/IPv6 link-local addresses"),
        F("mac-address", "", STRING, help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        F("publish", "p", LIST, help="Publish a container's port(s) to the host"),
        F("publish-all", "P", BOOL, help="Publish all exposed ports to random ports"),
        F("net", "", LIST, hidden=True, type_name="network"),
        F("network", "", LIST, help="Connect a container to a network", type_name="network"),
        F("net-alias", "", LIST, hidden=True),
        F("network-alias", "", LIST, help="Add network-scoped alias for the container"),
        F("log-driver", "", STRING, help="Logging driver for the container"),
        F("volume-driver", "", STRING, help="Optional volume driver for the container"),
        F("log-opt", "", LIST, help="Log driver options"),
        F("storage-opt", "", LIST, help="Storage driver options for the container"),
        F("tmpfs", "", LIST, help="Mount a tmpfs directory"),
        F("volumes-from", "", LIST, help="Mount volumes from the specified container(s)"),
        F("volume", "v", LIST, help="Bind mount a volume"),
        F("mount", "", LIST, help="Attach a filesystem mount to the container", conv=parse_mount, type_name="mount"),
        F("health-cmd", "", STRING, help="Command to run to check health"),
        F("health-interval", "", STRING, default=0, conv=units.parse_duration, type_name="duration",
          help="Time between running the check (ms|s|m|h) (default 0s)"),
        F("health-retries", "", INT, help="Consecutive failures needed to report unhealthy"),
        F("health-timeout", "", STRING, default=0, conv=units.parse_duration, type_name="duration",
          help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        F("health-start-period", "", STRING, api="1.29", default=0, conv=units.parse_duration, type_name="duration",
          help="Start period for the container to initialize before starting health-retries countdown "
               "(ms|s|m|h) (default 0s)"),
        F("health-start-interval", "", STRING, api="1.44", default=0, conv=units.parse_duration, type_name="duration",
          help="Time between running the check during the start period (ms|s|m|h) (default 0s)"),
        F("no-healthcheck", "", BOOL, help="Disable any container-specified HEALTHCHECK"),
        F("blkio-weight", "", STRING, default=0, conv=parse_uint16, type_name="uint16",
          help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
        F("blkio-weight-device", "", LIST, help="Block IO weight (relative device weight)"),
        F("cidfile", "", STRING, help="Write the container ID to the file"),
        F("cpuset-cpus", "", STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
        F("cpuset-mems", "", STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
        F("cpu-count", "", INT, hidden=True, ostype="windows"),
        F("cpu-percent", "", INT, hidden=True, ostype="windows"),
        F("cpu-period", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
        F("cpu-quota", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
        F("cpu-rt-period", "", INT, api="1.25", help="Limit CPU real-time period in microseconds"),
        F("cpu-rt-runtime", "", INT, api="1.25", help="Limit CPU real-time runtime in microseconds"),
        F("cpu-shares", "c", INT, help="CPU shares (relative weight)"),
        F("cpus", "", STRING, api="1.25", default=0, conv=units.parse_cpus, type_name="decimal", help="Number of CPUs"),
        F("device-read-bps", "", LIST, help="Limit read rate (bytes per second) from a device"),
        F("device-read-iops", "", LIST, help="Limit read rate (IO per second) from a device"),
        F("device-write-bps", "", LIST, help="Limit write rate (bytes per second) to a device"),
        F("device-write-iops", "", LIST, help="Limit write rate (IO per second) to a device"),
        F("kernel-memory", "", STRING, default=0, conv=parse_mem, type_name="bytes", help="Kernel memory limit"),
        F("memory", "m", STRING, default=0, conv=parse_mem, type_name="bytes", help="Memory limit"),
        F("memory-reservation", "", STRING, default=0, conv=parse_mem, type_name="bytes", help="Memory soft limit"),
        F("memory-swap", "", STRING, default=0, conv=parse_mem_swap, type_name="bytes",
          help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        F("memory-swappiness", "", INT, default=-1, help="Tune container memory swappiness (0 to 100)"),
        F("oom-kill-disable", "", BOOL, help="Disable OOM Killer"),
        F("oom-score-adj", "", INT, help="Tune host's OOM preferences (-1000 to 1000)"),
        F("pids-limit", "", INT, help="Tune container pids limit (set -1 for unlimited)"),
        F("cgroup-parent", "", STRING, help="Optional parent cgroup for the container"),
        F("ipc", "", STRING, help="IPC mode to use"),
        F("isolation", "", STRING, help="Container isolation technology"),
        F("pid", "", STRING, help="PID namespace to use"),
        F("shm-size", "", STRING, default=0, conv=parse_mem, type_name="bytes", help="Size of /dev/shm"),
        F("uts", "", STRING, help="UTS namespace to use"),
        F("runtime", "", STRING, help="Runtime to use for this container"),
        F("init", "", BOOL, api="1.25",
          help="Run an init inside the container that forwards signals and reaps processes"),
        F("annotation", "", LIST, api="1.43",
          help="Add an annotation to the container (passed through to the OCI runtime)",
          type_name="map"),
        F("platform", "", STRING, api="1.32", default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""),
          help="Set platform if server is multi-platform capable"),
        F("pull", "", STRING, default="missing", help='Pull image before running ("always", "missing", "never")'),
        F("quiet", "q", BOOL, help="Suppress the pull output"),
        F("name", "", STRING, help="Assign a name to the container"),
        F("disable-content-trust", "", BOOL, default=True, help="Skip image verification (default true)"),
        F("use-api-socket", "", BOOL, help="Bind mount Docker API socket and required auth"),
    ]


# -- translation -------------------------------------------------------------------------------------


def _endpoint(aliases: list[str] | None = None, links: list[str] | None = None, ipam: dict[str, object] | None = None,
              mac: str = "", driver_opts: dict[str, str] | None = None) -> dict[str, object]:
    return {"IPAMConfig": ipam, "Links": links, "Aliases": aliases, "MacAddress": mac, "DriverOpts": driver_opts,
            "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}


_BUILTIN_NETWORKS = ("default", "bridge", "host", "none")


def _user_defined(mode: str) -> bool:
    return mode not in _BUILTIN_NETWORKS and not mode.startswith("container:")


def _parse_network_opt(text: str) -> dict[str, object]:
    """`--network name` or the advanced `--network name=n,alias=a,ip=...` form."""
    if "=" not in text:
        return {"target": text}
    out: dict[str, object] = {"aliases": [], "link-local-ip": [], "driver-opt": {}}
    for field in text.split(","):
        k, _, v = field.partition("=")
        k = k.strip().lower()
        if k == "name":
            out["target"] = v
        elif k == "alias":
            out["aliases"].append(v)  # type: ignore[attr-defined]
        elif k == "ip":
            out["ip"] = v
        elif k == "ip6":
            out["ip6"] = v
        elif k == "mac-address":
            out["mac"] = v
        elif k == "link-local-ip":
            out["link-local-ip"].append(v)  # type: ignore[attr-defined]
        elif k == "driver-opt":
            dk, _, dv = v.partition("=")
            out["driver-opt"][dk] = dv  # type: ignore[index]
        else:
            raise ValueError(f"invalid field key {k}")
    if not out.get("target"):
        raise ValueError("network name/id is not specified")
    return out


def build_create_body(o: Values, image: str, args: list[str], server_os: str = "linux",
                      tty_size: tuple[int, int] = (0, 0)) -> dict[str, object]:
    """Docker's `parse()` + ContainerCreate: the JSON body of `POST /containers/create`.
    Raises ValueError with docker's message on invalid input."""
    attach: list[str] = o.attach or []
    attach_stdin = "stdin" in attach or bool(o.interactive)
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach

    mac: str = o.mac_address
    if mac:
        _validate_mac(mac)
    swappiness: int = o.memory_swappiness
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise ValueError(f"invalid value: {swappiness}. Valid memory swappiness range is 0-100")

    volumes: dict[str, dict[str, object]] = {}
    binds: list[str] = []
    for spec in o.volume or []:
        source, _target = _parse_volume(spec)
        if source:
            if source[0] in "./~" and source.startswith("."):
                host_part, _, target_path = spec.partition(":")
                spec = os.path.abspath(host_part) + ":" + target_path
            binds.append(spec)
        else:
            volumes[spec] = {}

    tmpfs: dict[str, str] = {}
    for t in o.tmpfs or []:
        k, _, v = t.partition(":")
        tmpfs[k] = v

    entrypoint: list[str] | None = None
    if o.entrypoint:
        entrypoint = [o.entrypoint]
    elif o.changed("entrypoint"):
        entrypoint = [""]

    exposed, port_bindings = parse_port_specs(_convert_publish(o.publish or []))
    for e in o.expose or []:
        if ":" in e:
            raise ValueError(f"invalid port format for --expose: {e}")
        port, _, proto = e.partition("/")
        try:
            start, end = parse_port_range(port)
        except ValueError as err:
            raise ValueError(f"invalid range format for --expose: {e}, error: {err}") from None
        for p in range(start, end + 1):
            exposed.setdefault(f"{p}/{proto or 'tcp'}", {})
    exposed = dict(sorted(exposed.items()))

    devices = []
    for d in o.device or []:
        devices.append(_parse_device(d, server_os))

    env: list[str] = []
    for f in o.env_file or []:
        env += _kv_file(f, True)
    env += o.env or []
    labels: list[str] = []
    for f in o.label_file or []:
        labels += _kv_file(f, False)
    labels += o.label or []

    _check_mode(o.pid, "pid", "PID")
    _check_mode(o.uts, "uts", "UTS", ("host", ""))
    if o.userns not in ("host", ""):
        raise ValueError("--userns: invalid USER mode")
    if o.cgroupns not in ("host", "private", ""):
        raise ValueError("--cgroupns: invalid CGROUP mode")

    restart = _parse_restart(o.restart)
    log_opts = _kv_map(o.log_opt or [])
    if o.log_driver == "none" and o.log_opt:
        raise ValueError(f"invalid logging opts for driver {o.log_driver}")
    security = _parse_security_opts(list(o.security_opt or []))
    masked: list[str] | None = None
    readonly_paths: list[str] | None = None
    if "systempaths=unconfined" in security:
        security = [s for s in security if s != "systempaths=unconfined"]
        masked, readonly_paths = [], []
    storage: dict[str, str] = {}
    for s in o.storage_opt or []:
        k, eq, v = s.partition("=")
        if not eq:
            raise ValueError("invalid storage option")
        storage[k] = v

    health: dict[str, object] | None = None
    have_health = bool(o.health_cmd or o.health_interval or o.health_timeout or o.health_start_period
                       or o.health_retries or o.health_start_interval)
    if o.no_healthcheck:
        if have_health:
            raise ValueError("--no-healthcheck conflicts with --health-* options")
        health = {"Test": ["NONE"]}
    elif have_health:
        for name in ("interval", "timeout"):
            if o.get(f"health_{name}") < 0:
                raise ValueError(f"--health-{name} cannot be negative")
        if o.health_retries < 0:
            raise ValueError("--health-retries cannot be negative")
        if o.health_start_period < 0:
            raise ValueError("--health-start-period cannot be negative")
        if o.health_start_interval < 0:
            raise ValueError("--health-start-interval cannot be negative")
        health = {}
        if o.health_cmd:
            health["Test"] = ["CMD-SHELL", o.health_cmd]
        for key, attr in (("Interval", "health_interval"), ("Timeout", "health_timeout"),
                          ("StartPeriod", "health_start_period"), ("StartInterval", "health_start_interval"),
                          ("Retries", "health_retries")):
            if o.get(attr):
                health[key] = o.get(attr)

    ulimits: dict[str, object] = {}
    for u in o.ulimit or []:
        ulimits[u["Name"]] = u
    ulimit_list = [ulimits[k] for k in sorted(ulimits)]

    network_modes = [_parse_network_opt(n) for n in [*(o.net or []), *(o.network or [])]]
    network_mode = network_modes[0]["target"] if network_modes else "default"
    aliases = [*(o.net_alias or []), *(o.network_alias or [])]
    links: list[str] = o.link or []
    endpoints = _network_endpoints(network_modes, aliases, links, o)

    config: dict[str, object] = {
        "Hostname": o.hostname, "Domainname": o.domainname, "User": o.user,
        "AttachStdin": attach_stdin, "AttachStdout": attach_stdout, "AttachStderr": attach_stderr,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({"Tty": o.tty, "OpenStdin": o.interactive,
                   "StdinOnce": bool(o.interactive and attach_stdin),
                   "Env": env or None, "Cmd": args or None})
    if health is not None:
        config["Healthcheck"] = health
    config.update({"Image": image, "Volumes": dict(sorted(volumes.items())), "WorkingDir": o.workdir,
                   "Entrypoint": entrypoint})
    config.update({"OnBuild": None, "Labels": _kv_map(labels)})
    if o.stop_signal:
        config["StopSignal"] = o.stop_signal
    if o.changed("stop-timeout"):
        config["StopTimeout"] = o.stop_timeout

    host: dict[str, object] = {
        "Binds": binds or None, "ContainerIDFile": o.cidfile,
        "LogConfig": {"Type": o.log_driver, "Config": log_opts},
        "NetworkMode": network_mode, "PortBindings": port_bindings, "RestartPolicy": restart,
        "AutoRemove": o.rm, "VolumeDriver": o.volume_driver, "VolumesFrom": o.volumes_from or None,
        "ConsoleSize": [tty_size[0], tty_size[1]],
    }
    annotations = _kv_map(o.annotation or [])
    if annotations:
        host["Annotations"] = annotations
    host.update({
        "CapAdd": normalize_caps(o.cap_add or []), "CapDrop": normalize_caps(o.cap_drop or []),
        "CgroupnsMode": o.cgroupns, "Dns": o.dns or [],
        "DnsOptions": [*(o.dns_opt or []), *(o.dns_option or [])], "DnsSearch": o.dns_search or [],
        "ExtraHosts": o.add_host or None, "GroupAdd": o.group_add or None, "IpcMode": o.ipc, "Cgroup": "",
        "Links": links or None, "OomScoreAdj": o.oom_score_adj, "PidMode": o.pid, "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all, "ReadonlyRootfs": o.read_only, "SecurityOpt": security or None,
    })
    if storage:
        host["StorageOpt"] = dict(sorted(storage.items()))
    if tmpfs:
        host["Tmpfs"] = dict(sorted(tmpfs.items()))
    host.update({"UTSMode": o.uts, "UsernsMode": o.userns, "ShmSize": o.shm_size})
    sysctls = _kv_map(o.sysctl or [])
    if sysctls:
        host["Sysctls"] = sysctls
    if o.runtime:
        host["Runtime"] = o.runtime
    host.update({
        "Isolation": o.isolation, "CpuShares": o.cpu_shares, "Memory": o.memory, "NanoCpus": o.cpus,
        "CgroupParent": o.cgroup_parent, "BlkioWeight": o.blkio_weight,
        "BlkioWeightDevice": [_weight_device(d) for d in o.blkio_weight_device or []],
        "BlkioDeviceReadBps": [_throttle(d, True) for d in o.device_read_bps or []],
        "BlkioDeviceWriteBps": [_throttle(d, True) for d in o.device_write_bps or []],
        "BlkioDeviceReadIOps": [_throttle(d, False) for d in o.device_read_iops or []],
        "BlkioDeviceWriteIOps": [_throttle(d, False) for d in o.device_write_iops or []],
        "CpuPeriod": o.cpu_period, "CpuQuota": o.cpu_quota, "CpuRealtimePeriod": o.cpu_rt_period,
        "CpuRealtimeRuntime": o.cpu_rt_runtime, "CpusetCpus": o.cpuset_cpus, "CpusetMems": o.cpuset_mems,
        "Devices": devices, "DeviceCgroupRules": o.device_cgroup_rule or None, "DeviceRequests": None,
    })
    if o.kernel_memory:
        host["KernelMemory"] = o.kernel_memory
    host.update({
        "MemoryReservation": o.memory_reservation, "MemorySwap": o.memory_swap, "MemorySwappiness": swappiness,
        "OomKillDisable": o.oom_kill_disable, "PidsLimit": o.pids_limit, "Ulimits": ulimit_list,
        "CpuCount": o.cpu_count, "CpuPercent": o.cpu_percent, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    })
    if o.mount:
        host["Mounts"] = o.mount
    host.update({"MaskedPaths": masked, "ReadonlyPaths": readonly_paths})
    if o.changed("init"):
        host["Init"] = o.init
    if o.rm and restart["Name"] not in ("", "no"):
        raise ValueError("conflicting options: cannot specify both --restart and --rm")
    return {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}


def _network_endpoints(modes: list[dict[str, object]], aliases: list[str], links: list[str],
                       o: Values) -> dict[str, object]:
    endpoints: dict[str, object] = {}
    if not modes:
        modes_eff: list[dict[str, object]] = [{"target": "default", "implicit": True}]
    else:
        modes_eff = modes
    has_user = has_builtin = False
    for i, n in enumerate(modes_eff):
        target = str(n["target"])
        if not n.get("implicit"):
            if _user_defined(target):
                has_user = True
            else:
                has_builtin = True
        ep_aliases: list[str] = list(n.get("aliases") or [])  # type: ignore[call-overload]
        ep_links: list[str] = []
        ipv4 = str(n.get("ip") or "")
        ipv6 = str(n.get("ip6") or "")
        ep_mac = str(n.get("mac") or "")
        lli: list[str] = list(n.get("link-local-ip") or [])  # type: ignore[call-overload]
        if i == 0:
            if ep_aliases and aliases:
                raise ValueError("conflicting options: cannot specify both --network-alias and per-network alias")
            if ipv4 and o.ip:
                raise ValueError("conflicting options: cannot specify both --ip and per-network IPv4 address")
            if ipv6 and o.ip6:
                raise ValueError("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
            if ep_mac and o.mac_address:
                raise ValueError("conflicting options: cannot specify both --mac-address and per-network MAC address")
            if lli and o.link_local_ip:
                raise ValueError("conflicting options: cannot specify both --link-local-ip and per-network "
                                 "link-local IP addresses")
            if aliases:
                ep_aliases = list(aliases)
            if _user_defined(target) and links:
                ep_links = list(links)
            ipv4 = ipv4 or str(o.ip or "")
            ipv6 = ipv6 or str(o.ip6 or "")
            ep_mac = ep_mac or str(o.mac_address or "")
            lli = lli or list(o.link_local_ip or [])
        if not target.strip():
            raise ValueError("no name set for network")
        if not _user_defined(target):
            if ep_aliases:
                raise ValueError("network-scoped aliases are only supported for user-defined networks")
            if ep_links:
                raise ValueError("links are only supported for user-defined networks")
        ipam = None
        if ipv4 or ipv6 or lli:
            # EndpointIPAMConfig's fields are all omitempty
            ipam = {k: v for k, v in (("IPv4Address", ipv4), ("IPv6Address", ipv6), ("LinkLocalIPs", lli)) if v}
        if ep_mac:
            _validate_mac(ep_mac)
        driver_opts = n.get("driver-opt") or None
        ep = _endpoint(ep_aliases or None, ep_links or None, ipam, ep_mac, driver_opts)  # type: ignore[arg-type]
        if target in endpoints:
            raise ValueError(f'network "{target}" is specified multiple times')
        empty = not (ep_aliases or ep_links or ipam or ep_mac or driver_opts)
        if not n.get("implicit") and i == 0 and len(modes_eff) == 1 and empty:
            continue
        endpoints[target] = ep
    if has_user and has_builtin:
        raise ValueError("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return dict(sorted(endpoints.items()))
