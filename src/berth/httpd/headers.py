"""Case-insensitive, multi-valued request headers, kept as h11 parsed them (lower-case byte names)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence


class Headers:
    """Read-only view of request headers.

    Names are matched case-insensitively; values are decoded as latin-1 (HTTP's own rule), so any
    byte survives a round trip. Lookups scan the list: requests carry a handful of headers, and a
    scan is cheaper than building a dict for every request.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes | str, bytes | str]] = ()) -> None:
        self._raw: Sequence[tuple[bytes, bytes]] = [
            (_b(k).lower(), _b(v)) for k, v in raw
        ]

    @classmethod
    def _from_h11(cls, raw: Sequence[tuple[bytes, bytes]]) -> Headers:
        """Wrap h11's header list without copying (h11 already lower-cases names)."""
        h = cls.__new__(cls)
        h._raw = raw
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("latin-1")
        for k, v in self._raw:
            if k == key:
                return v.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._raw if k == key]

    def items(self) -> Iterator[tuple[str, str]]:
        for k, v in self._raw:
            yield k.decode("latin-1"), v.decode("latin-1")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"


def _b(s: bytes | str) -> bytes:
    return s if isinstance(s, bytes) else s.encode("latin-1")
