"""TLS for tcp:// daemons; imported only when TLS is asked for (ssl costs ~20 ms to import)."""

from __future__ import annotations

import socket
import ssl

from berth.client.hosts import TLSConfig


def context(cfg: TLSConfig) -> ssl.SSLContext:
    """Docker's client rules: verify the daemon against `ca` only with --tlsverify; present
    `cert`/`key` when both exist; TLS 1.2 at least."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.verify:
        if cfg.ca:
            ctx.load_verify_locations(cafile=cfg.ca)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert and cfg.key:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    return ctx


def wrap(sock: socket.socket, cfg: TLSConfig, server_hostname: str) -> socket.socket:
    return context(cfg).wrap_socket(sock, server_hostname=server_hostname)
