"""`berth registry serve`: command line, TLS, auth mode, and the server's lifetime."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import ssl
import sys

from berth.httpd import Server
from berth.registry.server import gc
from berth.registry.server.app import RegistryApp, error_handler, token_path_of
from berth.registry.server.auth import Acl, Authenticator, Htpasswd, TokenSigner
from berth.registry.server.storage import Storage

log = logging.getLogger("berth.registry")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth registry", description="An OCI distribution registry")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a registry")
    s.add_argument("--addr", default="127.0.0.1:5000", help="listen address host:port (port 0: any free port)")
    s.add_argument("--root", required=True, help="storage directory")
    s.add_argument("--htpasswd", help="htpasswd file (bcrypt entries): basic auth, or the token endpoint's users")
    s.add_argument("--acl", help="access rules, one per line: <user|*|+> <repository glob|catalog> <actions>")
    s.add_argument("--tls-cert", help="TLS certificate chain (PEM)")
    s.add_argument("--tls-key", help="TLS private key (PEM)")
    s.add_argument("--token-realm", help="enable the token flow; the realm URL, or a path on this server")
    s.add_argument("--token-service", default="berth-registry", help="the service name in challenges and tokens")
    s.add_argument("--token-issuer", default="berth-registry", help="the issuer claim of tokens")
    s.add_argument("--token-key", help="file holding the HS256 signing key (default: random per run)")
    s.add_argument("--token-ttl", type=int, default=300, help="token lifetime in seconds (min 60)")
    s.add_argument("--gc-interval", type=float, default=3600.0, help="seconds between garbage collections (0: off)")
    s.add_argument("--gc-grace", type=float, default=3600.0, help="blobs touched this recently are never collected")
    s.add_argument("--log-level", default="info")
    return p


def split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise SystemExit(f"invalid --addr {addr!r}: want host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def build_auth(args: argparse.Namespace) -> Authenticator:
    htpasswd = Htpasswd(args.htpasswd) if args.htpasswd else None
    acl = Acl.load(args.acl) if args.acl else None
    if args.token_realm:
        if args.token_key:
            with open(args.token_key, "rb") as f:
                key = f.read().strip()
        else:
            key = secrets.token_bytes(32)
        signer = TokenSigner(key, args.token_issuer, args.token_service, args.token_ttl)
        return Authenticator("token", htpasswd=htpasswd, acl=acl, signer=signer, realm=args.token_realm)
    if htpasswd is not None:
        return Authenticator("basic", htpasswd=htpasswd, acl=acl)
    return Authenticator("none")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def run(args: argparse.Namespace) -> None:
    host, port = split_addr(args.addr)
    storage = Storage(args.root)
    auth = build_auth(args)
    token_path = token_path_of(args.token_realm) if args.token_realm else None
    app = RegistryApp(storage, auth, token_path=token_path)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
        except OSError as e:
            raise OSError(f"loading TLS certificate {args.tls_cert} and key {args.tls_key}: {e.strerror or e}")
    if auth.mode == "none" and not _is_loopback(host):
        log.warning("serving %s without authentication: anyone who can reach it may push and delete", host)
    server = Server(app, host=host, port=port, ssl=ctx, error_handler=error_handler)
    await server.start()
    bound = server.addresses[0]
    scheme = "https" if ctx else "http"
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
    url = f"{scheme}://{shown}:{bound[1]}"
    if args.token_realm and args.token_realm.startswith("/"):
        auth.realm = url + args.token_realm
    print(f"berth registry listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gc_task = None
    if args.gc_interval > 0:
        gc_task = asyncio.create_task(gc.run_periodically(storage, app.uploads, args.gc_interval, args.gc_grace))
    try:
        await stop.wait()
    finally:
        if gc_task is not None:
            gc_task.cancel()
        await server.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.umask(0o022)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    except (OSError, ssl.SSLError) as e:
        # a missing certificate, htpasswd or root, a port in use: say so, without a traceback
        print(f"berth registry: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
