"""Registry commands: login, logout, search, and `registry serve` (berth's own registry server)."""

from __future__ import annotations

import os
import sys

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _parse
from berth.cli.config import INDEX_SERVER
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.client.errors import DaemonError


def _server_key(server: str) -> str:
    """The config key docker uses: the index URL for Docker Hub, else the bare host[:port]."""
    if not server:
        return INDEX_SERVER
    s = server.removeprefix("http://").removeprefix("https://").split("/", 1)[0]
    if s in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return INDEX_SERVER
    return s


def login(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] [SERVER]", [
        Flag("username", "u", STRING, help="Username"),
        Flag("password", "p", STRING, help="Password or Personal Access Token (PAT)"),
        Flag("password-stdin", "", BOOL, help="Take the Password or Personal Access Token (PAT) from stdin"),
    ], argv, "Authenticate to a registry", max_args=1)
    if p is None:
        return 0
    o, args = p
    server = _server_key(args[0] if args else "")
    username, password = o.username, o.password
    if o.password:
        cli.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
        if o.password_stdin:
            raise StatusError(1, "--password and --password-stdin are mutually exclusive")
    if o.password_stdin:
        if not username:
            raise StatusError(1, "Must provide --username with --password-stdin")
        password = cli.stdin.read().rstrip("\r\n")
    stored = cli.config.get_auth(server)
    if not username and not password and stored.get("username"):
        username, password = stored["username"], stored.get("password", "")
    if not username:
        if not cli.is_tty_in():
            raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
        cli.stdout.write("Username: ")
        cli.stdout.flush()
        username = cli.stdin.readline().strip()
        if not username:
            raise StatusError(1, "Error: Non-null Username Required")
    if not password:
        import getpass

        if not cli.is_tty_in():
            raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ")
        if not password:
            raise StatusError(1, "Error: Password Required")
    body = {"username": username, "password": password, "serveraddress": server}
    try:
        resp = cli.client.post_json("/auth", json=body) or {}
    except DaemonError as e:
        raise StatusError(1, str(e)) from None
    token = str(resp.get("IdentityToken") or "")  # type: ignore[attr-defined]
    in_helper = cli.config.set_auth(server, username, password, token)
    cli.config.save()
    if not in_helper:
        cli.err(f"WARNING! Your credentials are stored unencrypted in '{cli.config.path}'.\n"
                "Configure a credential helper to remove this warning. See\n"
                "https://docs.docker.com/go/credential-store/\n")
    cli.out(str(resp.get("Status") or "Login Succeeded"))  # type: ignore[attr-defined]
    return 0


def logout(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[SERVER]", [], argv, "Log out from a registry", max_args=1)
    if p is None:
        return 0
    server = _server_key(p[1][0] if p[1] else "")
    cfg = cli.config
    # docker also tries the forms the user may have logged in with
    candidates = [server] + [k for k in cfg.auths() if _server_key(k) == server and k != server]
    if not any(c in cfg.auths() for c in candidates):
        cli.out(f"Not logged in to {server}")
        return 0
    cli.out(f"Removing login credentials for {server}")
    for c in candidates:
        cfg.remove_auth(c)
    cfg.save()
    return 0


def search(cli: Cli, path: str, argv: list[str]) -> int:
    from berth.cli.filters import parse_filter, to_json

    p = _parse(cli, path, "[OPTIONS] TERM", [
        Flag("filter", "f", LIST, conv=parse_filter, type_name="filter",
             help="Filter output based on conditions provided"),
        Flag("format", "", STRING, help="Pretty-print search using a Go template"),
        Flag("limit", "", INT, help="Max number of search results"),
        Flag("no-trunc", "", BOOL, help="Don't truncate output"),
    ], argv, "Search a registry for images", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.formatter import Context, ellipsis, render
    from berth.cli.pull import registry_auth
    from berth.oci.reference import parse as parse_normalized

    term = args[0]
    params: dict[str, object] = {"term": term, "filters": to_json(o.filter)}
    if o.limit:
        params["limit"] = str(o.limit)
    try:
        ref = parse_normalized(term.split("/", 1)[0] + "/x" if "/" in term else "x")
        auth = registry_auth(cli, ref)
    except Exception:
        auth = "e30="
    results = cli.client.get_json("/images/search", params, headers={"X-Registry-Auth": auth}) or []
    trunc = not o.no_trunc

    class SearchContext(Context):
        _fields = ("Name", "Description", "StarCount", "IsOfficial", "IsAutomated")

        def __init__(self, r: dict[str, object]) -> None:
            self.r = r

        def Name(self) -> str:
            return str(self.r.get("name") or "")

        def Description(self) -> str:
            d = str(self.r.get("description") or "").replace("\n", " ").replace("\r", " ")
            return ellipsis(d, 45) if trunc else d

        def StarCount(self) -> str:
            return str(self.r.get("star_count") or 0)

        def IsOfficial(self) -> str:
            return "[OK]" if self.r.get("is_official") else ""

        def IsAutomated(self) -> str:
            return "[OK]" if self.r.get("is_automated") else ""

    fmt = o.format or "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
    headers = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL",
               "IsAutomated": "AUTOMATED"}
    cli.stdout.write(render(fmt, [SearchContext(r) for r in results], headers))  # type: ignore[attr-defined]
    return 0


def serve(cli: Cli, path: str, argv: list[str]) -> int:
    """`berth registry serve …`: berth.registry.server.main, imported only here (it needs asyncio)."""
    try:
        from berth.registry.server import main as registry_main
    except ImportError:
        raise StatusError(1, "berth registry serve is not available yet: berth.registry.server is not "
                             "installed in this build") from None
    cli.stdout.flush()
    sys.stdout.flush()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(registry_main(["serve", *argv]) or 0)
