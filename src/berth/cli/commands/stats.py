"""`stats`: container resource usage, computed from stats frames with docker's formulas."""

from __future__ import annotations

import time

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _cpath, _parse
from berth.cli.flags import BOOL, STRING, Flag
from berth.client.errors import DaemonError

TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


def compute(frame: dict[str, object]) -> dict[str, float]:
    """cli/command/container/stats_helpers.go: CPU %, memory less inactive file, net and block I/O."""
    cpu = frame.get("cpu_stats") or {}
    pre = frame.get("precpu_stats") or {}
    usage = (cpu.get("cpu_usage") or {})  # type: ignore[attr-defined]
    pre_usage = (pre.get("cpu_usage") or {})  # type: ignore[attr-defined]
    cpu_delta = float(usage.get("total_usage") or 0) - float(pre_usage.get("total_usage") or 0)
    sys_delta = float(cpu.get("system_cpu_usage") or 0) - float(pre.get("system_cpu_usage") or 0)  # type: ignore[attr-defined]
    online = float(cpu.get("online_cpus") or 0) or float(len(usage.get("percpu_usage") or []))  # type: ignore[attr-defined]
    cpu_pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = frame.get("memory_stats") or {}
    mstats = mem.get("stats") or {}  # type: ignore[attr-defined]
    used = float(mem.get("usage") or 0)  # type: ignore[attr-defined]
    if "total_inactive_file" in mstats and mstats["total_inactive_file"] < used:
        used -= float(mstats["total_inactive_file"])
    elif "inactive_file" in mstats and mstats["inactive_file"] < used:
        used -= float(mstats["inactive_file"])
    limit = float(mem.get("limit") or 0)  # type: ignore[attr-defined]
    rx = tx = 0.0
    for net in (frame.get("networks") or {}).values():  # type: ignore[attr-defined]
        rx += float(net.get("rx_bytes") or 0)
        tx += float(net.get("tx_bytes") or 0)
    blk_r = blk_w = 0.0
    for e in (frame.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:  # type: ignore[attr-defined]
        op = str(e.get("op") or "")
        if op[:1] in ("r", "R"):
            blk_r += float(e.get("value") or 0)
        elif op[:1] in ("w", "W"):
            blk_w += float(e.get("value") or 0)
    return {"cpu": cpu_pct, "mem": used, "limit": limit, "memperc": used / limit * 100.0 if limit else 0.0,
            "rx": rx, "tx": tx, "blkr": blk_r, "blkw": blk_w,
            "pids": float((frame.get("pids_stats") or {}).get("current") or 0)}  # type: ignore[attr-defined]


class StatsContext:
    _fields = ("Container", "Name", "ID", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")

    def __init__(self, container: str, name: str, cid: str, values: dict[str, float] | None, trunc: bool) -> None:
        self.container, self.name, self.cid, self.v, self.trunc = container, name, cid, values, trunc

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k)() for k in sorted(self._fields)}

    def Container(self) -> str:
        return self.container

    def Name(self) -> str:
        return self.name[1:] if self.name.startswith("/") else (self.name or "--")

    def ID(self) -> str:
        return self.cid[:12] if self.trunc else self.cid

    def CPUPerc(self) -> str:
        return "--" if self.v is None else f"{self.v['cpu']:.2f}%"

    def MemUsage(self) -> str:
        from berth.units import bytes_size

        return "-- / --" if self.v is None else f"{bytes_size(self.v['mem'])} / {bytes_size(self.v['limit'])}"

    def MemPerc(self) -> str:
        return "--" if self.v is None else f"{self.v['memperc']:.2f}%"

    def NetIO(self) -> str:
        from berth.units import human_size

        return "--" if self.v is None else f"{human_size(self.v['rx'], 3)} / {human_size(self.v['tx'], 3)}"

    def BlockIO(self) -> str:
        from berth.units import human_size

        return "--" if self.v is None else f"{human_size(self.v['blkr'], 3)} / {human_size(self.v['blkw'], 3)}"

    def PIDs(self) -> str:
        return "--" if self.v is None else str(int(self.v["pids"]))


def stats(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] [CONTAINER...]", [
        Flag("all", "a", BOOL, help="Show all containers (default shows just running)"),
        Flag("no-stream", "", BOOL, help="Disable streaming stats and only pull the first result"),
        Flag("no-trunc", "", BOOL, help="Do not truncate output"),
        Flag("format", "", STRING, help="Format output using a custom template"),
    ], argv, "Display a live stream of container(s) resource usage statistics")
    if p is None:
        return 0
    o, names = p
    from berth.cli.formatter import render

    client = cli.client
    targets: list[str] = list(names)
    if not targets:
        for c in client.get_json("/containers/json", {"all": o.all or None}) or []:  # type: ignore[attr-defined]
            targets.append(str(c["Id"]))
    fmt = o.format or cli.config.get_str("statsFormat") or TABLE
    if fmt == "table":
        fmt = TABLE
    trunc = not o.no_trunc
    if o.no_stream:
        rows = []
        errs = []
        for t in targets:
            try:
                frame = client.get_json(_cpath(t, "stats"), {"stream": False})
            except DaemonError as e:
                errs.append(str(e))
                continue
            assert isinstance(frame, dict)
            rows.append(StatsContext(t, str(frame.get("name") or ""), str(frame.get("id") or ""), compute(frame),
                                     trunc))
        cli.stdout.write(render(fmt, rows, HEADERS))
        if errs:
            raise StatusError(1, "\n".join(errs))
        return 0
    return _stream(cli, targets, fmt, trunc)


def _stream(cli: Cli, targets: list[str], fmt: str, trunc: bool) -> int:
    import select

    from berth.cli.formatter import render

    client = cli.client
    streams = {}
    latest: dict[str, StatsContext] = {}
    for t in targets:
        resp = client.request("GET", _cpath(t, "stats"), {"stream": True})
        streams[resp.conn.sock.fileno()] = (t, resp, resp.iter_json())
        latest[t] = StatsContext(t, "", "", None, trunc)
    tty = cli.is_tty_out()
    last_draw = 0.0
    while streams:
        ready = select.select(list(streams), [], [], 1.0)[0]
        for fd in ready:
            t, resp, it = streams[fd]
            try:
                frame = next(it)
            except (StopIteration, OSError):
                del streams[fd]
                continue
            if isinstance(frame, dict):
                latest[t] = StatsContext(t, str(frame.get("name") or ""), str(frame.get("id") or ""),
                                         compute(frame), trunc)
            # frames may already be buffered behind this one
            while resp.conn.buf and fd in streams:
                try:
                    frame = next(it)
                except (StopIteration, OSError):
                    del streams[fd]
                    break
                if isinstance(frame, dict):
                    latest[t] = StatsContext(t, str(frame.get("name") or ""), str(frame.get("id") or ""),
                                             compute(frame), trunc)
        now = time.monotonic()
        if now - last_draw >= 0.5:
            text = render(fmt, [latest[t] for t in targets], HEADERS)
            cli.stdout.write(("\x1b[2J\x1b[H" if tty else "") + text)
            cli.stdout.flush()
            last_draw = now
    return 0
