"""Image commands: images/ls, rmi, tag, save, load, import, history, prune, pull, push, bootstrap."""

from __future__ import annotations

import os

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _parse, confirm
from berth.cli.filters import parse_filter, to_json
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.client.api import path_escape
from berth.client.errors import DaemonError, DaemonNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from berth.oci.reference import Reference


def images(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] [REPOSITORY[:TAG]]", [
        Flag("quiet", "q", BOOL, help="Only show image IDs"),
        Flag("all", "a", BOOL, help="Show all images (default hides intermediate images)"),
        Flag("no-trunc", "", BOOL, help="Don't truncate output"),
        Flag("digests", "", BOOL, help="Show digests"),
        Flag("format", "", STRING, help="Format output using a custom template"),
        Flag("filter", "f", LIST, conv=parse_filter, type_name="filter",
             help="Filter output based on conditions provided"),
        Flag("tree", "", BOOL, api="1.47", help="List multi-platform images as a tree (EXPERIMENTAL)"),
    ], argv, "List images", max_args=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.formatter import IMAGE_HEADERS, image_format, image_rows, render
    from berth.cli.tmplerror import TemplateError

    filters = list(o.filter or [])
    if args:
        filters.append(("reference", args[0]))
    params = {"all": o.all or None, "filters": to_json(filters)}
    imgs = cli.client.get_json("/images/json", params) or []
    fmt = o.format
    if not fmt:
        fmt = cli.config.get_str("imagesFormat") if not o.quiet else ""
        fmt = fmt or "table"
    final = image_format(fmt, bool(o.quiet), bool(o.digests))
    rows = image_rows(imgs, not o.no_trunc, bool(o.digests), final)  # type: ignore[arg-type]
    # docker's default tables say `{{if .CreatedSince}}…{{else}}N/A{{end}}`: the same through a plain field
    shown = final.replace("{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}", "{{.CreatedSinceOrNA}}")
    try:
        cli.stdout.write(render(shown, rows, {**IMAGE_HEADERS, "CreatedSinceOrNA": "CREATED"}))
    except TemplateError as e:
        raise StatusError(1, str(e)) from None
    if args and not imgs and path.endswith(" images") and args[0] in (
            "build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save",
            "tag"):
        cli.err(f'\nNo images found matching "{args[0]}": did you mean "{cli.bin_name} image {args[0]}"?')
    return 0


def rmi(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] IMAGE [IMAGE...]", [
        Flag("force", "f", BOOL, help="Force removal of the image"),
        Flag("no-prune", "", BOOL, help="Do not delete untagged parents"),
        Flag("platform", "", LIST, api="1.50", help="Remove only the given platform variant"),
    ], argv, "Remove one or more images", min_args=1)
    if p is None:
        return 0
    o, args = p
    errs: list[str] = []
    fatal = False
    for img in args:
        params = {"force": o.force or None, "noprune": o.no_prune or None}
        try:
            dels = cli.client.delete(f"/images/{path_escape(img)}", params) or []
        except DaemonError as e:
            if not isinstance(e, DaemonNotFound):
                fatal = True
            errs.append(str(e))
            continue
        for d in dels:  # type: ignore[attr-defined]
            if d.get("Deleted"):
                cli.out(f"Deleted: {d['Deleted']}")
            else:
                cli.out(f"Untagged: {d.get('Untagged', '')}")
    if errs:
        if not o.force or fatal:
            raise StatusError(1, "\n".join(errs))
        cli.err("\n".join(errs))
    return 0


def tag(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", [], argv,
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", exact=2)
    if p is None:
        return 0
    from berth.errors import InvalidArgument
    from berth.oci.reference import parse as parse_normalized

    source, target = p[1]
    try:
        parse_normalized(source) if not source.startswith("sha256:") else None
    except InvalidArgument as e:
        if not _is_id_ref(source):
            raise StatusError(1, f'Error parsing reference: "{source}" is not a valid repository/tag: {e}') from None
    try:
        ref = parse_normalized(target)
    except InvalidArgument as e:
        raise StatusError(1, f'Error parsing reference: "{target}" is not a valid repository/tag: {e}') from None
    if ref.digest:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    ref = ref.with_default_tag()
    cli.client.post(f"/images/{path_escape(source)}/tag", {"repo": ref.name, "tag": ref.tag})
    return 0


def _is_id_ref(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s) and 0 < len(s) <= 64


def save(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] IMAGE [IMAGE...]", [
        Flag("output", "o", STRING, help="Write to a file, instead of STDOUT"),
        Flag("platform", "", LIST, api="1.48", help="Save only the given platform(s)"),
    ], argv, "Save one or more images to a tar archive (streamed to STDOUT by default)", min_args=1)
    if p is None:
        return 0
    o, args = p
    if not o.output and cli.is_tty_out():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    from berth.cli.streams_out import copy_to_output

    resp = cli.client.request("GET", "/images/get", {"names": args})
    copy_to_output(cli, resp.iter_raw(), o.output, "failed to save image")
    return 0


def _file_chunks(f: object, size: int = 1 << 20):
    while True:
        data = f.read(size)  # type: ignore[attr-defined]
        if not data:
            return
        yield data


def _display(cli: Cli, stream: object, to_stderr: bool = False, quiet: bool = False) -> None:
    """Render a progress stream (or, quiet, only check it for an error); an error exits 1."""
    from berth.cli.jsonmessage import JSONMessageError, display_stream
    from berth.cli.pull import stream_writer

    if quiet:
        write, tty, width = (lambda s: None), False, 200
    else:
        write, tty, width = stream_writer(cli, to_stderr)
    try:
        display_stream(stream, write, tty, width)  # type: ignore[arg-type]
    except JSONMessageError as e:
        raise StatusError(1, e.message) from None


def _registry_ref(cli: Cli, text: str, all_tags: bool, quiet: bool) -> Reference:
    """The reference pull and push work on: normalized, with "latest" added unless --all-tags."""
    from berth.errors import InvalidArgument
    from berth.oci.reference import parse as parse_normalized

    try:
        ref = parse_normalized(text)
    except InvalidArgument as e:
        raise StatusError(1, str(e)) from None
    name_only = not ref.tag and not ref.digest
    if all_tags and not name_only:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not all_tags and name_only:
        ref = ref.with_default_tag()
        if not quiet:
            cli.out(f"Using default tag: {ref.tag}")
    return ref


def load(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [
        Flag("input", "i", STRING, help="Read from tar archive file, instead of STDIN"),
        Flag("quiet", "q", BOOL, help="Suppress the load output"),
        Flag("platform", "", LIST, api="1.48", help="Load only the given platform(s)"),
    ], argv, "Load an image from a tar archive or STDIN", no_args=True)
    if p is None:
        return 0
    o, _ = p
    if o.input:
        try:
            src: BinaryIO = open(o.input, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as e:
            raise StatusError(1, f"open {o.input}: {(e.strerror or str(e)).lower()}") from None
    else:
        if cli.is_tty_in():
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        src = cli.stdin.buffer
    quiet = bool(o.quiet) or not cli.is_tty_out()
    params: dict[str, object] = {"quiet": True} if quiet else {}
    if o.platform:
        import json

        params["platform"] = [json.dumps(_platform(pl), separators=(",", ":")) for pl in o.platform]
    with src:
        resp = cli.client.request("POST", "/images/load", params, body=_file_chunks(src),
                                  headers={"Content-Type": "application/x-tar"})
        if resp.header("content-type") == "application/json":
            _display(cli, resp.iter_json())
        else:
            from berth.cli.streams_out import copy_to_output

            copy_to_output(cli, resp.iter_raw(), "", "")
    return 0


def _platform(text: str) -> dict[str, str]:
    parts = text.split("/")
    out = {"architecture": parts[1] if len(parts) > 1 else "", "os": parts[0]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def import_(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", [
        Flag("change", "c", LIST, help="Apply Dockerfile instruction to the created image"),
        Flag("message", "m", STRING, help="Set commit message for imported image"),
        Flag("platform", "", STRING, help="Set platform if server is multi-platform capable"),
    ], argv, "Import the contents from a tarball to create a filesystem image", min_args=1, max_args=2)
    if p is None:
        return 0
    o, args = p
    source = args[0]
    ref = args[1] if len(args) > 1 else ""
    if ref:
        from berth.errors import InvalidArgument
        from berth.oci.reference import parse as parse_normalized

        try:
            parse_normalized(ref)
        except InvalidArgument as e:
            raise StatusError(1, str(e)) from None
    params: dict[str, object] = {"repo": ref or None, "message": o.message or None,
                                 "platform": o.platform.lower() if o.platform else None, "changes": o.change or None}
    body = None
    src = None
    if source == "-":
        params["fromSrc"] = "-"
        src = cli.stdin.buffer
    elif source.startswith(("http://", "https://")):
        params["fromSrc"] = source
    else:
        params["fromSrc"] = "-"
        try:
            src = open(source, "rb")  # noqa: SIM115 - read while the request streams
        except OSError as e:
            raise StatusError(1, f"open {source}: {(e.strerror or str(e)).lower()}") from None
    if src is not None:
        body = _file_chunks(src)
    resp = cli.client.request("POST", "/images/create", params, body=body,
                              headers={"Content-Type": "text/plain"} if body is not None else None)
    _display(cli, resp.iter_json())
    return 0


def history(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] IMAGE", [
        Flag("human", "H", BOOL, default=True, help="Print sizes and dates in human readable format"),
        Flag("quiet", "q", BOOL, help="Only show image IDs"),
        Flag("no-trunc", "", BOOL, help="Don't truncate output"),
        Flag("format", "", STRING, help="Format output using a custom template"),
        Flag("platform", "", STRING, api="1.48", help="Show history for the given platform"),
    ], argv, "Show the history of an image", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.formatter import Context, ellipsis, render, truncate_id
    from berth.units import human_duration, human_size

    params = None
    if o.platform:
        import json

        params = {"platform": json.dumps(_platform(o.platform), separators=(",", ":"))}
    items = cli.client.get_json(f"/images/{path_escape(args[0])}/history", params) or []
    human = bool(o.human)
    trunc = not o.no_trunc

    class HistoryContext(Context):
        _fields = ("ID", "CreatedSince", "CreatedAt", "CreatedBy", "Size", "Comment")

        def __init__(self, h: dict[str, object]) -> None:
            self.h = h

        def ID(self) -> str:
            i = str(self.h.get("Id") or "")
            return truncate_id(i) if trunc else i

        def CreatedAt(self) -> str:
            import time

            t = time.localtime(int(self.h.get("Created") or 0))  # type: ignore[call-overload]
            off = t.tm_gmtoff or 0
            zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
            return time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone

        def CreatedSince(self) -> str:
            if not human:
                return self.CreatedAt()
            import time

            created = int(self.h.get("Created") or 0)  # type: ignore[call-overload]
            if created <= 946684800:
                return "N/A"
            return human_duration(time.time() - created) + " ago"

        def CreatedBy(self) -> str:
            s = str(self.h.get("CreatedBy") or "").replace("\t", " ")
            return ellipsis(s, 45) if trunc else s

        def Size(self) -> str:
            n = int(self.h.get("Size") or 0)  # type: ignore[call-overload]
            return human_size(n, 3) if human else str(n)

        def Comment(self) -> str:
            return str(self.h.get("Comment") or "")

    fmt = o.format or "table"
    if fmt == "table":
        fmt = "{{.ID}}" if o.quiet else (
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}" if human
            else "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
    headers = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
               "Size": "SIZE", "Comment": "COMMENT"}
    cli.stdout.write(render(fmt, [HistoryContext(h) for h in items], headers))  # type: ignore[attr-defined]
    return 0


def prune(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS]", [
        Flag("all", "a", BOOL, help="Remove all unused images, not just dangling ones"),
        Flag("filter", "", LIST, conv=parse_filter, type_name="filter",
             help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", BOOL, help="Do not prompt for confirmation"),
    ], argv, "Remove unused images", no_args=True)
    if p is None:
        return 0
    o, _ = p
    reclaimed, output = prune_images(cli, bool(o.all), list(o.filter or []), bool(o.force))
    if output:
        cli.out(output)
    from berth.units import human_size

    cli.out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def prune_images(cli: Cli, all_: bool, filters: list[tuple[str, str]], force: bool,
                 confirmed: bool = False) -> tuple[int, str]:
    filters = [f for f in filters if f[0] != "dangling"] + [("dangling", "false" if all_ else "true")]
    if not force and not confirmed:
        warning = ("WARNING! This will remove all images without at least one container associated to them."
                   if all_ else "WARNING! This will remove all dangling images.")
        if not confirm(cli, warning + "\nAre you sure you want to continue?"):
            raise StatusError(1, "image prune has been cancelled")
    report = cli.client.post_json("/images/prune", {"filters": to_json(filters)}) or {}
    deleted = report.get("ImagesDeleted") or []  # type: ignore[attr-defined]
    out = ""
    reclaimed = 0
    if deleted:
        out = "Deleted Images:\n"
        for d in deleted:
            if d.get("Untagged"):
                out += f"untagged: {d['Untagged']}\n"
            if d.get("Deleted"):
                out += f"deleted: {d['Deleted']}\n"
        reclaimed = int(report.get("SpaceReclaimed") or 0)  # type: ignore[attr-defined]
    return reclaimed, out


def pull(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] NAME[:TAG|@DIGEST]", [
        Flag("all-tags", "a", BOOL, help="Download all tagged images in the repository"),
        Flag("quiet", "q", BOOL, help="Suppress verbose output"),
        Flag("platform", "", STRING, default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""), api="1.32",
             help="Set platform if server is multi-platform capable"),
        Flag("disable-content-trust", "", BOOL, default=True, help="Skip image verification (default true)"),
    ], argv, "Download an image from a registry", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.pull import registry_auth

    ref = _registry_ref(cli, args[0], o.all_tags, o.quiet)
    params: dict[str, object] = {"fromImage": ref.name, "tag": (ref.digest or ref.tag) or None,
                                 "platform": o.platform or None}
    stream = cli.client.stream_json("POST", "/images/create", params,
                                    headers={"X-Registry-Auth": registry_auth(cli, ref)})
    _display(cli, stream, quiet=o.quiet)
    cli.out(str(ref))
    return 0


def push(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] NAME[:TAG]", [
        Flag("all-tags", "a", BOOL, help="Push all tags of an image to the repository"),
        Flag("quiet", "q", BOOL, help="Suppress verbose output"),
        Flag("platform", "", STRING, api="1.46", help="Push a platform-specific manifest as a single-platform image"),
        Flag("disable-content-trust", "", BOOL, default=True, help="Skip image signing (default true)"),
    ], argv, "Upload an image to a registry", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.pull import registry_auth

    ref = _registry_ref(cli, args[0], o.all_tags, o.quiet)
    if ref.digest:
        raise StatusError(1, "cannot push a digest reference")
    params: dict[str, object] = {"tag": ref.tag if not o.all_tags else None}
    if o.platform:
        import json

        params["platform"] = json.dumps(_platform(o.platform), separators=(",", ":"))
    resp = cli.client.request("POST", f"/images/{ref.name}/push", params,
                              headers={"X-Registry-Auth": registry_auth(cli, ref)})
    _display(cli, resp.iter_json(), quiet=o.quiet)
    if o.quiet:
        cli.out(str(ref))
    return 0


def bootstrap(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "busybox|debian", [
        Flag("output", "o", STRING, help="Write the image tarball here instead of loading it"),
    ], argv, "Make a base image from this machine's packages and load it", exact=1)
    if p is None:
        return 0
    o, args = p
    name = args[0]
    if name not in ("busybox", "debian"):
        raise StatusError(1, f'unknown image "{name}": must be one of "busybox", "debian"')
    try:
        from berth.image import bootstrap as boot
    except ImportError:
        raise StatusError(1, "berth image bootstrap is not available yet: berth.image.bootstrap is not "
                             "installed in this build") from None
    make = getattr(boot, name, None)
    if make is None:
        raise StatusError(1, f"berth image bootstrap: berth.image.bootstrap has no {name}() yet")
    import tempfile

    if o.output:
        make(o.output)
        return 0
    with tempfile.TemporaryDirectory(prefix="berth-bootstrap-") as tmp:
        tar = os.path.join(tmp, f"{name}.tar")
        make(tar)
        with open(tar, "rb") as src:
            resp = cli.client.request("POST", "/images/load", {"quiet": True}, body=_file_chunks(src),
                                      headers={"Content-Type": "application/x-tar"})
            _display(cli, resp.iter_json())
    return 0
