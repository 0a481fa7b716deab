"""JSON for start-up-critical paths (the runtime, the CLI) without importing `json` (which pulls in
`re` and `enum`).

The C accelerator `_json` does the real work, as in the stdlib; only the module-level Python
wrappers are skipped. Output of `dumps` matches `json.dumps(obj)` (compact separators optional).
"""

from __future__ import annotations

import _json

_WS = " \t\n\r"


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Ctx())  # type: ignore[arg-type]


def loads(s: str | bytes) -> object:
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8-sig" if s[:3] == b"\xef\xbb\xbf" else "utf-8")
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except Exception:
        # The C scanner reports syntax errors through json.decoder; import it only now (the
        # error path) so that json's message, with line and column, is what the caller sees.
        import json

        return json.loads(s)
    finally:
        _Ctx.memo.clear()
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise ValueError(f"Extra data: line 1 column {end + 1} (char {end})")
    return obj


def _default(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_enc = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)
_enc_compact = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_enc_compact_utf8 = _json.make_encoder(None, _default, _json.encode_basestring, None, ":", ",", False, False, True)


def dumps(obj: object, compact: bool = False, ensure_ascii: bool = True) -> str:
    """json.dumps(obj) (compact: separators "," and ":"; ensure_ascii=False keeps non-ASCII text as is)."""
    if not ensure_ascii:
        return "".join(_enc_compact_utf8(obj, 0))
    return "".join((_enc_compact if compact else _enc)(obj, 0))


def raw_decode(s: str, idx: int = 0) -> tuple[object, int]:
    """json.JSONDecoder().raw_decode: one value starting at `idx` (whitespace skipped), and where it ends."""
    n = len(s)
    while idx < n and s[idx] in _WS:
        idx += 1
    try:
        obj, end = _scan(s, idx)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    except Exception:
        import json

        return json.JSONDecoder().raw_decode(s, idx)
    finally:
        _Ctx.memo.clear()
    return obj, end
