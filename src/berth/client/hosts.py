"""Which daemon to talk to, and how: host strings (`-H`, `BERTH_HOST`, `DOCKER_HOST`) and TLS settings.

Kept free of heavy imports: every CLI command parses a host before anything else."""

from __future__ import annotations

import os

from berth.errors import InvalidArgument

DEFAULT_HOST = "unix:///run/berth/berth.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376


class Endpoint:
    """A parsed daemon address: `scheme` is "unix" or "tcp"; `address` a path or (host, port)."""

    __slots__ = ("address", "raw", "scheme")

    def __init__(self, scheme: str, address: str | tuple[str, int], raw: str) -> None:
        self.scheme = scheme
        self.address = address
        self.raw = raw

    def __repr__(self) -> str:
        return f"Endpoint({self.raw!r})"


class TLSConfig:
    """Client TLS as docker's `--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey` describe it."""

    __slots__ = ("ca", "cert", "key", "verify")

    def __init__(self, verify: bool, ca: str | None, cert: str | None, key: str | None) -> None:
        self.verify = verify
        self.ca = ca
        self.cert = cert
        self.key = key


def select_host(flag_hosts: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    """`-H`, then BERTH_HOST, then DOCKER_HOST, then berthd's default socket."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    assert env is not None
    if flag_hosts:
        if len(flag_hosts) > 1:
            raise InvalidArgument("Specify only one -H")
        return flag_hosts[0]
    return env.get("BERTH_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST


def parse_host(host: str, tls: bool = False) -> Endpoint:
    """Parse `unix:///path`, `tcp://host:port` (port defaults as docker's), `http(s)://` and bare paths."""
    raw = host.strip()
    if not raw:
        raw = DEFAULT_HOST
    if raw.startswith("/"):
        return Endpoint("unix", raw, "unix://" + raw)
    scheme, sep, rest = raw.partition("://")
    if not sep:
        # docker accepts "host:port" as tcp
        scheme, rest = "tcp", raw
    scheme = scheme.lower()
    if scheme == "unix":
        if not rest:
            raise InvalidArgument(f"invalid bind address ({raw}): empty string")
        return Endpoint("unix", rest, raw)
    if scheme in ("tcp", "http", "https"):
        hostport = rest.split("/", 1)[0]
        if hostport.startswith("["):
            end = hostport.find("]")
            if end < 0:
                raise InvalidArgument(f"invalid bind address ({raw})")
            name, portstr = hostport[1:end], hostport[end + 2:]
        else:
            name, _, portstr = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        if not name:
            name = "127.0.0.1"
        default = DEFAULT_TLS_PORT if (tls or scheme == "https") else DEFAULT_TCP_PORT
        try:
            port = int(portstr) if portstr else default
        except ValueError:
            raise InvalidArgument(f"invalid bind address ({raw}): invalid port") from None
        return Endpoint("tcp", (name, port), f"tcp://{hostport}" if scheme == "tcp" else raw)
    raise InvalidArgument(f"invalid bind address ({raw}): unsupported protocol {scheme!r}")


def tls_config(
    tls: bool = False,
    verify: bool | None = None,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    env: dict[str, str] | None = None,
) -> TLSConfig | None:
    """Docker's rules: DOCKER_TLS_VERIFY turns verification on, DOCKER_CERT_PATH (else ~/.docker) holds
    ca.pem, cert.pem and key.pem; `--tls` alone means TLS without verifying the daemon."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    assert env is not None
    if verify is None:
        verify = bool(env.get("BERTH_TLS_VERIFY") or env.get("DOCKER_TLS_VERIFY"))
    if not (tls or verify):
        return None
    certdir = env.get("BERTH_CERT_PATH") or env.get("DOCKER_CERT_PATH") or os.path.join(
        os.path.expanduser("~"), ".docker")

    def pick(given: str | None, name: str) -> str | None:
        if given:
            return given
        path = os.path.join(certdir, name)
        return path if os.path.exists(path) else None

    return TLSConfig(verify=verify, ca=pick(ca, "ca.pem"), cert=pick(cert, "cert.pem"), key=pick(key, "key.pem"))
