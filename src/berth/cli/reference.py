"""Image references as the docker CLI normalizes them (distribution/reference): `busybox` is
`docker.io/library/busybox:latest`, printed back in its familiar form."""

from __future__ import annotations

import re

from berth.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
INDEX_SERVER = "https://index.docker.io/v1/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_compiled: dict[str, re.Pattern[str]] = {}


def _re(name: str) -> re.Pattern[str]:
    """Patterns compiled on first use (`ps` imports this module but rarely parses a reference)."""
    pat = _compiled.get(name)
    if pat is None:
        src = {"ref": rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$", "id": r"^[a-f0-9]{64}$"}[name]
        pat = _compiled[name] = re.compile(src)
    return pat


class Reference:
    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(OFFICIAL_REPO_PREFIX) if self.path.count("/") == 1 else self.path
        return self.name

    def familiar(self) -> str:
        s = self.familiar_name()
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_default_tag(self) -> Reference:
        """TagNameOnly: add `latest` when there is neither tag nor digest."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, "latest", "")

    def auth_key(self) -> str:
        """The config.json `auths` key for this reference's registry."""
        return INDEX_SERVER if self.domain == DEFAULT_DOMAIN else self.domain


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].lower() == name[:i]):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = name[:i], name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_REPO_PREFIX + rest
    return domain, rest


def parse_normalized(ref: str) -> Reference:
    """ParseNormalizedNamed: errors in distribution/reference's wording."""
    if _re("id").match(ref):
        raise InvalidArgument(f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings")
    m = _re("ref").match(ref)
    if not m:
        low = _re("ref").match(ref.lower()) if ref.lower() != ref else None
        if low:
            _, rest = _split_domain(ref[: len(low.group(1))])
            raise InvalidArgument(f"invalid reference format: repository name ({rest}) must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    domain, path = _split_domain(name)
    if path.lower() != path:
        raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
    if len(f"{domain}/{path}") > 255:
        raise InvalidArgument("invalid reference format: repository name must not be more than 255 characters")
    return Reference(domain, path, tag, digest)


def is_image_id(ref: str) -> bool:
    return bool(_re("id").match(ref.removeprefix("sha256:"))) and (ref.startswith("sha256:") or len(ref) == 64)
