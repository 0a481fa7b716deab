"""`--filter key=value` options and their wire form: `{"key":{"value":true}}` (the CLI's shape, keys
sorted as Go's json.Marshal sorts maps)."""

from __future__ import annotations

from berth import fastjson


def parse_filter(value: str) -> tuple[str, str]:
    """FilterOpt.Set: "key=value" (spaces around the key trimmed, as docker does)."""
    if "=" not in value:
        raise ValueError("bad format of filter (expected name=value)")
    k, _, v = value.partition("=")
    return k.strip().lower(), v.strip()


def to_json(pairs: list[tuple[str, str]] | None) -> str | None:
    """None when there are no filters (the query parameter is then left out)."""
    if not pairs:
        return None
    args: dict[str, dict[str, bool]] = {}
    for k, v in pairs:
        args.setdefault(k, {})[v] = True
    doc = {k: dict(sorted(vs.items())) for k, vs in sorted(args.items())}
    return fastjson.dumps(doc, compact=True)
