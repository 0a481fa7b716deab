"""docker's formatter package: the `--format` contexts for `ps` and `images` (the fields a template
sees), and table rendering through the Go tabwriter with docker's header row."""

from __future__ import annotations

import time

from berth.cli.tabwriter import tabulate
from berth.cli.tmplerror import TemplateError
from berth.units import human_duration, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def truncate_id(id_: str) -> str:
    """stringid.TruncateID: drop an algorithm prefix, keep 12 characters."""
    if ":" in id_:
        id_ = id_.split(":", 1)[1]
    return id_[:12]


def ellipsis(s: str, width: int) -> str:
    """formatter.Ellipsis: cut to `width` display columns, ending with "…"."""
    if width <= 0:
        return ""
    if width == 1:
        return s[:1]
    from berth.cli.tabwriter import text_width

    if text_width(s) <= width:
        return s
    out = ""
    w = 0
    for ch in s:
        cw = text_width(ch)
        if w + cw > width - 1:
            break
        out += ch
        w += cw
    return out + "…"


def go_time_string(ts: float) -> str:
    """Go's time.Time.String for a unix time, in local time ("2006-01-02 15:04:05 -0700 MST")."""
    t = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", t) + (t.tm_zone or time.strftime("%Z", t))


def go_quote(s: str) -> str:
    """strconv.Quote for the common cases (JSON escaping matches Go for printable ASCII)."""
    import json

    return json.dumps(s, ensure_ascii=False)


class Context:
    """A template context: public methods without arguments are its fields (and its JSON)."""

    _fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name)() for name in sorted(self._fields)}


# -- containers --------------------------------------------------------------------------------------

CONTAINER_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}


def container_format(source: str, quiet: bool, size: bool) -> str:
    if source in ("table", ""):
        if quiet:
            return "{{.ID}}"
        return CONTAINER_TABLE + ("\t{{.Size}}" if size else "")
    if source == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        f = ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n"
             "state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
             "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n")
        return f + ("size: {{.Size}}\\n" if size else "")
    return "{{.ID}}" if quiet else source


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def displayable_ports(ports: list[dict[str, object]]) -> str:
    """formatter.DisplayablePorts: "0.0.0.0:8080->80/tcp, 9000-9001/tcp"."""
    def key(p: dict[str, object]) -> tuple[int, str, int, str]:
        return (int(p.get("PrivatePort") or 0), str(p.get("IP") or ""),  # type: ignore[call-overload]
                int(p.get("PublicPort") or 0), str(p.get("Type") or ""))  # type: ignore[call-overload]

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for p in sorted(ports, key=key):
        current = int(p.get("PrivatePort") or 0)  # type: ignore[call-overload]
        ptype = str(p.get("Type") or "")
        ip = str(p.get("IP") or "")
        pkey = ptype
        if ip:
            public = int(p.get("PublicPort") or 0)  # type: ignore[call-overload]
            if public != current:
                host_mappings.append(f"{_join_host_port(ip, str(public))}->{current}/{ptype}")
                continue
            pkey = f"{ip}/{ptype}"
        g = groups.get(pkey)
        if g is None:
            groups[pkey] = [current, current]
            order.append(pkey)
            continue
        if current == g[1] + 1:
            g[1] = current
            continue
        result.append(_form_group(pkey, g[0], g[1]))
        groups[pkey] = [current, current]
    for pkey in order:
        g = groups[pkey]
        result.append(_form_group(pkey, g[0], g[1]))
    return ", ".join(result + host_mappings)


def _form_group(key: str, start: int, last: int) -> str:
    parts = key.split("/")
    gtype, ip = parts[0], ""
    if len(parts) > 1:
        ip, gtype = parts[0], parts[1]
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{gtype}"


class ContainerContext(Context):
    _fields = ("ID", "Names", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "State", "Status", "Size",
               "Labels", "Mounts", "LocalVolumes", "Networks", "Platform")

    def __init__(self, c: dict[str, object], trunc: bool = True) -> None:
        self.c = c
        self.trunc = trunc
        self.size_used = False

    def ID(self) -> str:
        cid = str(self.c.get("Id", ""))
        return truncate_id(cid) if self.trunc else cid

    def Names(self) -> str:
        names = [str(n)[1:] for n in (self.c.get("Names") or [])]  # type: ignore[attr-defined]
        if self.trunc:
            for n in names:
                if len(n.split("/")) == 1:
                    names = [n]
                    break
        return ",".join(names)

    def Image(self) -> str:
        image = str(self.c.get("Image") or "")
        if not image:
            return "<no image>"
        if self.trunc:
            trunc = truncate_id(str(self.c.get("ImageID") or ""))
            if trunc == truncate_id(image):
                return trunc
            from berth.oci.reference import parse as parse_normalized

            try:
                ref = parse_normalized(image)
            except Exception:
                return image
            if ref.tag:
                return f"{ref.familiar_name()}:{ref.tag}"
            return ref.familiar_name()
        return image

    def Command(self) -> str:
        cmd = str(self.c.get("Command") or "")
        if self.trunc:
            cmd = ellipsis(cmd, 20)
        return go_quote(cmd)

    def CreatedAt(self) -> str:
        return go_time_string(int(self.c.get("Created") or 0))  # type: ignore[call-overload]

    def RunningFor(self) -> str:
        return human_duration(time.time() - int(self.c.get("Created") or 0)) + " ago"  # type: ignore[call-overload]

    def Ports(self) -> str:
        return displayable_ports(list(self.c.get("Ports") or []))  # type: ignore[call-overload]

    def State(self) -> str:
        return str(self.c.get("State") or "")

    def Status(self) -> str:
        return str(self.c.get("Status") or "")

    def Size(self) -> str:
        self.size_used = True
        srw = human_size(int(self.c.get("SizeRw") or 0), 3)  # type: ignore[call-overload]
        root = int(self.c.get("SizeRootFs") or 0)  # type: ignore[call-overload]
        return f"{srw} (virtual {human_size(root, 3)})" if root > 0 else srw

    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))  # type: ignore[attr-defined]

    def Label(self, name: str) -> str:
        labels = self.c.get("Labels") or {}
        return str(labels.get(name, ""))  # type: ignore[attr-defined]

    def Mounts(self) -> str:
        out = []
        for m in self.c.get("Mounts") or []:  # type: ignore[attr-defined]
            name = m.get("Name") or m.get("Source") or ""
            out.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(out)

    def LocalVolumes(self) -> str:
        mounts: list[dict[str, object]] = self.c.get("Mounts") or []  # type: ignore[assignment]
        return str(sum(1 for m in mounts if m.get("Driver") == "local"))

    def Networks(self) -> str:
        ns = self.c.get("NetworkSettings") or {}
        return ",".join((ns.get("Networks") or {}).keys())  # type: ignore[attr-defined]

    def Platform(self) -> object:
        desc = self.c.get("ImageManifestDescriptor") or {}
        p = desc.get("platform") if isinstance(desc, dict) else None
        if not p:
            return None
        s = f"{p.get('os', '')}/{p.get('architecture', '')}"
        return s + (f"/{p['variant']}" if p.get("variant") else "")


# -- images ------------------------------------------------------------------------------------------

IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}"
               "\t{{.Size}}")
IMAGE_TABLE_DIGEST = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}"
                      "{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}


def image_format(source: str, quiet: bool, digest: bool) -> str:
    if source == "table":
        return "{{.ID}}" if quiet else (IMAGE_TABLE_DIGEST if digest else IMAGE_TABLE)
    if source == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        if digest:
            return ("repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\n"
                    "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\n"
                "virtual_size: {{.Size}}\n")
    if source.startswith("table") and digest and "{{.Digest}}" not in source:
        source += "\t{{.Digest}}"
    return source


class ImageContext(Context):
    _fields = ("ID", "Repository", "Tag", "Digest", "CreatedSince", "CreatedAt", "Size", "Containers",
               "VirtualSize", "SharedSize", "UniqueSize")

    def __init__(self, img: dict[str, object], repo: str, tag: str, digest: str, trunc: bool = True) -> None:
        self.i = img
        self.repo, self.tag, self.digest, self.trunc = repo, tag, digest, trunc

    def _int(self, key: str, default: int = 0) -> int:
        v = self.i.get(key)
        return int(v) if isinstance(v, (int, float)) else default

    def ID(self) -> str:
        iid = str(self.i.get("Id", ""))
        return truncate_id(iid) if self.trunc else iid

    def Repository(self) -> str:
        return self.repo

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def CreatedSince(self) -> str:
        created = self._int("Created")
        return human_duration(time.time() - created) + " ago"

    def CreatedAt(self) -> str:
        return go_time_string(self._int("Created"))

    def CreatedSinceOrNA(self) -> str:
        return self.CreatedSince() or "N/A"

    def Size(self) -> str:
        return human_size(self._int("Size"), 3)

    def Containers(self) -> str:
        n = self._int("Containers", -1)
        return "N/A" if n == -1 else str(n)

    def VirtualSize(self) -> str:
        return human_size(self._int("Size"))

    def SharedSize(self) -> str:
        n = self._int("SharedSize", -1)
        return "N/A" if n == -1 else human_size(n)

    def UniqueSize(self) -> str:
        size, shared = self._int("Size", -1), self._int("SharedSize", -1)
        return "N/A" if size == -1 or shared == -1 else human_size(size - shared)


def image_rows(images: list[dict[str, object]], trunc: bool, digest_flag: bool, fmt: str) -> list[ImageContext]:
    """One row per repository:tag (and digest when asked), as docker's imageFormat expands them."""
    from berth.oci.reference import parse as parse_normalized

    need_digest = digest_flag or "{{.Digest}}" in fmt
    rows: list[ImageContext] = []
    for img in images:
        tags = list(img.get("RepoTags") or [])  # type: ignore[call-overload]
        digests = list(img.get("RepoDigests") or [])  # type: ignore[call-overload]
        if (not tags and not digests) or (tags == ["<none>:<none>"] and digests == ["<none>@<none>"]):
            rows.append(ImageContext(img, "<none>", "<none>", "<none>", trunc))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for t in tags:
            try:
                ref = parse_normalized(str(t))
            except Exception:
                continue
            if ref.tag:
                repo_tags.setdefault(ref.familiar_name(), []).append(ref.tag)
        for d in digests:
            try:
                ref = parse_normalized(str(d))
            except Exception:
                continue
            if ref.digest:
                repo_digests.setdefault(ref.familiar_name(), []).append(ref.digest)
        for repo, rtags in repo_tags.items():
            ds = repo_digests.pop(repo, [])
            if not need_digest:
                ds = []
            for tag in rtags:
                if not ds:
                    rows.append(ImageContext(img, repo, tag, "<none>", trunc))
                for d in ds:
                    rows.append(ImageContext(img, repo, tag, d, trunc))
        for repo, ds in repo_digests.items():
            if digest_flag:
                for d in ds:
                    rows.append(ImageContext(img, repo, "<none>", d, trunc))
            else:
                rows.append(ImageContext(img, repo, "<none>", "", trunc))
    return rows


# -- rendering ---------------------------------------------------------------------------------------


def preformat(fmt: str) -> tuple[str, bool]:
    """docker's Context.preFormat: strip a `table` prefix (returns is_table), map `json` to `{{json .}}`,
    trim spaces and turn the two-character `\\t` and `\\n` into real tabs and newlines."""
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[5:]
    elif fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.strip(" ")
    return fmt.replace("\\t", "\t").replace("\\n", "\n"), is_table


def _simple_parts(body: str) -> list[tuple[str, str]] | None:
    """(literal, field) pairs when every action is a bare `{{.Field}}`, else None (use the engine)."""
    parts: list[tuple[str, str]] = []
    rest = body
    while True:
        i = rest.find("{{")
        if i < 0:
            parts.append((rest, ""))
            return parts
        j = rest.find("}}", i)
        if j < 0:
            return None
        inner = rest[i + 2:j].strip(" ")
        if not inner.startswith(".") or not inner[1:].isidentifier():
            return None
        parts.append((rest[:i], inner[1:]))
        rest = rest[j + 2:]


class _NotSimple(Exception):
    pass


def _render_simple(parts: list[tuple[str, str]], row: object) -> str:
    out = []
    for lit, field in parts:
        out.append(lit)
        if field:
            method = getattr(row, field, None) if not field.startswith("_") else None
            if method is None or not callable(method):
                raise _NotSimple
            value = method()
            if not isinstance(value, str):
                raise _NotSimple
            out.append(value)
    return "".join(out)


def render(fmt: str, rows: Iterable[object], headers: dict[str, str] | None = None) -> str:
    """docker's Context.Write: each row through the template (one line each); for `table …` formats,
    a header row rendered from `headers`, the whole aligned by the tabwriter. Formats made only of
    `{{.Field}}` actions (docker's default tables) skip the template engine: `ps` starts faster."""
    body, is_table = preformat(fmt)
    rows = list(rows)
    parts = _simple_parts(body)
    if parts is not None:
        try:
            lines = [_render_simple(parts, row) + "\n" for row in rows]
        except _NotSimple:
            pass
        else:
            if not is_table:
                return "".join(lines)
            hdr = headers or {}
            header = "".join(lit + (hdr.get(field, "<no value>") if field else "") for lit, field in parts)
            return tabulate(header + "\n" + "".join(lines))
    from berth.cli.template import Template
    from berth.cli.tmplfuncs import HEADER_FUNCS

    try:
        tmpl = Template(body)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None
    lines = []
    for row in rows:
        try:
            lines.append(tmpl.execute(row) + "\n")
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None
    if not is_table:
        return "".join(lines)
    # docker ignores header errors, keeping what was rendered before the failing action
    header = Template(body, funcs=HEADER_FUNCS).execute_partial(headers or {})[0]
    return tabulate(header + "\n" + "".join(lines))
