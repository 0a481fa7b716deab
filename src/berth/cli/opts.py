"""`run`/`create` flags and their translation into the create request, field for field as docker 28
builds it (so the daemon sees the same JSON from berth and from docker)."""

from __future__ import annotations

import os

from berth.cli import units
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag, Values, go_parse_int

# -- validators (return the normalized value or raise ValueError with docker's message) --------------


def validate_env(val: str) -> str:
    k, eq, _ = val.partition("=")
    if not k:
        raise ValueError("invalid environment variable: " + val)
    if eq:
        return val
    if k in os.environ:
        return f"{k}={os.environ[k]}"
    return val


def validate_label(val: str) -> str:
    key = val.partition("=")[0].lstrip(" \t\n\v\f\r")
    if not key:
        raise ValueError(f"invalid label '{val}': empty name")
    if any(c in key for c in " \t\n\v\f\r"):
        raise ValueError(f"label '{key}' contains whitespaces")
    return val


def validate_attach(val: str) -> str:
    s = val.lower()
    if s in ("stdin", "stdout", "stderr"):
        return s
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


_SYSCTL_NAMES = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                 "kernel.shmmni", "kernel.shm_rmid_forced"}


def validate_sysctl(val: str) -> str:
    k, eq, _ = val.partition("=")
    if eq and k and (k in _SYSCTL_NAMES or k.startswith(("net.", "fs.mqueue."))):
        return val
    raise ValueError(f"sysctl '{val}' is not allowed")


def validate_ip(val: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(val.strip()))
    except ValueError:
        raise ValueError(f"IP address is not correctly formatted: {val}") from None


def validate_extra_host(val: str) -> str:
    k, sep, v = val.partition("=")
    if not sep:
        k, sep, v = val.partition(":")
    if not sep or not k or ":" in k:
        raise ValueError(f'bad format for add-host: "{val}"')
    if v != "host-gateway":
        ip = v[1:-1] if len(v) > 2 and v[0] == "[" and v[-1] == "]" else v
        try:
            validate_ip(ip)
        except ValueError:
            raise ValueError(f'invalid IP address in add-host: "{ip}"') from None
        v = ip
    return f"{k}:{v}"


def validate_link(val: str) -> str:
    if not val.partition(":")[0]:
        raise ValueError("empty string specified for links")
    return val


_ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack"}


def parse_ulimit(val: str) -> dict[str, object]:
    name, eq, limits = val.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {val}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")

    def num(s: str) -> int:
        try:
            if not s or s.strip() != s or "_" in s:
                raise ValueError
            return int(s, 10)
        except ValueError:
            raise ValueError(f'strconv.ParseInt: parsing "{s}": invalid syntax') from None

    soft = num(parts[0])
    hard = num(parts[1]) if len(parts) == 2 else soft
    if hard != -1:
        if soft == -1:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), "
                             f"hard: {hard}")
        if soft > hard:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def parse_mem(val: str) -> int:
    return units.ram_in_bytes(val)


def parse_mem_swap(val: str) -> int:
    return -1 if val == "-1" else units.ram_in_bytes(val)


def parse_uint16(val: str) -> int:
    n = go_parse_int(val)
    if not 0 <= n <= 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{val}": value out of range')
    return n


def parse_mount(value: str) -> dict[str, object]:
    """`--mount type=bind,src=/a,dst=/b,ro` into the API's Mount, with docker's errors."""
    import csv

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as e:
        raise ValueError(str(e)) from None
    m: dict[str, object] = {"Type": "volume"}
    bind: dict[str, object] = {}
    vol: dict[str, object] = {}
    tmpfs: dict[str, object] = {}
    image: dict[str, object] = {}
    has_bind = has_vol = has_tmpfs = has_image = False

    def volume_opts() -> dict[str, object]:
        nonlocal has_vol
        has_vol = True
        vol.setdefault("Labels", {})
        vol.setdefault("DriverConfig", {})
        return vol

    def pbool(key: str, v: str) -> bool:
        from berth.cli.flags import parse_bool

        try:
            return parse_bool(v)
        except ValueError:
            raise ValueError(f"invalid value for {key}: {v}") from None

    for field in fields:
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_opts()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                has_bind = True
                bind["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            m["Type"] = val.lower()
        elif key in ("source", "src"):
            m["Source"] = os.path.abspath(val) if not val.startswith("/") and val.startswith(".") else val
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = pbool(key, val)
        elif key == "consistency":
            m["Consistency"] = val.lower()
        elif key == "bind-propagation":
            has_bind = True
            bind["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            has_bind = True
            bind["NonRecursive"] = pbool(key, val)
        elif key == "bind-recursive":
            has_bind = True
            if val == "disabled":
                bind["NonRecursive"] = True
            elif val == "writable":
                bind["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                bind["ReadOnlyForceRecursive"] = True
            elif val != "enabled":
                raise ValueError(f'invalid value for {key}: {val} (must be "enabled", "disabled", "writable", '
                                 f'or "readonly")')
        elif key == "volume-subpath":
            volume_opts()["Subpath"] = val
        elif key == "volume-nocopy":
            try:
                volume_opts()["NoCopy"] = pbool(key, val)
            except ValueError:
                raise ValueError(f"invalid value for volume-nocopy: {val}") from None
        elif key == "volume-label":
            k, _, v = val.partition("=")
            if k:
                volume_opts()["Labels"][k] = v  # type: ignore[index]
        elif key == "volume-driver":
            volume_opts()["DriverConfig"]["Name"] = val  # type: ignore[index]
        elif key == "volume-opt":
            opts = volume_opts()["DriverConfig"].setdefault("Options", {})  # type: ignore[attr-defined]
            k, _, v = val.partition("=")
            if k:
                opts[k] = v
        elif key == "image-subpath":
            has_image = True
            image["Subpath"] = val
        elif key == "tmpfs-size":
            has_tmpfs = True
            try:
                tmpfs["SizeBytes"] = units.ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            has_tmpfs = True
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not m["Type"]:
        raise ValueError("type is required")
    if not m.get("Target"):
        raise ValueError("target is required")
    for present, kind, prefix in ((has_vol, "volume", "volume"), (has_image, "image", "image"),
                                  (has_bind, "bind", "bind"), (has_tmpfs, "tmpfs", "tmpfs")):
        if present and m["Type"] != kind:
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{m['Type']}'")
    if bind.get("ReadOnlyNonRecursive") and not m.get("ReadOnly"):
        raise ValueError("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
    if bind.get("ReadOnlyForceRecursive"):
        if not m.get("ReadOnly"):
            raise ValueError("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
        if bind.get("Propagation") != "rprivate":
            raise ValueError("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be "
                             "specified in conjunction")
    # key order as Go's struct (omitempty fields dropped when zero)
    out: dict[str, object] = {"Type": m["Type"]}
    for k in ("Source", "Target", "ReadOnly", "Consistency"):
        if m.get(k):
            out[k] = m[k]
    if has_bind:
        out["BindOptions"] = {k: bind[k] for k in ("Propagation", "NonRecursive", "CreateMountpoint",
                                                   "ReadOnlyNonRecursive", "ReadOnlyForceRecursive") if bind.get(k)}
    if has_vol:
        v2: dict[str, object] = {k: vol[k] for k in ("NoCopy", "Labels", "Subpath") if vol.get(k)}
        dc: dict[str, object] = vol.get("DriverConfig") or {}  # type: ignore[assignment]
        v2["DriverConfig"] = {k: dc[k] for k in ("Name", "Options") if dc.get(k)}
        out["VolumeOptions"] = v2
    if has_image:
        out["ImageOptions"] = {k: v for k, v in image.items() if v}
    if has_tmpfs:
        out["TmpfsOptions"] = {k: tmpfs[k] for k in ("SizeBytes", "Mode") if tmpfs.get(k)}
    return out


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


def _kv_file(path: str, lookup: bool) -> list[str]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    out: list[str] = []
    for n, bline in enumerate(raw.split(b"\n"), 1):
        bline = bline.rstrip(b"\r")
        try:
            text = bline.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"invalid env file ({path}): invalid utf8 bytes at line {n}: "
                             f"[{' '.join(str(b) for b in bline)}]") from None
        if n == 1:
            text = text.removeprefix("\ufeff")
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key:
            raise ValueError(f"invalid env file ({path}): no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise ValueError(f"invalid env file ({path}): variable '{key}' contains whitespaces")
        if eq:
            out.append(line)
        elif lookup and line in os.environ:
            out.append(f"{key}={os.environ[line]}")
    return out


def _kv_map(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return dict(sorted(out.items()))


def parse_port_range(text: str) -> tuple[int, int]:
    def u16(s: str) -> int:
        if not s.isdigit():
            raise ValueError(f'strconv.ParseUint: parsing "{s}": invalid syntax')
        n = int(s)
        if n > 0xFFFF:
            raise ValueError(f'strconv.ParseUint: parsing "{s}": value out of range')
        return n

    if not text:
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        p = u16(text)
        return p, p
    a, b = text.split("-")[:2]
    start, end = u16(a), u16(b)
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def parse_port_specs(specs: list[str]) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, str]]]]:
    """go-connections nat.ParsePortSpecs: ("80/tcp" -> {}), ("80/tcp" -> [{"HostIp","HostPort"}])."""
    exposed: dict[str, dict[str, object]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for raw in specs:
        parts = raw.split(":")
        if len(parts) == 1:
            ip, host_port, cport = "", "", parts[0]
        elif len(parts) == 2:
            ip, host_port, cport = "", parts[0], parts[1]
        else:
            ip, host_port, cport = ":".join(parts[:-2]), parts[-2], parts[-1]
        cport, _, proto = cport.partition("/")
        proto = proto or "tcp"
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        if ip:
            try:
                validate_ip(ip)
            except ValueError:
                raise ValueError(f"invalid IP address: {ip}") from None
        if not cport:
            raise ValueError(f"no port specified: {raw}<empty>")
        try:
            start, end = parse_port_range(cport)
        except ValueError:
            raise ValueError(f"invalid containerPort: {cport}") from None
        hstart = hend = 0
        if host_port:
            try:
                hstart, hend = parse_port_range(host_port)
            except ValueError:
                raise ValueError(f"invalid hostPort: {host_port}") from None
            if end - start != hend - hstart and end != start:
                raise ValueError(f"invalid ranges specified for container and host Ports: {cport} and {host_port}")
        if proto.lower() not in ("tcp", "udp", "sctp"):
            raise ValueError(f"invalid proto: {proto}")
        for i in range(end - start + 1):
            hp = str(hstart + i) if host_port else ""
            if start == end and hstart != hend:
                hp = f"{hp}-{hend}"
            key = f"{start + i}/{proto.lower()}"
            exposed.setdefault(key, {})
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return dict(sorted(exposed.items())), dict(sorted(bindings.items()))


def _convert_publish(values: list[str]) -> list[str]:
    out = []
    for p in values:
        if "=" in p:
            params = {"protocol": "tcp"}
            for param in p.split(","):
                k, eq, v = param.partition("=")
                if not eq or not k:
                    raise ValueError(f"invalid publish opts format (should be name=value but got '{param}')")
                params[k] = v
            out.append(f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}")
        else:
            out.append(p)
    return out


def _parse_volume(spec: str) -> tuple[str, str]:
    """(source, target) of a `-v` spec as compose's loader splits it; errors in its wording."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return "", spec
    source = target = ""
    have_mode = False
    fields = spec.split(":")
    for i, part in enumerate(fields):
        last = i == len(fields) - 1
        if not part:
            raise ValueError(f"invalid spec: {spec}: empty section between colons")
        if not source and last and not target:
            target = part
        elif not source:
            source = part
        elif not target:
            target = part
        elif not last:
            raise ValueError(f"invalid spec: {spec}: too many colons")
        else:
            have_mode = True
    del have_mode
    return source, target


def normalize_caps(caps: list[str]) -> list[str] | None:
    seen: list[str] = []
    for c in caps:
        c = c.upper()
        if c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c not in seen:
            seen.append(c)
    return sorted(seen) if seen else None


def _check_mode(value: str, flag: str, what: str, allowed: tuple[str, ...] = ("host", "")) -> None:
    kind, _, rest = value.partition(":")
    if value in allowed or (kind == "container" and rest):
        return
    raise ValueError(f"--{flag}: invalid {what} mode")


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


def _validate_mac(mac: str) -> None:
    parts = mac.split(":")
    if len(parts) not in (6, 8, 20) or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                                for p in parts):
        raise ValueError(f"{mac} is not a valid mac address")


def _parse_restart(policy: str) -> dict[str, object]:
    if not policy:
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count = policy.partition(":")
    if colon and not name:
        raise ValueError("invalid restart policy format: no policy provided before colon")
    n = 0
    if count:
        try:
            n = int(count)
        except ValueError:
            raise ValueError("invalid restart policy format: maximum retry count must be an integer") from None
    return {"Name": name, "MaximumRetryCount": n}


def _parse_security_opts(opts: list[str]) -> list[str]:
    for i, opt in enumerate(opts):
        k, sep, v = opt.partition("=")
        if not sep and k != "no-new-privileges":
            k, sep, v = opt.partition(":")
        if (not sep or not v) and k != "no-new-privileges":
            raise ValueError(f'Invalid --security-opt: "{opt}"')
        if k == "seccomp" and v not in ("builtin", "unconfined"):
            import json

            try:
                with open(v, "rb") as f:
                    data = json.loads(f.read())
            except OSError as e:
                raise ValueError(f"opening seccomp profile ({v}) failed: open {v}: "
                                 f"{(e.strerror or '').lower()}") from None
            except ValueError as e:
                raise ValueError(f"compacting json for seccomp profile ({v}) failed: {e}") from None
            opts[i] = "seccomp=" + json.dumps(data, separators=(",", ":"))
    return opts


def _parse_device(device: str, server_os: str) -> dict[str, str]:
    if server_os == "windows":
        return {"PathOnHost": device, "PathInContainer": "", "CgroupPermissions": ""}

    def valid_mode(m: str) -> bool:
        return bool(m) and all(c in "rwm" for c in m) and len(set(m)) == len(m)

    if device.count(":") > 2 or not device.split(":")[0]:
        raise ValueError(f"bad format for path: {device}")
    arr = device.split(":")
    perms, dst = "rwm", ""
    if len(arr) == 3:
        if not valid_mode(arr[2]):
            raise ValueError(f"bad mode specified: {arr[2]}")
        perms, dst = arr[2], arr[1]
    elif len(arr) == 2:
        if valid_mode(arr[1]):
            perms = arr[1]
        else:
            dst = arr[1]
    src = arr[0]
    container_path = dst or src
    if not container_path.startswith("/"):
        raise ValueError(f"{container_path} is not an absolute path")
    return {"PathOnHost": src, "PathInContainer": os.path.normpath(dst or src), "CgroupPermissions": perms}


def _weight_device(val: str) -> dict[str, object]:
    path, sep, w = val.partition(":")
    if not sep or not path.startswith("/dev/"):
        raise ValueError(f"bad format: {val}")
    try:
        weight = int(w)
    except ValueError:
        raise ValueError(f"invalid weight for device: {val}") from None
    if weight and not 10 <= weight <= 1000:
        raise ValueError(f"invalid weight for device: {val}")
    return {"Path": path, "Weight": weight}


def _throttle(val: str, bps: bool) -> dict[str, object]:
    path, sep, rate = val.partition(":")
    if not sep or not path.startswith("/dev/"):
        raise ValueError(f"bad format: {val}")
    try:
        n = units.ram_in_bytes(rate) if bps else int(rate)
    except ValueError:
        raise ValueError(f"invalid rate for device: {val}. The correct format is <device-path>:<number>"
                         f"{'[<unit>]' if bps else ''}. Number must be a positive integer. "
                         f"Unit is optional and can be kb, mb, or gb") from None
    return {"Path": path, "Rate": n}


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
