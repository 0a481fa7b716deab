"""The functions Go templates get in docker's `--format`: text/template's builtins (and, or, not, len,
index, slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery) and docker's own
(json, split, join, title, lower, upper, pad, truncate), over JSON-decoded values."""

from __future__ import annotations

import json as _json
from collections.abc import Callable

from berth.cli.gotypes import go_print, is_nil, to_json_value, truth


def _go_type(v: object) -> str:
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, list):
        return "[]interface {}"
    return "interface {}"


# -- functions ---------------------------------------------------------------------------------------


class _FuncError(Exception):
    pass


def _json_fn(v: object) -> str:
    if callable(getattr(v, "to_json", None)):
        # docker's formatter contexts marshal themselves with json.Marshal, which escapes <, > and &
        text = _json.dumps(v.to_json(), separators=(",", ":"), ensure_ascii=False)  # type: ignore[attr-defined]
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _json.dumps(to_json_value(v), separators=(",", ":"), ensure_ascii=False)


def _and(*args: object) -> object:
    if not args:
        raise TypeError
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args: object) -> object:
    if not args:
        raise TypeError
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _basic(v: object) -> object:
    if is_nil(v):
        return None
    return v


def _eq(a: object, *bs: object) -> bool:
    if not bs:
        raise _FuncError("missing argument for comparison")
    a = _basic(a)
    for b in bs:
        b = _basic(b)
        if a is None or b is None:
            if a is None and b is None:
                return True
            continue
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
            raise _FuncError("invalid type for comparison")
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
            raise _FuncError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _ne(a: object, b: object) -> bool:
    return not _eq(a, b)


def _cmp(a: object, b: object) -> int:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        raise _FuncError("invalid type for comparison")
    if isinstance(a, str) != isinstance(b, str):
        raise _FuncError("incompatible types for comparison")
    return (a > b) - (a < b)  # type: ignore[operator]


def _len(v: object) -> int:
    if v is None:
        raise _FuncError("len of nil pointer")
    try:
        return len(v)  # type: ignore[arg-type]
    except TypeError:
        raise _FuncError(f"len of type {_go_type(v)}") from None


def _index(v: object, *keys: object) -> object:
    for k in keys:
        if is_nil(v):
            raise _FuncError("index of untyped nil")
        if isinstance(v, dict):
            if k in v:
                v = v[k]
            elif all(isinstance(x, str) for x in v.values()):
                v = ""  # map[string]string: the zero value
            else:
                v = None
        elif isinstance(v, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise _FuncError(f"cannot index slice/array with type {_go_type(k)}")
            if not 0 <= k < len(v):
                raise _FuncError(f"index out of range: {k}")
            v = v[k] if not isinstance(v, str) else ord(v[k])
        else:
            raise _FuncError(f"can't index item of type {_go_type(v)}")
    return v


def _slice(v: object, *idx: object) -> object:
    if not isinstance(v, (list, str)):
        raise _FuncError(f"can't slice item of type {_go_type(v)}")
    ints = [int(i) for i in idx]  # type: ignore[call-overload]
    if len(ints) == 0:
        return v
    if len(ints) == 1:
        return v[ints[0]:]
    return v[ints[0]:ints[1]]


def _sprint(*args: object) -> str:
    # fmt.Sprint adds spaces between operands when neither is a string
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(a, 1) if a is not None else "<nil>")
    return "".join(out)


def _sprintln(*args: object) -> str:
    return " ".join(go_print(a, 1) for a in args) + "\n"


def _sprintf(fmt: str, *args: object) -> str:
    out = []
    i = 0
    ai = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < n and fmt[j] in "+-# 0123456789.":
            j += 1
        if j >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[j]
        flags = fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        if verb in "vs":
            s = go_print(a, 1) if a is not None else "<nil>"
        elif verb == "q":
            s = _json.dumps(a if isinstance(a, str) else go_print(a, 1), ensure_ascii=False)
        elif verb == "d" and isinstance(a, (int, float)) and not isinstance(a, bool):
            s = str(int(a))
        elif verb in "feEgGxXo" and isinstance(a, (int, float)) and not isinstance(a, bool):
            s = ("%" + flags.lstrip("-0") + verb) % a
            flags = "".join(ch for ch in flags if ch in "-0") + "".join(ch for ch in flags if ch.isdigit())
            flags = flags if "." not in fmt[i - 1 - len(flags):i] else ""
        elif verb == "t" and isinstance(a, bool):
            s = "true" if a else "false"
        else:
            s = f"%!{verb}({_go_type(a)}={go_print(a, 1)})"
        width_s = "".join(ch for ch in flags.split(".")[0] if ch.isdigit())
        if width_s:
            w = int(width_s)
            s = s.ljust(w) if "-" in flags else s.rjust(w)
        out.append(s)
    if ai < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(a)}={go_print(a, 1)}" for a in args[ai:]) + ")")
    return "".join(out)


def _split(s: object, sep: object) -> list[str]:
    if not isinstance(s, str) or not isinstance(sep, str):
        raise _FuncError("wrong type for value")
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(items: object, sep: object) -> str:
    if is_nil(items):
        return ""
    if not isinstance(items, (list, tuple)) or not isinstance(sep, str):
        raise _FuncError("wrong type for value")
    return sep.join(go_print(x, 1) for x in items)


def _title(s: object) -> str:
    if not isinstance(s, str):
        raise _FuncError("wrong type for value")
    out = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _str_fn(f: Callable[[str], str]) -> Callable[[object], str]:
    def g(s: object) -> str:
        if not isinstance(s, str):
            raise _FuncError(f"wrong type for value; expected string; got {_go_type(s)}")
        return f(s)

    return g


def _pad(s: object, prefix: object, suffix: object) -> str:
    text = s if isinstance(s, str) else go_print(s, 1)
    if text == "":
        return text
    return " " * int(prefix) + text + " " * int(suffix)  # type: ignore[call-overload]


def _truncate(s: object, n: object) -> str:
    text = s if isinstance(s, str) else go_print(s, 1)
    length = int(n)  # type: ignore[call-overload]
    if len(text) < length:
        return text
    return text[:length]


def _not(v: object) -> bool:
    return not truth(v)


FUNCS: dict[str, Callable[..., object]] = {
    "and": _and, "or": _or, "not": _not, "len": _len, "index": _index, "slice": _slice,
    "print": _sprint, "printf": _sprintf, "println": _sprintln,
    "eq": _eq, "ne": _ne, "lt": lambda a, b: _cmp(a, b) < 0, "le": lambda a, b: _cmp(a, b) <= 0,
    "gt": lambda a, b: _cmp(a, b) > 0, "ge": lambda a, b: _cmp(a, b) >= 0,
    "json": _json_fn, "split": _split, "join": _join, "title": _title, "lower": _str_fn(str.lower),
    "upper": _str_fn(str.upper), "pad": _pad, "truncate": _truncate,
    "html": lambda *a: _sprint(*a).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    .replace('"', "&#34;").replace("'", "&#39;"),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_sprint(*a)),
    "js": lambda *a: _json.dumps(_sprint(*a))[1:-1],
}

# Table headers are rendered with functions that keep their argument (docker's HeaderFunctions).
HEADER_FUNCS: dict[str, Callable[..., object]] = {
    "json": lambda v: v, "split": lambda v, _s: v, "join": lambda v, _s: v, "title": lambda v: v,
    "lower": lambda v: v, "upper": lambda v: v, "truncate": lambda v, _n: v,
}
