"""`ps` / `container ls`: `GET /containers/json`, rendered by docker's container formatter."""

from __future__ import annotations

from berth.cli.app import Cli, StatusError
from berth.cli.filters import parse_filter, to_json
from berth.cli.flags import BOOL, INT, LIST, STRING, Command, Flag

FLAGS = [
    Flag("quiet", "q", BOOL, help="Only display container IDs"),
    Flag("size", "s", BOOL, help="Display total file sizes"),
    Flag("all", "a", BOOL, help="Show all containers (default shows just running)"),
    Flag("no-trunc", "", BOOL, help="Don't truncate output"),
    Flag("latest", "l", BOOL, help="Show the latest created container (includes all states)"),
    Flag("last", "n", INT, default=-1, help="Show n last created containers (includes all states)"),
    Flag("format", "", STRING, help="Format output using a custom template"),
    Flag("filter", "f", LIST, conv=parse_filter, type_name="filter",
         help="Filter output based on conditions provided"),
]


def ps(cli: Cli, path: str, argv: list[str]) -> int:
    use = "ls [OPTIONS]" if path.endswith((" ls", " list")) else "[OPTIONS]"
    cmd = Command(path, use, FLAGS, no_args=True, short="List containers", bin_name=cli.bin_name)
    o, args = cmd.parse(argv)
    if o.help:
        cli.out(cmd.help_text(), end="")
        return 0
    cmd.check_args(args)
    from berth.cli.formatter import CONTAINER_HEADERS, ContainerContext, container_format, render
    from berth.cli.tmplerror import TemplateError

    fmt: str = o.format
    if not fmt:
        fmt = cli.config.get_str("psFormat")
    elif o.quiet:
        cli.err("WARNING: Ignoring custom format, because both --format and --quiet are set.", end="\n")
    size = bool(o.size)
    limit = o.last
    if o.latest and limit == -1:
        limit = 1
    if fmt:
        # docker runs the template once on an empty row to see whether it uses .Size (then asks for sizes)
        from berth.cli.formatter import _simple_parts, preformat

        parts = _simple_parts(preformat(fmt)[0]) if fmt not in ("table", "raw") else []
        if parts is not None:
            size_used = any(field == "Size" for _, field in parts)
        else:
            from berth.cli.template import Template

            probe = ContainerContext({})
            try:
                tmpl = Template(fmt)
            except TemplateError as e:
                raise StatusError(1, f"failed to parse template: {e}") from None
            try:
                tmpl.execute(probe)
            except Exception:
                pass
            size_used = probe.size_used
        if not o.quiet and not size and not o.changed("size") and size_used:
            size = True
    params: dict[str, object] = {"all": o.all or None, "size": size or None,
                                 "limit": str(limit) if limit != -1 else None, "filters": to_json(o.filter)}
    containers = cli.client.get_json("/containers/json", params)
    rows = [ContainerContext(c, trunc=not o.no_trunc) for c in containers or []]  # type: ignore[attr-defined]
    try:
        text = render(container_format(fmt, bool(o.quiet), size), rows, CONTAINER_HEADERS)
    except TemplateError as e:
        raise StatusError(1, str(e)) from None
    cli.stdout.write(text)
    return 0
