"""Container verbs that are one request per container: stop, kill, pause, unpause, restart, rm, wait,
rename, port, top, update, commit, export, diff, prune."""

from __future__ import annotations

from berth.cli.app import Cli, StatusError
from berth.cli.flags import BOOL, INT, LIST, STRING, Command, Flag, Values
from berth.client.api import path_escape
from berth.client.errors import DaemonError, DaemonNotFound


def _parse(cli: Cli, path: str, use: str, flags: list[Flag], argv: list[str], short: str = "",
           **rules: object) -> tuple[Values, list[str]] | None:
    cmd = Command(path, use, flags, short=short, bin_name=cli.bin_name, **rules)  # type: ignore[arg-type]
    o, args = cmd.parse(argv)
    if o.help:
        cli.out(cmd.help_text(), end="")
        return None
    cmd.check_args(args)
    check_supported(cli, cmd, o)
    return o, args


def check_supported(cli: Cli, cmd: Command, o: Values) -> None:
    errs = cmd.unsupported(o, cli.client.api_version, cli.client.server_os)
    if errs:
        raise StatusError(1, "\n".join(errs))


def _cpath(name: str, verb: str = "") -> str:
    return f"/containers/{path_escape(name)}" + (f"/{verb}" if verb else "")


def _each(cli: Cli, names: list[str], op: object, ignore_not_found: bool = False) -> int:
    """Apply op to each container, print each name that succeeded; errors are printed together at the
    end and make the exit status 1 (docker's errors.Join)."""
    errs: list[str] = []
    for name in names:
        try:
            op(name)  # type: ignore[operator]
        except DaemonNotFound as e:
            if ignore_not_found:
                cli.err(str(e))
                continue
            errs.append(str(e))
            continue
        except (DaemonError, StatusError) as e:
            errs.append(str(e) if not isinstance(e, StatusError) else e.message)
            continue
        cli.out(name)
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


_STOP_FLAGS = [
    Flag("signal", "s", STRING, help="Signal to send to the container"),
    Flag("timeout", "t", INT, help="Seconds to wait before killing the container"),
    Flag("time", "", INT, hidden=True),
]


def _stop_params(cli: Cli, o: Values) -> dict[str, object]:
    from berth.client.api import version_lt

    params: dict[str, object] = {}
    if o.signal and not version_lt(cli.client.api_version(), "1.42"):
        params["signal"] = o.signal
    if o.changed("timeout") or o.changed("time"):
        params["t"] = str(o.timeout if o.changed("timeout") else o.time)
    return params


def stop(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", _STOP_FLAGS, argv, "Stop one or more running "
               "containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    params = _stop_params(cli, o)
    return _each(cli, args, lambda n: cli.client.post(_cpath(n, "stop"), params))


def restart(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", _STOP_FLAGS, argv, "Restart one or more "
               "containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    params = _stop_params(cli, o)
    return _each(cli, args, lambda n: cli.client.post(_cpath(n, "restart"), params))


def kill(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]",
               [Flag("signal", "s", STRING, help="Signal to send to the container")], argv,
               "Kill one or more running containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    params = {"signal": o.signal} if o.signal else {}
    return _each(cli, args, lambda n: cli.client.post(_cpath(n, "kill"), params))


def pause(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER [CONTAINER...]", [], argv, "Pause all processes within one or more "
               "containers", min_args=1)
    if p is None:
        return 0
    return _each(cli, p[1], lambda n: cli.client.post(_cpath(n, "pause")))


def unpause(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER [CONTAINER...]", [], argv, "Unpause all processes within one or more "
               "containers", min_args=1)
    if p is None:
        return 0
    return _each(cli, p[1], lambda n: cli.client.post(_cpath(n, "unpause")))


def rm(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", [
        Flag("force", "f", BOOL, help="Force the removal of a running container (uses SIGKILL)"),
        Flag("link", "l", BOOL, help="Remove the specified link"),
        Flag("volumes", "v", BOOL, help="Remove anonymous volumes associated with the container"),
    ], argv, "Remove one or more containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    params = {"v": o.volumes or None, "link": o.link or None, "force": o.force or None}

    def remove(name: str) -> None:
        name = name.strip("/")
        if not name:
            raise StatusError(1, "container name cannot be empty")
        cli.client.delete(_cpath(name), params)

    return _each(cli, args, remove, ignore_not_found=bool(o.force))


def wait(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER [CONTAINER...]", [], argv,
               "Block until one or more containers stop, then print their exit codes", min_args=1)
    if p is None:
        return 0
    errs = []
    for name in p[1]:
        try:
            resp = cli.client.request("POST", _cpath(name, "wait"))
            from berth.cli.pump import read_wait_status

            cli.out(str(read_wait_status(resp, cli.err)))
        except DaemonError as e:
            errs.append(str(e))
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


def rename(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER NEW_NAME", [], argv, "Rename a container", exact=2)
    if p is None:
        return 0
    old, new = p[1][0].strip(), p[1][1].strip()
    if not old or not new:
        raise StatusError(1, "Error: Neither old nor new names may be empty")
    try:
        cli.client.post(_cpath(old, "rename"), {"name": new})
    except DaemonError as e:
        cli.err(str(e))
        raise StatusError(1, f"Error: failed to rename container named {old}") from None
    return 0


def _natural_key(s: str) -> list[object]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def port(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER [PRIVATE_PORT[/PROTO]]", [], argv,
               "List port mappings or a specific mapping for the container", min_args=1, max_args=2)
    if p is None:
        return 0
    args = p[1]
    c = cli.client.get_json(_cpath(args[0], "json"))
    ports = ((c or {}).get("NetworkSettings") or {}).get("Ports") or {}  # type: ignore[attr-defined]

    def hp(f: dict[str, str]) -> str:
        ip, port_ = f.get("HostIp", ""), f.get("HostPort", "")
        return f"[{ip}]:{port_}" if ":" in ip else f"{ip}:{port_}"

    out: list[str] = []
    if len(args) == 2:
        num, _, proto = args[1].partition("/")
        if not num.isdigit() or int(num) > 65535:
            raise StatusError(1, f'Error: invalid port ({num}): strconv.ParseUint: parsing "{num}": '
                                 f'{"value out of range" if num.isdigit() else "invalid syntax"}')
        fronts = ports.get(f"{num}/{proto or 'tcp'}")
        if not fronts:
            raise StatusError(1, f"Error: No public port '{args[1]}' published for {args[0]}")
        out = [hp(f) for f in fronts]
    else:
        for frm, fronts in ports.items():
            for f in fronts or []:
                out.append(f"{frm} -> {hp(f)}")
    if out:
        cli.out("\n".join(sorted(out, key=_natural_key)))
    return 0


def top(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER [ps OPTIONS]", [], argv, "Display the running processes of a container",
               min_args=1, interspersed=False)
    if p is None:
        return 0
    args = p[1]
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else {}
    procs = cli.client.get_json(_cpath(args[0], "top"), params) or {}
    from berth.cli.tabwriter import tabulate

    lines = ["\t".join(procs.get("Titles") or []) + "\n"]  # type: ignore[attr-defined]
    lines += ["\t".join(row) + "\n" for row in procs.get("Processes") or []]  # type: ignore[attr-defined]
    cli.stdout.write(tabulate("".join(lines), minwidth=20))
    return 0


def update(cli: Cli, path: str, argv: list[str]) -> int:
    from berth.cli.validate import parse_mem, parse_mem_swap, parse_uint16
    from berth.units import parse_cpus

    flags = [
        Flag("blkio-weight", "", STRING, default=0, conv=parse_uint16, type_name="uint16",
             help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
        Flag("cpu-period", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
        Flag("cpu-quota", "", INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
        Flag("cpu-rt-period", "", INT, api="1.25", help="Limit the CPU real-time period in microseconds"),
        Flag("cpu-rt-runtime", "", INT, api="1.25", help="Limit the CPU real-time runtime in microseconds"),
        Flag("cpu-shares", "c", INT, help="CPU shares (relative weight)"),
        Flag("cpus", "", STRING, default=0, conv=parse_cpus, type_name="decimal", api="1.29", help="Number of CPUs"),
        Flag("cpuset-cpus", "", STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
        Flag("cpuset-mems", "", STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
        Flag("kernel-memory", "", STRING, default=0, conv=parse_mem, type_name="bytes", help="Kernel memory limit"),
        Flag("memory", "m", STRING, default=0, conv=parse_mem, type_name="bytes", help="Memory limit"),
        Flag("memory-reservation", "", STRING, default=0, conv=parse_mem, type_name="bytes",
             help="Memory soft limit"),
        Flag("memory-swap", "", STRING, default=0, conv=parse_mem_swap, type_name="bytes",
             help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
        Flag("pids-limit", "", INT, api="1.40", help="Tune container pids limit (set -1 for unlimited)"),
        Flag("restart", "", STRING, help="Restart policy to apply when a container exits"),
    ]
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", flags, argv,
               "Update configuration of one or more containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    if not any(o.changed(f.name) for f in flags):
        raise StatusError(1, "you must provide one or more flags when using this command")
    from berth.cli.validate import _parse_restart

    restart_policy = {"Name": "", "MaximumRetryCount": 0}
    if o.restart:
        try:
            restart_policy = _parse_restart(o.restart)
        except ValueError as e:
            raise StatusError(1, str(e)) from None
    body: dict[str, object] = {
        "CpuShares": o.cpu_shares, "Memory": o.memory, "NanoCpus": o.cpus, "CgroupParent": "",
        "BlkioWeight": o.blkio_weight, "BlkioWeightDevice": None, "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None,
        "CpuPeriod": o.cpu_period, "CpuQuota": o.cpu_quota, "CpuRealtimePeriod": o.cpu_rt_period,
        "CpuRealtimeRuntime": o.cpu_rt_runtime, "CpusetCpus": o.cpuset_cpus, "CpusetMems": o.cpuset_mems,
        "Devices": None, "DeviceCgroupRules": None, "DeviceRequests": None,
    }
    if o.kernel_memory:
        body["KernelMemory"] = o.kernel_memory
    body.update({"MemoryReservation": o.memory_reservation, "MemorySwap": o.memory_swap,
                 "MemorySwappiness": None, "OomKillDisable": None,
                 "PidsLimit": o.pids_limit if o.pids_limit != 0 else None, "Ulimits": None,
                 "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                 "RestartPolicy": restart_policy})
    warns: list[str] = []
    errs: list[str] = []
    for name in args:
        try:
            r = cli.client.post_json(_cpath(name, "update"), json=body) or {}
            cli.out(name)
            warns += list(r.get("Warnings") or [])  # type: ignore[attr-defined]
        except DaemonError as e:
            errs.append(str(e))
    if warns:
        cli.out("\n".join(warns))
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


def commit(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", [
        Flag("author", "a", STRING, help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
        Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created image"),
        Flag("message", "m", STRING, help="Commit message"),
        Flag("pause", "p", BOOL, default=True, help="Pause container during commit (default true)"),
        Flag("no-pause", "", BOOL, hidden=True),
    ], argv, "Create a new image from a container's changes", min_args=1, max_args=2)
    if p is None:
        return 0
    o, args = p
    repo = tag = ""
    if len(args) > 1:
        from berth.oci.reference import parse as parse_normalized

        ref = parse_normalized(args[1])
        if ref.digest:
            raise StatusError(1, "refusing to create a tag with a digest reference")
        ref = ref.with_default_tag()
        repo, tag = ref.name, ref.tag or ""
    params: dict[str, object] = {"container": args[0], "repo": repo, "tag": tag, "comment": o.message,
                                 "author": o.author, "changes": o.change or None}
    if not o.pause or o.no_pause:
        params["pause"] = "0"
    # url.Values.Set with an empty value still sends "key=" (docker does)
    resp = cli.client.post_json("/commit", {k: ("" if v == "" else v) for k, v in params.items()})
    cli.out(str((resp or {}).get("Id", "")))  # type: ignore[attr-defined]
    return 0


def export(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER", [Flag("output", "o", STRING, help="Write to a file, instead of "
                                                                              "STDOUT")],
               argv, "Export a container's filesystem as a tar archive", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.streams_out import copy_to_output

    if not o.output and cli.is_tty_out():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.client.request("GET", _cpath(args[0], "export"))
    copy_to_output(cli, resp.iter_raw(), o.output, "failed to export container")
    return 0


def diff(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "CONTAINER", [], argv, "Inspect changes to files or directories on a container's "
               "filesystem", exact=1)
    if p is None:
        return 0
    name = p[1][0]
    if not name:
        raise StatusError(1, "Container name cannot be empty")
    changes = cli.client.get_json(_cpath(name, "changes")) or []
    kinds = {0: "C", 1: "A", 2: "D"}
    for ch in changes:  # type: ignore[attr-defined]
        cli.out(f"{kinds.get(ch.get('Kind'), '?')} {ch.get('Path', '')}")
    return 0


def confirm(cli: Cli, message: str) -> bool:
    """docker's prompt.Confirm: "<message> [y/N] "; only y/Y accepts."""
    cli.stdout.write(message + " [y/N] ")
    cli.stdout.flush()
    line = cli.stdin.readline()
    cli.out()
    return line.strip().lower() == "y"


def prune_filters(values: list[tuple[str, str]] | None) -> str | None:
    from berth.cli.filters import to_json

    return to_json(values)


def prune(cli: Cli, path: str, argv: list[str]) -> int:
    from berth.cli.filters import parse_filter

    p = _parse(cli, path, "[OPTIONS]", [
        Flag("filter", "", LIST, conv=parse_filter, type_name="filter",
             help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
    ], argv, "Remove all stopped containers", no_args=True)
    if p is None:
        return 0
    o, _ = p
    if not o.force and not confirm(cli, "WARNING! This will remove all stopped containers.\n"
                                        "Are you sure you want to continue?"):
        raise StatusError(1, "container prune has been cancelled")
    report = cli.client.post_json("/containers/prune", {"filters": prune_filters(o.filter)}) or {}
    deleted = report.get("ContainersDeleted") or []  # type: ignore[attr-defined]
    out = ""
    reclaimed = 0
    if deleted:
        out = "Deleted Containers:\n" + "".join(f"{d}\n" for d in deleted)
        reclaimed = int(report.get("SpaceReclaimed") or 0)  # type: ignore[attr-defined]
    if out:
        cli.out(out)
    from berth.units import human_size

    cli.out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
