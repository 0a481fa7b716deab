"""Go's view of JSON values, for templates: how fmt prints them, what is "true", and the typed zero
values (nil slice `[]`, nil map `map[]`, nil pointer `<nil>`, structs `{a b}`) that docker's typed
inspect output shows where the raw JSON has `null` or leaves a field out."""

from __future__ import annotations


class GoStruct(dict):
    """A JSON object that is a Go struct: prints as `{v1 v2 ...}` in field (= JSON) order."""

    __slots__ = ("go_names", "pointer", "type_name")

    def __init__(self, *args: object, pointer: bool = False, go_names: dict[str, str] | None = None,
                 type_name: str = "", **kw: object) -> None:
        super().__init__(*args, **kw)
        self.pointer = pointer
        # Go field name -> JSON key where they differ ("APIVersion" -> "ApiVersion"); templates see Go names
        self.go_names = go_names
        self.type_name = type_name

    def lookup_key(self, name: str) -> str | None:
        """The JSON key behind a template field name, or None if the Go type has no such field."""
        if self.go_names is None:
            return name if name in self else None
        if name in self.go_names:
            return self.go_names[name]
        if name in self and name not in self.go_names.values():
            return name
        return None


class _Nil:
    """A typed nil: `kind` is "slice", "map" or "ptr"."""

    __slots__ = ("absent", "kind")

    def __init__(self, kind: str, absent: bool = False) -> None:
        self.kind = kind
        self.absent = absent  # the daemon's JSON left the field out (raw lookup would fail)

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self):
        return iter(())

    def __repr__(self) -> str:
        return f"<nil {self.kind}>"


NIL_SLICE = _Nil("slice")
NIL_MAP = _Nil("map")
NIL_PTR = _Nil("ptr")
ABSENT_SLICE = _Nil("slice", absent=True)
ABSENT_MAP = _Nil("map", absent=True)
ABSENT_PTR = _Nil("ptr", absent=True)


def is_nil(v: object) -> bool:
    return v is None or isinstance(v, _Nil)


def format_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent when exp < -4 or >= 21."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    r = repr(f)
    neg = r.startswith("-")
    r = r.lstrip("-")
    if "e" in r:
        mant, exp_s = r.split("e")
        exp = int(exp_s)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = (ip + fp).lstrip("0")
    # decimal point position relative to the digits
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    dp = len(ip) + exp - lead_zeros
    digits = digits.rstrip("0") or "0"
    e = dp - 1
    if e < -4 or e >= 21:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        s = f"{m}e{'-' if e < 0 else '+'}{abs(e):02d}"
    elif dp <= 0:
        s = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        s = digits + "0" * (dp - len(digits))
    else:
        s = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + s


def go_print(v: object, depth: int = 0) -> str:
    """fmt.Sprint of a value as text/template prints it (top level: pointers dereferenced)."""
    if v is None:
        return "<no value>" if depth == 0 else "<nil>"
    if isinstance(v, _Nil):
        return {"slice": "[]", "map": "map[]"}.get(v.kind, "<nil>")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, GoStruct):
        inner = " ".join(go_print(x, depth + 1) for x in v.values())
        return ("&{" if v.pointer and depth > 0 else "{") + inner + "}"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{go_print(k, depth + 1)}:{go_print(x, depth + 1)}" for k, x in items) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_print(x, depth + 1) for x in v) + "]"
    if callable(getattr(v, "go_string", None)):
        return str(v.go_string())  # type: ignore[attr-defined]
    return str(v)


def _sort_key(k: object) -> tuple[int, object]:
    if isinstance(k, (int, float)) and not isinstance(k, bool):
        return (0, k)
    return (1, str(k))


def truth(v: object) -> bool:
    """text/template's truth: zero values (false, 0, "", nil, empty slice/map) are false; structs true."""
    if v is None or isinstance(v, _Nil):
        return False
    if isinstance(v, GoStruct):
        return True
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def to_json_value(v: object) -> object:
    """For `{{json .}}`: typed nils marshal as null."""
    if isinstance(v, _Nil):
        return None
    if isinstance(v, dict):
        # fields the daemon's JSON left out (omitempty) stay out
        return {k: to_json_value(x) for k, x in v.items() if not (isinstance(x, _Nil) and x.absent)}
    if isinstance(v, (list, tuple)):
        return [to_json_value(x) for x in v]
    return v


# -- typed views of inspect objects ------------------------------------------------------------------
# Path -> kind for the fields of docker's container inspect type that are pointers, slices, maps or
# structs. A "*" segment matches any map key; "[]" any list element.

_CONTAINER_SCHEMA = {
    "": "struct", "State": "pstruct", "State.Health": "pstruct", "State.Health.Log": "slice",
    "State.Health.Log[]": "pstruct", "Args": "slice", "ExecIDs": "slice",
    "Config": "pstruct", "Config.ExposedPorts": "map", "Config.Env": "slice", "Config.Cmd": "slice",
    "Config.Healthcheck": "pstruct", "Config.Healthcheck.Test": "slice", "Config.Volumes": "map",
    "Config.Entrypoint": "slice", "Config.OnBuild": "slice", "Config.Labels": "map", "Config.StopTimeout": "ptr",
    "Config.Shell": "slice",
    "HostConfig": "pstruct", "HostConfig.Binds": "slice", "HostConfig.LogConfig": "struct",
    "HostConfig.LogConfig.Config": "map", "HostConfig.PortBindings": "map", "HostConfig.PortBindings.*": "slice",
    "HostConfig.PortBindings.*[]": "struct", "HostConfig.RestartPolicy": "struct", "HostConfig.VolumesFrom": "slice",
    "HostConfig.ConsoleSize": "slice", "HostConfig.Annotations": "map", "HostConfig.CapAdd": "slice",
    "HostConfig.CapDrop": "slice", "HostConfig.Dns": "slice", "HostConfig.DnsOptions": "slice",
    "HostConfig.DnsSearch": "slice", "HostConfig.ExtraHosts": "slice", "HostConfig.GroupAdd": "slice",
    "HostConfig.Links": "slice", "HostConfig.SecurityOpt": "slice", "HostConfig.StorageOpt": "map",
    "HostConfig.Tmpfs": "map", "HostConfig.Sysctls": "map", "HostConfig.BlkioWeightDevice": "slice",
    "HostConfig.BlkioWeightDevice[]": "pstruct", "HostConfig.BlkioDeviceReadBps": "slice",
    "HostConfig.BlkioDeviceReadBps[]": "pstruct", "HostConfig.BlkioDeviceWriteBps": "slice",
    "HostConfig.BlkioDeviceWriteBps[]": "pstruct", "HostConfig.BlkioDeviceReadIOps": "slice",
    "HostConfig.BlkioDeviceReadIOps[]": "pstruct", "HostConfig.BlkioDeviceWriteIOps": "slice",
    "HostConfig.BlkioDeviceWriteIOps[]": "pstruct", "HostConfig.Devices": "slice", "HostConfig.Devices[]": "struct",
    "HostConfig.DeviceCgroupRules": "slice", "HostConfig.DeviceRequests": "slice",
    "HostConfig.MemorySwappiness": "ptr", "HostConfig.OomKillDisable": "ptr", "HostConfig.PidsLimit": "ptr",
    "HostConfig.Ulimits": "slice", "HostConfig.Ulimits[]": "pstruct", "HostConfig.Mounts": "slice",
    "HostConfig.Mounts[]": "struct", "HostConfig.MaskedPaths": "slice", "HostConfig.ReadonlyPaths": "slice",
    "HostConfig.Init": "ptr",
    "GraphDriver": "struct", "GraphDriver.Data": "map", "Mounts": "slice", "Mounts[]": "struct",
    "NetworkSettings": "pstruct", "NetworkSettings.Ports": "map", "NetworkSettings.Ports.*": "slice",
    "NetworkSettings.Ports.*[]": "struct", "NetworkSettings.Networks": "map",
    "NetworkSettings.Networks.*": "pstruct", "NetworkSettings.Networks.*.Links": "slice",
    "NetworkSettings.Networks.*.Aliases": "slice", "NetworkSettings.Networks.*.DNSNames": "slice",
    "NetworkSettings.Networks.*.DriverOpts": "map", "NetworkSettings.Networks.*.IPAMConfig": "pstruct",
    "NetworkSettings.SecondaryIPAddresses": "slice", "NetworkSettings.SecondaryIPv6Addresses": "slice",
}

# Fields the typed struct always has even when the daemon's JSON leaves them out (omitempty).
_CONTAINER_OPTIONAL = {
    "State.Health": ABSENT_PTR, "Config.ExposedPorts": ABSENT_MAP, "Config.Healthcheck": ABSENT_PTR,
    "Config.StopTimeout": ABSENT_PTR, "Config.Shell": ABSENT_SLICE, "Config.StopSignal": "", "Config.MacAddress": "",
    "Config.ArgsEscaped": False, "Config.NetworkDisabled": False, "HostConfig.Annotations": ABSENT_MAP,
    "HostConfig.StorageOpt": ABSENT_MAP, "HostConfig.Tmpfs": ABSENT_MAP, "HostConfig.Sysctls": ABSENT_MAP,
    "HostConfig.Runtime": "", "HostConfig.Mounts": ABSENT_SLICE, "HostConfig.Init": ABSENT_PTR,
    "HostConfig.KernelMemory": 0, "HostConfig.KernelMemoryTCP": 0, "Node": ABSENT_PTR, "SizeRw": ABSENT_PTR,
    "SizeRootFs": ABSENT_PTR, "ImageManifestDescriptor": ABSENT_PTR,
}

_NIL_BY_KIND = {"slice": NIL_SLICE, "map": NIL_MAP, "ptr": NIL_PTR, "pstruct": NIL_PTR, "struct": NIL_PTR}


def _schema_kind(schema: dict[str, str], path: str) -> str | None:
    kind = schema.get(path)
    if kind is not None:
        return kind
    # wildcard map keys: replace the last concrete key segment with "*"
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        cand = ".".join([*parts[:i], "*", *parts[i + 1:]]) if not parts[i].endswith("[]") else \
            ".".join([*parts[:i], "*[]", *parts[i + 1:]])
        if cand in schema:
            return schema[cand]
    return None


def typed(value: object, schema: dict[str, str], optional: dict[str, object], path: str = "") -> object:
    """Give a decoded inspect object Go's typed shape: structs print as `{...}`, nulls become typed nils,
    and omitted optional fields appear with their zero values."""
    kind = _schema_kind(schema, path)
    if value is None:
        return _NIL_BY_KIND.get(kind or "")
    if isinstance(value, dict):
        is_struct = kind in ("struct", "pstruct")
        items: dict[str, object] = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if not is_struct and kind == "map":
                sub = f"{path}.{k}"
            items[k] = typed(v, schema, optional, sub)
        if is_struct:
            for opt_path, zero in optional.items():
                head, _, leaf = opt_path.rpartition(".")
                if head == path and leaf not in items:
                    items[leaf] = zero
            return GoStruct(items, pointer=kind == "pstruct")
        return items
    if isinstance(value, list):
        return [typed(v, schema, optional, path + "[]") for v in value]
    return value


def _go_id(doc: object) -> object:
    """The Go inspect types name their id field ID (JSON "Id"): `{{.ID}}` works and `{{.Id}}` fails on the
    typed object, which sends docker to its raw-JSON fallback (see commands/inspect.py)."""
    if isinstance(doc, GoStruct):
        doc.go_names = {"ID": "Id"}
    return doc


def typed_container(doc: object) -> object:
    return _go_id(typed(doc, _CONTAINER_SCHEMA, _CONTAINER_OPTIONAL))


_CONFIG_FIELDS = {"ExposedPorts": "map", "Env": "slice", "Cmd": "slice", "Healthcheck": "pstruct",
                  "Healthcheck.Test": "slice", "Volumes": "map", "Entrypoint": "slice", "OnBuild": "slice",
                  "Labels": "map", "StopTimeout": "ptr", "Shell": "slice"}
_IMAGE_SCHEMA = {
    "": "struct", "RepoTags": "slice", "RepoDigests": "slice", "GraphDriver": "struct", "GraphDriver.Data": "map",
    "RootFS": "struct", "RootFS.Layers": "slice", "Metadata": "struct", "Config": "pstruct",
    "ContainerConfig": "pstruct", "Descriptor": "pstruct", "Manifests": "slice", "Manifests[]": "struct",
    **{f"Config.{k}": v for k, v in _CONFIG_FIELDS.items()},
    **{f"ContainerConfig.{k}": v for k, v in _CONFIG_FIELDS.items()},
}
_IMAGE_OPTIONAL = {"Parent": "", "Comment": "", "DockerVersion": "", "Author": "", "Variant": "", "OsVersion": "",
                   "Container": "", "ContainerConfig": ABSENT_PTR, "VirtualSize": 0, "Descriptor": ABSENT_PTR,
                   "Manifests": ABSENT_SLICE}


def typed_image(doc: object) -> object:
    return _go_id(typed(doc, _IMAGE_SCHEMA, _IMAGE_OPTIONAL))
