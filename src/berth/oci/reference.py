"""Image references parsed and normalised as Docker does (distribution/reference).

`busybox` → `docker.io/library/busybox:latest`; `localhost:5000/a/b:tag`; `name@sha256:…`.
`Reference.familiar()` gives back the short form Docker prints (`busybox:latest`).

The CLI imports this on its start path, so it stays light: no dataclasses, patterns compiled on
first use, the digest module only for a reference that has a digest.
"""

from __future__ import annotations

import re

from berth.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_SOURCES = {
    "reference": rf"^((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?$",
    "id": r"^[a-f0-9]{64}$",
    "tag": rf"^{_TAG}$",
}
_compiled: dict[str, re.Pattern[str]] = {}


def _re(name: str) -> re.Pattern[str]:
    pat = _compiled.get(name)
    if pat is None:
        pat = _compiled[name] = re.compile(_SOURCES[name])
    return pat


class Reference:
    """A normalised reference: `domain/path` plus an optional tag and/or digest. Immutable."""

    __slots__ = ("digest", "domain", "path", "tag")
    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None) -> None:
        for k, v in (("domain", domain), ("path", path), ("tag", tag), ("digest", digest)):
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _key(self) -> tuple[str, str, str | None, str | None]:
        return self.domain, self.path, self.tag, self.digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, digest={self.digest!r})"

    @property
    def name(self) -> str:
        """The full repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The repository as Docker prints it: `busybox`, `user/app`, `localhost:5000/a/b`."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(OFFICIAL_PREFIX) if self.path.count("/") == 1 else self.path
        return self.name

    def familiar(self) -> str:
        return self._render(self.familiar_name())

    def __str__(self) -> str:
        return self._render(self.name)

    def _render(self, name: str) -> str:
        s = name
        if self.tag is not None:
            s += ":" + self.tag
        if self.digest is not None:
            s += "@" + self.digest
        return s

    def with_default_tag(self) -> Reference:
        """`busybox` → `busybox:latest`; a reference with a tag or digest is unchanged (Docker's TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        validate_tag(tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def repo(self) -> Reference:
        return Reference(self.domain, self.path)


def validate_tag(tag: str) -> None:
    if not _re("tag").match(tag):
        raise InvalidArgument(f"invalid tag format: {tag!r}" if tag else "invalid reference format")


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry when it looks like a host."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Parse a reference as Docker's `ParseNormalizedNamed` does; InvalidArgument with Docker's messages."""
    if not text:
        raise InvalidArgument("invalid reference format")
    if _re("id").match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(f"invalid reference format: repository name ({remote}) must be lowercase")
    m = _re("reference").match(f"{domain}/{remainder}")
    if not m:
        raise InvalidArgument("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than {NAME_MAX} characters")
    if digest is not None:
        from berth.oci.digest import Digest

        Digest.parse(digest)  # only sha256/sha512 of the right length are usable as content addresses
    return Reference(domain, name[len(domain) + 1:], tag, digest)


def parse_tagged(text: str) -> Reference:
    """Parse and add `:latest` when neither a tag nor a digest is given (what `docker tag`/`pull` do)."""
    return parse(text).with_default_tag()


def is_full_id(text: str) -> bool:
    return bool(_re("id").match(text.removeprefix("sha256:")))
