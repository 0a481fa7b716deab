"""System commands: version, info, events, system df, system prune."""

from __future__ import annotations

import os
import sys

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _parse, confirm
from berth.cli.config import INDEX_SERVER
from berth.cli.filters import parse_filter, to_json
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.client.errors import DaemonError

VERSION_TEMPLATE = """{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Python version:\t{{.PythonVersion}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""


def _ansic(text: str) -> str:
    """reformatDate: RFC 3339 build times shown in Go's ANSIC layout ("Mon Jan  2 15:04:05 2006")."""
    import datetime as dt

    s = text.strip()
    if not s:
        return text
    try:
        frac_free = s
        if "." in s:
            head, rest = s.split(".", 1)
            tz = ""
            for i, ch in enumerate(rest):
                if not ch.isdigit():
                    tz = rest[i:]
                    break
            frac_free = head + tz
        t = dt.datetime.fromisoformat(frac_free.replace("Z", "+00:00"))
    except ValueError:
        return text
    return t.strftime("%a %b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S %Y")


def _client_version(cli: Cli, api_version: str) -> dict[str, object]:
    from berth import __version__
    from berth.client.api import DEFAULT_VERSION

    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    from berth.cli.gotypes import ABSENT_PTR, GoStruct

    doc = {"Platform": ABSENT_PTR, "Version": __version__, "ApiVersion": api_version,
           "DefaultAPIVersion": DEFAULT_VERSION, "PythonVersion": ".".join(map(str, sys.version_info[:3])),
           "Os": sys.platform, "Arch": arch, "Context": "default"}
    return GoStruct(doc, go_names={"APIVersion": "ApiVersion"},
                    type_name="main.clientVersion")


def version(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [Flag("format", "f", STRING, help="Format output using a custom template")],
               argv, "Show the berth version information", no_args=True)
    if p is None:
        return 0
    o, _ = p
    from berth.cli.tabwriter import tabulate
    from berth.cli.template import Template, TemplateError

    fmt = o.format or VERSION_TEMPLATE
    if fmt == "json":
        fmt = "{{json .}}"

    def details_order(component: dict[str, object]) -> list[str]:
        return sorted((component.get("Details") or {}).keys())  # type: ignore[attr-defined]

    try:
        tmpl = Template(fmt, funcs={"getDetailsOrder": details_order}, name="version")
    except TemplateError as e:
        raise StatusError(64, f"template parsing error: {e}") from None
    server: dict[str, object] | None = None
    err: Exception | None = None
    api_version = ""
    try:
        sv = cli.client.get_json("/version")
        api_version = cli.client.api_version()
        assert isinstance(sv, dict)
        server = sv
        components = list(sv.get("Components") or [])
        engine = [c for c in components if c.get("Name") == "Engine"]
        for c in engine:
            d = c.get("Details") or {}
            if "BuildTime" in d:
                d["BuildTime"] = _ansic(str(d["BuildTime"]))
        if not engine:
            components.append({"Name": "Engine", "Version": sv.get("Version", ""), "Details": {
                "ApiVersion": sv.get("ApiVersion", ""), "MinAPIVersion": sv.get("MinAPIVersion", ""),
                "GitCommit": sv.get("GitCommit", ""), "GoVersion": sv.get("GoVersion", ""), "Os": sv.get("Os", ""),
                "Arch": sv.get("Arch", ""), "BuildTime": _ansic(str(sv.get("BuildTime", ""))),
                "Experimental": "true" if sv.get("Experimental") else "false"}})
        sv["Components"] = components
        sv.setdefault("Platform", {"Name": ""})
        from berth.cli.gotypes import GoStruct

        # templates see types.Version's Go field names; its JSON keeps the tags ("ApiVersion")
        sv = GoStruct(sv, pointer=True, go_names={"APIVersion": "ApiVersion"}, type_name="*types.Version")
        server = sv
    except Exception as e:
        from berth.errors import BerthError

        if not isinstance(e, BerthError):
            raise
        err = e
    from berth.client.api import DEFAULT_VERSION

    data = {"Client": _client_version(cli, api_version or cli.client.version or DEFAULT_VERSION), "Server": server}
    text, terr = tmpl.execute_partial(data)
    if terr is not None and err is None:
        err = StatusError(1, str(terr))
    w = tabulate(text + "\n", minwidth=20, padding=1)
    cli.stdout.write(w)
    if err is not None:
        cli.stdout.flush()
        raise StatusError(1, err.message if isinstance(err, StatusError) else str(err))
    return 0


def _ln(*parts: object) -> str:
    return " ".join("true" if p is True else "false" if p is False else str(p) for p in parts) + "\n"


def info(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [Flag("format", "f", STRING, help="Format output using a custom template")],
               argv, "Display system-wide information", no_args=True)
    if p is None:
        return 0
    o, _ = p
    from berth import __version__

    client_info = {"Version": __version__, "Context": "default", "Debug": cli.debug, "Plugins": [],
                   "Warnings": None}
    server_errors: list[str] = []
    srv: dict[str, object] = {}
    try:
        got = cli.client.get_json("/info")
        srv = got if isinstance(got, dict) else {}
    except Exception as e:
        from berth.errors import BerthError

        if not isinstance(e, BerthError):
            raise
        server_errors.append(str(e))
    if o.format:
        from berth.cli.template import Template, TemplateError

        fmt = "{{json .}}" if o.format == "json" else o.format
        try:
            tmpl = Template(fmt)
        except TemplateError as e:
            raise StatusError(64, f"template parsing error: {e}") from None
        data = {**srv, "ClientInfo": client_info, "ClientErrors": None, "ServerErrors": server_errors or None}
        try:
            cli.stdout.write(tmpl.execute(data) + "\n")
        except TemplateError as e:
            raise StatusError(1, str(e)) from None
        if server_errors:
            raise StatusError(1, "\n".join(server_errors))
        return 0
    out: list[str] = ["Client:\n", _ln(" Version:   ", __version__), _ln(" Context:   ", "default"),
                      _ln(" Debug Mode:", cli.debug), "\n", "Server:\n"]
    if srv:
        out += _server_info(srv, cli)
    cli.stdout.write("".join(out))
    for w in srv.get("Warnings") or []:  # type: ignore[attr-defined]
        cli.err(str(w))
    if server_errors:
        cli.stdout.flush()
        for msg in server_errors:
            cli.err(f"ERROR: {msg}")
        raise StatusError(1, "errors pretty printing info")
    return 0


def _server_info(i: dict[str, object], cli: Cli) -> list[str]:
    from berth.units import bytes_size

    g = i.get
    out = [_ln(" Containers:", g("Containers", 0)), _ln("  Running:", g("ContainersRunning", 0)),
           _ln("  Paused:", g("ContainersPaused", 0)), _ln("  Stopped:", g("ContainersStopped", 0)),
           _ln(" Images:", g("Images", 0))]

    def nonempty(label: str, key: str) -> None:
        v = g(key)
        if v:
            out.append(_ln(label, v))

    nonempty(" Server Version:", "ServerVersion")
    nonempty(" Storage Driver:", "Driver")
    for pair in g("DriverStatus") or []:  # type: ignore[attr-defined]
        out.append(f"  {pair[0]}: {pair[1]}\n")
    for pair in g("SystemStatus") or []:  # type: ignore[attr-defined]
        out.append(f" {pair[0]}: {pair[1]}\n")
    nonempty(" Logging Driver:", "LoggingDriver")
    nonempty(" Cgroup Driver:", "CgroupDriver")
    nonempty(" Cgroup Version:", "CgroupVersion")
    plugins = g("Plugins") or {}
    out.append(" Plugins:\n")
    out.append(_ln("  Volume:", " ".join(plugins.get("Volume") or [])))  # type: ignore[attr-defined]
    out.append(_ln("  Network:", " ".join(plugins.get("Network") or [])))  # type: ignore[attr-defined]
    if plugins.get("Authorization"):  # type: ignore[attr-defined]
        out.append(_ln("  Authorization:", " ".join(plugins["Authorization"])))  # type: ignore[index]
    out.append(_ln("  Log:", " ".join(plugins.get("Log") or [])))  # type: ignore[attr-defined]
    swarm = g("Swarm") or {}
    out.append(_ln(" Swarm:", swarm.get("LocalNodeState", "")))  # type: ignore[attr-defined]
    runtimes = g("Runtimes") or {}
    if runtimes:
        out.append(_ln(" Runtimes:", " ".join(runtimes)))  # type: ignore[arg-type]
        out.append(_ln(" Default Runtime:", g("DefaultRuntime", "")))
    if g("OSType") == "linux":
        out.append(_ln(" Init Binary:", g("InitBinary", "")))
        out.append(_ln(" containerd version:", (g("ContainerdCommit") or {}).get("ID", "")))  # type: ignore[attr-defined]
        out.append(_ln(" runc version:", (g("RuncCommit") or {}).get("ID", "")))  # type: ignore[attr-defined]
        out.append(_ln(" init version:", (g("InitCommit") or {}).get("ID", "")))  # type: ignore[attr-defined]
        secopts = g("SecurityOptions") or []
        if secopts:
            out.append(" Security Options:\n")
            for opt in secopts:  # type: ignore[attr-defined]
                if "=" not in opt:
                    out.append(f"  {opt}\n")
                    continue
                name = ""
                profile = None
                for kv in opt.split(","):
                    k, _, v = kv.partition("=")
                    if k == "name":
                        name = v
                    elif k == "profile":
                        profile = v
                out.append(f"  {name}\n")
                if profile is not None:
                    out.append(_ln("   Profile:", profile))
    nonempty(" Kernel Version:", "KernelVersion")
    nonempty(" Operating System:", "OperatingSystem")
    nonempty(" OSType:", "OSType")
    nonempty(" Architecture:", "Architecture")
    out.append(_ln(" CPUs:", g("NCPU", 0)))
    out.append(_ln(" Total Memory:", bytes_size(float(g("MemTotal") or 0))))  # type: ignore[arg-type]
    nonempty(" Name:", "Name")
    nonempty(" ID:", "ID")
    out.append(_ln(" Docker Root Dir:", g("DockerRootDir", "")))
    out.append(_ln(" Debug Mode:", bool(g("Debug"))))
    if g("Debug") or cli.debug:
        out.append(_ln("  File Descriptors:", g("NFd", 0)))
        out.append(_ln("  Goroutines:", g("NGoroutines", 0)))
        out.append(_ln("  System Time:", g("SystemTime", "")))
        out.append(_ln("  EventsListeners:", g("NEventsListener", 0)))
    nonempty(" HTTP Proxy:", "HttpProxy")
    nonempty(" HTTPS Proxy:", "HttpsProxy")
    nonempty(" No Proxy:", "NoProxy")
    user = cli.config.get_auth(INDEX_SERVER).get("username", "")
    if user:
        out.append(_ln(" Username:", user))
    labels = g("Labels") or []
    if labels:
        out.append(" Labels:\n")
        out += [f"  {lbl}\n" for lbl in labels]  # type: ignore[attr-defined]
    out.append(_ln(" Experimental:", bool(g("ExperimentalBuild"))))
    reg = g("RegistryConfig") or {}
    cidrs = reg.get("InsecureRegistryCIDRs") or []  # type: ignore[attr-defined]
    indexes = reg.get("IndexConfigs") or {}  # type: ignore[attr-defined]
    if cidrs or indexes:
        out.append(" Insecure Registries:\n")
        for ic in indexes.values():
            if not ic.get("Secure"):
                out.append(f"  {ic.get('Name', '')}\n")
        for c in cidrs:
            out.append(f"  {c}\n")
    if reg.get("Mirrors"):  # type: ignore[attr-defined]
        out.append(" Registry Mirrors:\n")
        out += [f"  {m}\n" for m in reg["Mirrors"]]  # type: ignore[index]
    out.append(_ln(" Live Restore Enabled:", bool(g("LiveRestoreEnabled"))))
    if g("ProductLicense"):
        out.append(_ln(" Product License:", g("ProductLicense")))
    pools = g("DefaultAddressPools") or []
    if pools:
        out.append(" Default Address Pools:\n")
        out += [f"   Base: {pl.get('Base')}, Size: {pl.get('Size')}\n" for pl in pools]  # type: ignore[attr-defined]
    out.append("\n")
    return out


def events(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [
        Flag("filter", "f", LIST, conv=parse_filter, type_name="filter",
             help="Filter output based on conditions provided"),
        Flag("format", "", STRING, help="Format output using a custom template"),
        Flag("since", "", STRING, help="Show all events created since timestamp"),
        Flag("until", "", STRING, help="Stream events until this timestamp"),
    ], argv, "Get real time events from the server", no_args=True)
    if p is None:
        return 0
    o, _ = p
    from berth.cli.commands.stream import get_timestamp
    from berth.cli.jsonmessage import rfc3339_nano_fixed
    from berth.cli.template import Template, TemplateError

    tmpl = None
    if o.format:
        try:
            tmpl = Template("{{json .}}" if o.format == "json" else o.format)
        except TemplateError as e:
            raise StatusError(64, f"Error parsing format: {e}") from None
    params: dict[str, object] = {"filters": to_json(o.filter)}
    if o.since:
        params["since"] = get_timestamp(o.since)
    if o.until:
        params["until"] = get_timestamp(o.until)
    out = cli.stdout
    for ev in cli.client.stream_json("GET", "/events", params):
        if not isinstance(ev, dict):
            continue
        if tmpl is not None:
            try:
                out.write(tmpl.execute(ev) + "\n")
            except TemplateError as e:
                raise StatusError(1, str(e)) from None
        else:
            line = ""
            if ev.get("timeNano"):
                line = rfc3339_nano_fixed(int(ev["timeNano"])) + " "
            elif ev.get("time"):
                line = rfc3339_nano_fixed(int(ev["time"]) * 10**9) + " "
            actor = ev.get("Actor") or {}
            line += f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
            attrs = actor.get("Attributes") or {}
            if attrs:
                line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
            out.write(line + "\n")
        out.flush()
    return 0


def df(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [
        Flag("format", "", STRING, help="Format output using a custom template"),
        Flag("verbose", "v", BOOL, help="Show detailed information on space usage"),
    ], argv, "Show berth disk usage", no_args=True)
    if p is None:
        return 0
    o, _ = p
    from berth.cli.formatter import Context, render
    from berth.units import human_size

    du = cli.client.get_json("/system/df") or {}
    assert isinstance(du, dict)
    images = du.get("Images") or []
    containers = du.get("Containers") or []
    volumes = du.get("Volumes") or []
    cache = du.get("BuildCache") or []
    layers = int(du.get("LayersSize") or 0)
    builder = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))

    def pct(reclaimable: int, total: int) -> str:
        if total > 0:
            return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
        return human_size(reclaimable)

    active_states = ("running", "paused", "restarting")
    rows_data = [
        ("Images", len(images), sum(1 for i in images if int(i.get("Containers") or 0) > 0), human_size(layers),
         pct(layers - sum(int(i.get("Size") or 0) - int(i.get("SharedSize") or 0) for i in images
                          if int(i.get("Containers") or 0) != 0 and i.get("Size") != -1 and i.get("SharedSize") != -1),
             layers)),
        ("Containers", len(containers), sum(1 for c in containers if c.get("State") in active_states),
         human_size(sum(int(c.get("SizeRw") or 0) for c in containers)),
         pct(sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") not in active_states),
             sum(int(c.get("SizeRw") or 0) for c in containers))),
        ("Local Volumes", len(volumes),
         sum(1 for v in volumes if int((v.get("UsageData") or {}).get("RefCount") or 0) > 0),
         human_size(sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes
                        if (v.get("UsageData") or {}).get("Size") != -1)),
         pct(sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes
                 if (v.get("UsageData") or {}).get("Size") != -1
                 and int((v.get("UsageData") or {}).get("RefCount") or 0) == 0),
             sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes
                 if (v.get("UsageData") or {}).get("Size") != -1))),
        ("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")), human_size(builder),
         human_size(builder - sum(int(b.get("Size") or 0) for b in cache if b.get("InUse") and not b.get("Shared")))),
    ]

    class Row(Context):
        _fields = ("Type", "TotalCount", "Active", "Size", "Reclaimable")

        def __init__(self, r: tuple[object, ...]) -> None:
            self.r = r

        def Type(self) -> str:
            return str(self.r[0])

        def TotalCount(self) -> str:
            return str(self.r[1])

        def Active(self) -> str:
            return str(self.r[2])

        def Size(self) -> str:
            return str(self.r[3])

        def Reclaimable(self) -> str:
            return str(self.r[4])

    if o.verbose:
        import json

        cli.stdout.write(json.dumps(du, indent=4) + "\n")
        return 0
    fmt = o.format or "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    if fmt == "table":
        fmt = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
    cli.stdout.write(render(fmt, [Row(r) for r in rows_data], headers))
    return 0


def prune(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [
        Flag("all", "a", BOOL, help="Remove all unused images not just dangling ones"),
        Flag("filter", "", LIST, conv=parse_filter, type_name="filter", api="1.28",
             help='Provide filter values (e.g. "label=<key>=<value>")'),
        Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
        Flag("volumes", "", BOOL, help="Prune anonymous volumes"),
    ], argv, "Remove unused data", no_args=True)
    if p is None:
        return 0
    o, _ = p
    filters: list[tuple[str, str]] = list(o.filter or [])
    if o.volumes and any(k == "until" for k, _ in filters):
        raise StatusError(1, 'ERROR: The "until" filter is not supported with "--volumes"')
    if not o.force:
        warnings = ["all stopped containers", "all networks not used by at least one container"]
        if o.volumes:
            warnings.append("all anonymous volumes not used by at least one container")
        warnings.append("all images without at least one container associated to them" if o.all
                        else "all dangling images")
        warnings.append("all build cache" if o.all else "unused build cache")
        msg = "WARNING! This will remove:" + "".join(f"\n  - {w}" for w in warnings) + "\n"
        shown = sorted(f"{k}={v}" for k, v in filters if k in ("label", "label!", "until"))
        if shown:
            msg += "\n  Items to be pruned will be filtered with:" + "".join(f"\n  - {f}" for f in shown) + "\n"
        msg += "\nAre you sure you want to continue?"
        if not confirm(cli, msg):
            raise StatusError(1, "system prune has been cancelled")
    from berth.cli.commands.image import prune_images
    from berth.units import human_size

    total = 0
    steps: list[tuple[str, str, str]] = [("/containers/prune", "ContainersDeleted", "Deleted Containers:"),
                                         ("/networks/prune", "NetworksDeleted", "Deleted Networks:")]
    if o.volumes:
        steps.append(("/volumes/prune", "VolumesDeleted", "Deleted Volumes:"))
    for route, key, title in steps:
        report = cli.client.post_json(route, {"filters": to_json(filters)}) or {}
        deleted = report.get(key) or []  # type: ignore[attr-defined]
        if deleted:
            cli.out(title + "\n" + "".join(f"{d}\n" for d in deleted))
            total += int(report.get("SpaceReclaimed") or 0)  # type: ignore[attr-defined]
    reclaimed, output = prune_images(cli, bool(o.all), filters, True)
    total += reclaimed
    if output:
        cli.out(output)
    try:
        report = cli.client.post_json("/build/prune", {"filters": to_json(filters) or "",
                                                       "all": True if o.all else None}) or {}
        caches = report.get("CachesDeleted") or []  # type: ignore[attr-defined]
        if caches:
            cli.out("Deleted build cache objects:\n" + "".join(f"{c}\n" for c in caches))
        total += int(report.get("SpaceReclaimed") or 0)  # type: ignore[attr-defined]
    except DaemonError:
        pass
    cli.out(f"Total reclaimed space: {human_size(total)}")
    return 0
