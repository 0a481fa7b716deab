"""Registry settings: which hosts berthd talks to for a reference, and over what.

    settings = RegistrySettings.load(daemon_json, mirrors=flag_mirrors, insecure=flag_insecure)
    settings.pull_endpoints(ref)   # docker.io: mirrors in order, then the default registry
    settings.push_endpoint(ref)    # never a mirror
    settings.is_insecure("127.0.0.1:5000")  # loopback: True (plain http), as in Docker

Sources, as moby reads them: `registry-mirrors` and `insecure-registries` (flags or daemon.json), plus
berth's `default-registry` key, which says where docker.io's short names go: unset means Docker Hub
(registry-1.docker.io), a host means that host, and `""` disables docker.io entirely. With docker.io
disabled, a short name resolves only through the mirrors, and anything aimed at docker.io fails at once:
no name lookup and no connection are ever attempted towards it.

Insecure entries are CIDRs or `host[:port]`. A CIDR matches IP literals only: berth never resolves a
name to decide how to talk to it (moby does, and that lookup would leak to the resolver). "Insecure"
means plain http here; TLS with an unverified certificate is not tried first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from berth.errors import Forbidden, InvalidArgument
from berth.oci.reference import DEFAULT_DOMAIN, Reference

# Docker Hub: the API host behind `docker.io` names, and the index key the CLI logs in to.
HUB_REGISTRY = "registry-1.docker.io"
HUB_INDEX = "https://index.docker.io/v1/"
HUB_SEARCH = "index.docker.io"  # where moby sends `docker search`
HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
LOOPBACK_CIDRS = ("127.0.0.0/8", "::1/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Endpoint:
    """One registry to talk to for a repository: `host[:port]`, plain http or TLS, mirror or not."""

    host: str
    insecure: bool
    mirror: bool = False

    @property
    def base(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"


@dataclass
class RegistrySettings:
    mirrors: list[str] = field(default_factory=list)
    insecure: list[str] = field(default_factory=list)
    default_registry: str | None = None  # None: Docker Hub; "": docker.io disabled; else a host[:port]
    # Hosts `docker import URL` may fetch from besides loopback, mirrors and insecure host entries.
    import_hosts: list[str] = field(default_factory=list)
    _cidrs: list[Network] = field(init=False, repr=False)
    _hosts: set[str] = field(init=False, repr=False)
    _mirror_endpoints: list[Endpoint] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._mirror_endpoints = [_mirror_endpoint(m) for m in self.mirrors]
        self.mirrors = [e.base for e in self._mirror_endpoints]
        self._cidrs = [ipaddress.ip_network(c) for c in LOOPBACK_CIDRS]
        self._hosts = set()
        for entry in self.insecure:
            if "://" in entry:
                raise InvalidArgument(f"insecure registry {entry} should not contain '://'")
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self._hosts.add(entry.lower())
                continue
            if net not in self._cidrs:
                self._cidrs.append(net)
        if self.default_registry:
            host = _host_of(self.default_registry, "default-registry")
            self.default_registry = None if host in HUB_NAMES else host  # naming Docker Hub keeps the default

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def load(cls, daemon_json: dict[str, Any] | None = None, *, mirrors: Iterable[str] = (),
             insecure: Iterable[str] = (), default_registry: str | None = None) -> RegistrySettings:
        """Merge command-line flags with daemon.json; a directive given both ways is an error (moby's rule)."""
        doc = daemon_json or {}
        flags: dict[str, Any] = {"registry-mirrors": list(mirrors), "insecure-registries": list(insecure),
                                 "default-registry": default_registry}
        clashes = [f"{k}: (from flag: {_go(v)}, from file: {_go(doc[k])})" for k, v in flags.items()
                   if k in doc and v not in (None, [])]
        if clashes:
            raise InvalidArgument("the following directives are specified both as a flag and in the configuration "
                                  "file: " + ", ".join(clashes))
        m = doc.get("registry-mirrors", flags["registry-mirrors"])
        i = doc.get("insecure-registries", flags["insecure-registries"])
        d = doc.get("default-registry", default_registry)
        if not isinstance(m, list) or not all(isinstance(x, str) for x in m):
            raise InvalidArgument("registry-mirrors must be a list of URLs")
        if not isinstance(i, list) or not all(isinstance(x, str) for x in i):
            raise InvalidArgument("insecure-registries must be a list of CIDRs or host[:port]")
        if d is not None and not isinstance(d, str):
            raise InvalidArgument("default-registry must be a string (\"\" disables docker.io)")
        return cls(mirrors=m, insecure=i, default_registry=d)

    # -- questions ------------------------------------------------------------------------------
    @property
    def docker_io_disabled(self) -> bool:
        return self.default_registry == ""

    def is_insecure(self, host: str) -> bool:
        """Plain http for `host[:port]`: listed by name, or an IP literal (or localhost) in a CIDR."""
        h = host.lower()
        if h in self._hosts:
            return True
        name = _strip_port(h)
        if name in self._hosts:
            return True
        if name == "localhost":
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        return any(ip in net for net in self._cidrs)

    def endpoint(self, host: str) -> Endpoint:
        """The endpoint for a registry named in a reference (docker.io maps to the default registry)."""
        if host in HUB_NAMES:
            return self._hub()
        return Endpoint(host, self.is_insecure(host))

    def pull_endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where to look for `ref`, in order. docker.io names go to the mirrors first, then to the
        default registry unless docker.io is disabled. Raises at once when nothing is left to try."""
        if ref.domain != DEFAULT_DOMAIN:
            return [self.endpoint(ref.domain)]
        out = list(self._mirror_endpoints)
        if not self.docker_io_disabled:
            out.append(self._hub())
        if not out:
            raise self.disabled_error(f"cannot pull {ref.familiar()}")
        return out

    def push_endpoint(self, ref: Reference) -> Endpoint:
        """Pushes never go to mirrors (moby's rule); to docker.io only if it is enabled."""
        return self.endpoint(ref.domain)

    def search_endpoints(self, host: str) -> list[Endpoint]:
        """Where `docker search` asks: a named registry, else docker.io's index (or, with docker.io
        disabled, the mirrors: berth's registry answers /v1/search from its catalog)."""
        if host not in HUB_NAMES:
            return [self.endpoint(host)]
        if self.docker_io_disabled:
            if not self._mirror_endpoints:
                raise self.disabled_error("cannot search docker.io")
            return list(self._mirror_endpoints)
        if self.default_registry:
            return [self._hub()]
        return [Endpoint(HUB_SEARCH, False)]

    def import_allowed(self, host: str) -> bool:
        """`docker import URL` fetches only from loopback and the hosts configured here."""
        name = _strip_port(host.lower())
        if name == "localhost":
            return True
        try:
            if ipaddress.ip_address(name).is_loopback:
                return True
        except ValueError:
            pass
        allowed = {h.lower() for h in self.import_hosts} | self._hosts | {e.host for e in self._mirror_endpoints}
        return host.lower() in allowed or name in allowed

    def disabled_error(self, what: str) -> Forbidden:
        return Forbidden(f"{what}: docker.io is disabled on this daemon (\"default-registry\": \"\") "
                         "and no registry mirror is configured" if not self._mirror_endpoints else
                         f"{what}: docker.io is disabled on this daemon (\"default-registry\": \"\")")

    def _hub(self) -> Endpoint:
        if self.docker_io_disabled:
            raise self.disabled_error("cannot reach docker.io")
        host = self.default_registry or HUB_REGISTRY
        return Endpoint(host, self.is_insecure(host) if self.default_registry else False)

    def info(self) -> dict[str, Any]:
        """`RegistryConfig` for GET /info, in moby's shape."""
        index_configs: dict[str, Any] = {}
        if not self.docker_io_disabled:
            index_configs["docker.io"] = {"Name": "docker.io", "Mirrors": list(self.mirrors), "Secure": True,
                                          "Official": True}
        for h in sorted(self._hosts):
            index_configs[h] = {"Name": h, "Mirrors": [], "Secure": False, "Official": False}
        return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
                "InsecureRegistryCIDRs": [str(c) for c in self._cidrs], "IndexConfigs": index_configs,
                "Mirrors": list(self.mirrors)}


def normalize_server(address: str) -> str:
    """What `docker login` sent as `serveraddress` → `host[:port]`; Docker Hub's forms → docker.io."""
    a = address.strip()
    if not a:
        return DEFAULT_DOMAIN
    if "://" in a:
        a = urlsplit(a).netloc
    a = a.split("/", 1)[0].lower()
    return DEFAULT_DOMAIN if a in HUB_NAMES else a


def _mirror_endpoint(url: str) -> Endpoint:
    """moby's ValidateMirror: an http(s) URL without path, query or fragment."""
    u = urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        raise InvalidArgument(f"invalid mirror: unsupported scheme {u.scheme!r} in {url!r}")
    if u.path not in ("", "/") or u.query or u.fragment:
        raise InvalidArgument(f"invalid mirror: path, query, or fragment at end of the URI {url!r}")
    return Endpoint(u.netloc.lower(), u.scheme == "http", mirror=True)


def _host_of(value: str, what: str) -> str:
    v = value.strip()
    if "://" in v:
        u = urlsplit(v)
        if u.path not in ("", "/") or not u.netloc:
            raise InvalidArgument(f"invalid {what}: {value!r}")
        v = u.netloc
    if "/" in v or not v:
        raise InvalidArgument(f"invalid {what}: {value!r}")
    return v.lower()


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _go(v: Any) -> str:
    """A value as Go's %v prints it in moby's conflict message."""
    if isinstance(v, list):
        return "[" + " ".join(str(x) for x in v) + "]"
    return str(v)
