"""`inspect`, `container inspect`, `image inspect`: the daemon's JSON re-indented byte for byte as Go's
json.Indent does, or each object through a `--format` template (typed view first, as docker)."""

from __future__ import annotations

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _parse
from berth.cli.flags import BOOL, STRING, Flag
from berth.client.api import path_escape
from berth.client.errors import DaemonError, DaemonNotFound

TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")


def indent_json(raw: bytes, prefix: str = "", indent: str = "    ") -> str:
    """Go's json.Indent: keeps every token as written (escapes, number spelling, key order), puts one
    element per line, `"key": value`, and leaves empty objects and arrays as `{}` and `[]`."""
    text = raw.decode()
    out: list[str] = []
    depth = 0
    need_indent = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if need_indent and c not in "]}":
            need_indent = False
            depth += 1
            out.append("\n" + prefix + indent * depth)
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "{[":
            out.append(c)
            need_indent = True
        elif c == ",":
            out.append(",\n" + prefix + indent * depth)
        elif c == ":":
            out.append(": ")
        elif c in "}]":
            if need_indent:
                need_indent = False  # empty: "{}" / "[]"
            else:
                depth -= 1
                out.append("\n" + prefix + indent * depth)
            out.append(c)
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n,:]}"{[':
                j += 1
            out.append(text[i:j])
            i = j
            continue
        i += 1
    return "".join(out)


class _Inspector:
    """docker's inspect.Inspect: collect each object (JSON or template output), print, then errors."""

    def __init__(self, cli: Cli, fmt: str) -> None:
        self.cli = cli
        self.fmt = fmt
        self.raws: list[bytes] = []
        self.lines: list[str] = []
        self.tmpl = None
        if fmt and fmt != "json":
            from berth.cli.template import Template, TemplateError

            try:
                self.tmpl = Template(fmt, missing_key_error=True)
            except TemplateError as e:
                raise StatusError(64, f"template parsing error: {e}") from None

    def add(self, kind: str, raw: bytes) -> None:
        if self.tmpl is None:
            self.raws.append(raw)
            return
        import json

        from berth.cli.gotypes import typed_container, typed_image
        from berth.cli.template import TemplateError

        doc = json.loads(raw)
        typed = typed_container(doc) if kind == "container" else typed_image(doc) if kind == "image" else None
        try:
            self.lines.append(self.tmpl.execute(typed if typed is not None else doc) + "\n")
            return
        except TemplateError as e:
            if typed is None:
                raise _ElementError(f"template parsing error: {e}") from None
        # docker's tryRawInspectFallback: a template the typed object rejects (e.g. `.Id` where the Go
        # field is ID) runs on the raw JSON map instead, where a null prints "<no value>"
        try:
            self.lines.append(self.tmpl.execute(json.loads(raw)) + "\n")
        except TemplateError as e:
            raise _ElementError(f"template parsing error: {e}") from None

    def flush(self) -> None:
        out = self.cli.stdout
        if self.tmpl is not None:
            out.write("".join(self.lines) if self.lines else "\n")
            return
        if not self.raws:
            out.write("[]\n")
            return
        joined = b"[" + b",".join(self.raws) + b"]"
        if self.fmt == "json":
            import json

            out.write(json.dumps(json.loads(joined), separators=(",", ":"), ensure_ascii=False) + "\n")
            return
        out.write(indent_json(joined) + "\n")


class _ElementError(Exception):
    pass


def _fetch(cli: Cli, kind: str, ref: str, size: bool) -> bytes:
    client = cli.client
    esc = path_escape(ref)
    if kind == "container":
        if not ref:
            raise DaemonNotFound("No such container: ", 404)
        return client.request("GET", f"/containers/{esc}/json", {"size": True} if size else None).read()
    if kind == "image":
        if not ref:
            raise DaemonNotFound("No such image: ", 404)
        return client.request("GET", f"/images/{esc}/json").read()
    if kind == "network":
        return client.request("GET", f"/networks/{esc}").read()
    if kind == "volume":
        return client.request("GET", f"/volumes/{esc}").read()
    if kind == "plugin":
        return client.request("GET", f"/plugins/{esc}/json").read()
    path = {"service": "services", "task": "tasks", "node": "nodes", "secret": "secrets", "config": "configs"}[kind]
    return client.request("GET", f"/{path}/{esc}").read()


def _run(cli: Cli, refs: list[str], fmt: str, size: bool, type_constraint: str) -> int:
    insp = _Inspector(cli, fmt)
    errs: list[str] = []
    swarm: bool | None = None
    for ref in refs:
        found = False
        for kind in ("container", "image", "network", "volume", "service", "task", "node", "plugin", "secret",
                     "config"):
            if type_constraint and kind != type_constraint:
                continue
            if not type_constraint and kind in ("service", "task", "node", "secret", "config"):
                if swarm is None:
                    try:
                        info = cli.client.get_json("/info") or {}
                        swarm = bool((info.get("Swarm") or {}).get("ControlAvailable"))  # type: ignore[attr-defined]
                    except DaemonError as e:
                        cli.err(str(e))
                        swarm = False
                if not swarm:
                    continue
            try:
                raw = _fetch(cli, kind, ref, size)
            except DaemonError as e:
                msg = str(e)
                if not type_constraint and (isinstance(e, DaemonNotFound) or "not supported" in msg
                                            or "invalid reference format" in msg):
                    continue
                errs.append(msg)
                found = True
                break
            if size and kind != "container":
                cli.err(f"WARNING: --size ignored for {kind}")
            try:
                insp.add(kind, raw)
            except _ElementError as e:
                errs.append(str(e))
            found = True
            break
        if not found:
            errs.append(f"Error: No such object: {ref}")
    insp.flush()
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


_FLAGS = [
    Flag("format", "f", STRING, help="Format output using a custom template"),
    Flag("size", "s", BOOL, help="Display total file sizes if the type is container"),
    Flag("type", "", STRING, help="Only inspect objects of the given type"),
]


def inspect(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] NAME|ID [NAME|ID...]", _FLAGS, argv,
               "Return low-level information on berth objects", min_args=1)
    if p is None:
        return 0
    o, args = p
    if o.type and o.type not in TYPES:
        raise StatusError(1, f'unknown type: "{o.type}": must be one of "' + '", "'.join(TYPES) + '"')
    return _run(cli, args, o.format, bool(o.size), o.type)


def container_inspect(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", _FLAGS[:2], argv,
               "Display detailed information on one or more containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    return _run(cli, args, o.format, bool(o.size), "container")


def image_inspect(cli: Cli, path: str, argv: list[str]) -> int:
    platform = Flag("platform", "", STRING, api="1.49",
                    help="Inspect a specific platform of the multi-platform image.")
    p = _parse(cli, path, "[OPTIONS] IMAGE [IMAGE...]", [_FLAGS[0], platform], argv,
               "Display detailed information on one or more images", min_args=1)
    if p is None:
        return 0
    o, args = p
    return _run(cli, args, o.format, False, "image")
