"""Validators and parsers for `run`/`create` option values, each with docker's error wording
(pflag/opts/go-connections/compose's volume spec). They return normalized values or raise ValueError."""

from __future__ import annotations

import os

from berth import units
from berth.cli.flags import go_parse_int

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
