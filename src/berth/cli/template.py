"""The subset of Go's text/template that docker's `--format` users write, with docker's functions.

Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* */}}` comments; pipelines
with `|`; fields and chains (`.A.B`, `$x.A`, `(pipe).A`); variables (`$`, `$x := …`, `$x = …`);
`if`/`else if`/`else`, `range` (with `$i, $e :=`, `else`, `break`, `continue`), `with`/`else`;
literals; and the functions and, or, not, len, index, slice, print, printf, println, eq, ne, lt, le,
gt, ge, json, split, join, title, lower, upper, pad, truncate. Values are JSON-decoded Python values
or objects whose attributes (and methods with arguments, e.g. `.Label "k"`) are the fields."""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping

from berth.cli.gotypes import GoStruct, _Nil, go_print, is_nil, truth
from berth.cli.tmplerror import TemplateError
from berth.cli.tmplfuncs import FUNCS, _FuncError, _go_type

# -- lexing ------------------------------------------------------------------------------------------

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil",
             "true", "false"}


class Tok:
    __slots__ = ("kind", "pos", "val")

    def __init__(self, kind: str, val: str, pos: int) -> None:
        self.kind, self.val, self.pos = kind, val, pos

    def __repr__(self) -> str:
        return f"{self.kind}:{self.val!r}"


def _line(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def _lex(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(src)
    trim_next = False
    while i < n:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
            trim_next = False
        if j < 0:
            if text:
                toks.append(Tok("text", text, i))
            break
        k = j + 2
        if src.startswith("- ", k) or (src.startswith("-", k) and k + 1 < n and src[k + 1] in "\t\r\n"):
            text = text.rstrip(" \t\r\n")
            k += 2
        if text:
            toks.append(Tok("text", text, i))
        # a comment takes the whole action: {{/* ... */}}
        if src.startswith("/*", k):
            end = src.find("*/", k + 2)
            if end < 0:
                raise TemplateError(f"template: :{_line(src, j)}: unclosed comment")
            e = end + 2
            if src.startswith(" -}}", e):
                trim_next = True
                e += 4
            elif src.startswith("}}", e):
                e += 2
            else:
                raise TemplateError(f"template: :{_line(src, j)}: comment ends before closing delimiter")
            i = e
            continue
        toks.append(Tok("open", "{{", j))
        i = _lex_action(src, k, toks)
        if toks[-1].kind == "close" and toks[-1].val == "-}}":
            trim_next = True
    return toks


def _lex_action(src: str, i: int, toks: list[Tok]) -> int:
    n = len(src)
    while True:
        if i >= n:
            raise TemplateError(f"template: :{_line(src, i)}: unclosed action")
        c = src[i]
        if c in " \t\r\n":
            st = i
            while i < n and src[i] in " \t\r\n":
                i += 1
            if src.startswith("-}}", i):
                toks.append(Tok("close", "-}}", i))
                return i + 3
            toks.append(Tok("space", src[st:i], st))
            continue
        if src.startswith("}}", i):
            toks.append(Tok("close", "}}", i))
            return i + 2
        if c in "|(),":
            toks.append(Tok(c, c, i))
            i += 1
        elif src.startswith(":=", i):
            toks.append(Tok("decl", ":=", i))
            i += 2
        elif c == "=":
            toks.append(Tok("assign", "=", i))
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    j += 1
                elif src[j] == "\n":
                    raise TemplateError(f"template: :{_line(src, i)}: unterminated quoted string")
                j += 1
            if j >= n:
                raise TemplateError(f"template: :{_line(src, i)}: unterminated quoted string")
            toks.append(Tok("string", _unquote(src[i:j + 1]), i))
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError(f"template: :{_line(src, i)}: unterminated raw quoted string")
            toks.append(Tok("string", src[i + 1:j], i))
            i = j + 1
        elif c == "'":
            j = src.find("'", i + 1)
            if j < 0:
                raise TemplateError(f"template: :{_line(src, i)}: unterminated character constant")
            ch = _unquote('"' + src[i + 1:j] + '"')
            toks.append(Tok("number", str(ord(ch[0]) if ch else 0), i))
            i = j + 1
        elif c == "$":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            toks.append(Tok("var", src[i:j], i))
            i = j
        elif c == ".":
            if i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
                j = i + 1
                while j < n and (src[j].isalnum() or src[j] == "_"):
                    j += 1
                toks.append(Tok("field", src[i + 1:j], i))
                i = j
            elif i + 1 < n and src[i + 1].isdigit():
                i = _lex_number(src, i, toks)
            else:
                toks.append(Tok("dot", ".", i))
                i += 1
        elif c.isdigit() or (c in "+-" and i + 1 < n and (src[i + 1].isdigit() or src[i + 1] == ".")):
            i = _lex_number(src, i, toks)
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            toks.append(Tok("keyword" if word in _KEYWORDS else "ident", word, i))
            i = j
        else:
            raise TemplateError(f"template: :{_line(src, i)}: unexpected \"{c}\" in command")


def _lex_number(src: str, i: int, toks: list[Tok]) -> int:
    j = i
    n = len(src)
    if src[j] in "+-":
        j += 1
    while j < n and (src[j].isalnum() or src[j] in "._"):
        if src[j] in "eEpP" and j + 1 < n and src[j + 1] in "+-":
            j += 1
        j += 1
    toks.append(Tok("number", src[i:j], i))
    return j


def _unquote(s: str) -> str:
    try:
        v = _json.loads(s)
        return str(v)
    except ValueError:
        import ast

        try:
            return str(ast.literal_eval(s))
        except (ValueError, SyntaxError):
            raise TemplateError(f"template: :1: unquote: invalid syntax: {s}") from None


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    try:
        low = t.lower()
        if low.startswith(("0x", "-0x", "+0x")):
            return int(t, 16)
        if low.startswith(("0o", "-0o", "+0o")):
            return int(t, 8)
        if low.startswith(("0b", "-0b", "+0b")):
            return int(t, 2)
        if "." in t or "e" in low:
            return float(t)
        if len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0"):
            return int(t, 8)
        return int(t)
    except ValueError:
        raise TemplateError(f'template: :1: bad number syntax: "{text}"') from None


# -- parsing -----------------------------------------------------------------------------------------
# Nodes are tuples: ("text", s) ("action", pipe) ("if"|"with"|"range", pipe, body, else) ("break",) ...
# pipe = (decls, is_assign, [cmd]); cmd = [arg]; arg = ("field", [names], pos) | ("var", name, [names], pos)
# | ("dot",) | ("ident", name, pos) | ("lit", value) | ("pipe", pipe, [names], pos)


class _Parser:
    def __init__(self, src: str, funcs: Mapping[str, object] | None = None) -> None:
        self.src = src
        self.funcs = funcs if funcs is not None else FUNCS
        self.toks = _lex(src)
        self.i = 0
        self.range_depth = 0

    def peek(self, skip_space: bool = True) -> Tok | None:
        j = self.i
        while j < len(self.toks) and skip_space and self.toks[j].kind == "space":
            j += 1
        return self.toks[j] if j < len(self.toks) else None

    def next(self, skip_space: bool = True) -> Tok:
        while self.i < len(self.toks) and skip_space and self.toks[self.i].kind == "space":
            self.i += 1
        if self.i >= len(self.toks):
            raise TemplateError("template: :1: unexpected EOF")
        t = self.toks[self.i]
        self.i += 1
        return t

    def err(self, msg: str, tok: Tok | None = None) -> TemplateError:
        line = _line(self.src, tok.pos) if tok is not None else 1
        return TemplateError(f"template: :{line}: {msg}")

    def parse(self) -> list[tuple]:
        nodes, end = self.parse_list(top=True)
        if end is not None:
            raise self.err(f"unexpected {{{{{end}}}}}")
        return nodes

    def parse_list(self, top: bool = False) -> tuple[list[tuple], str | None]:
        """Parse until {{end}} / {{else}} (returned) or EOF."""
        nodes: list[tuple] = []
        while self.i < len(self.toks):
            t = self.toks[self.i]
            if t.kind == "text":
                nodes.append(("text", t.val))
                self.i += 1
                continue
            # open
            self.i += 1
            kw = self.peek()
            if kw is not None and kw.kind == "keyword" and kw.val in ("end", "else", "if", "range", "with", "break",
                                                                       "continue", "define", "template", "block"):
                self.next()
                if kw.val == "end":
                    self.expect_close()
                    return nodes, "end"
                if kw.val == "else":
                    return nodes, "else"
                if kw.val in ("if", "range", "with"):
                    nodes.append(self.parse_control(kw.val, kw))
                    continue
                if kw.val in ("break", "continue"):
                    if self.range_depth == 0:
                        raise self.err(f"{{{{{kw.val}}}}} outside {{{{range}}}}", kw)
                    self.expect_close()
                    nodes.append((kw.val,))
                    continue
                raise self.err(f"{kw.val} is not supported by berth's templates", kw)
            pipe = self.parse_pipeline("command", allow_decl=True)
            nodes.append(("action", pipe))
        if not top:
            raise TemplateError("template: :1: unexpected EOF")
        return nodes, None

    def expect_close(self) -> None:
        t = self.next()
        if t.kind != "close":
            raise self.err(f"unexpected {t.val!r} in end".replace("'", '"'), t)

    def parse_control(self, kind: str, tok: Tok) -> tuple:
        pipe = self.parse_pipeline(kind, allow_decl=True, in_range=kind == "range")
        if kind == "range":
            self.range_depth += 1
        body, end = self.parse_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[tuple] = []
        if end == "else":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "keyword" and nxt.val in ("if", "with") and kind in ("if", "with"):
                # "else if" / "else with": a nested control ending at the same {{end}}
                kw = self.next()
                else_body = [self.parse_control(kw.val, kw)]
            else:
                self.expect_close()
                else_body, end2 = self.parse_list()
                if end2 != "end":
                    raise self.err("expected end; found {{else}}", tok)
        elif end != "end":
            raise self.err(f"unexpected EOF in {kind}", tok)
        return (kind, pipe, body, else_body)

    def parse_pipeline(self, context: str, allow_decl: bool = False, in_range: bool = False) -> tuple:
        decls: list[str] = []
        is_assign = False
        if allow_decl:
            save = self.i
            t = self.peek()
            if t is not None and t.kind == "var":
                self.next()
                names = [t.val]
                nt = self.peek()
                if nt is not None and nt.kind == "," and in_range:
                    self.next()
                    t2 = self.next()
                    if t2.kind != "var":
                        raise self.err("range can only initialize variables", t2)
                    names.append(t2.val)
                    nt = self.peek()
                if nt is not None and nt.kind in ("decl", "assign"):
                    self.next()
                    decls = names
                    is_assign = nt.kind == "assign"
                else:
                    self.i = save
        cmds: list[list[tuple]] = []
        while True:
            cmd = self.parse_command()
            if not cmd:
                t = self.peek()
                raise self.err(f"missing value for {context}", t)
            cmds.append(cmd)
            t = self.next()
            if t.kind == "|":
                continue
            if t.kind in ("close", ")"):
                if t.kind == ")":
                    self.i -= 1
                break
            raise self.err(f"unexpected {t.val!r} in operand".replace("'", '"'), t)
        return (decls, is_assign, cmds)

    def parse_command(self) -> list[tuple]:
        args: list[tuple] = []
        while True:
            t = self.peek()
            if t is None or t.kind in ("close", "|", ")"):
                return args
            args.append(self.parse_operand())

    def parse_operand(self) -> tuple:
        t = self.next()
        node: tuple
        if t.kind == "field":
            names = [t.val]
            while self.i < len(self.toks) and self.toks[self.i].kind == "field":
                names.append(self.toks[self.i].val)
                self.i += 1
            return ("field", names, t.pos)
        if t.kind == "var":
            names = []
            while self.i < len(self.toks) and self.toks[self.i].kind == "field":
                names.append(self.toks[self.i].val)
                self.i += 1
            return ("var", t.val, names, t.pos)
        if t.kind == "dot":
            node = ("dot", t.pos)
        elif t.kind == "ident":
            if t.val not in self.funcs:
                raise self.err(f'function "{t.val}" not defined', t)
            return ("ident", t.val, t.pos)
        elif t.kind == "string":
            node = ("lit", t.val)
        elif t.kind == "number":
            node = ("lit", _number(t.val))
        elif t.kind == "keyword" and t.val in ("true", "false"):
            node = ("lit", t.val == "true")
        elif t.kind == "keyword" and t.val == "nil":
            node = ("nil", t.pos)
        elif t.kind == "(":
            pipe = self.parse_pipeline("parenthesized pipeline")
            close = self.next()
            if close.kind != ")":
                raise self.err("unclosed left paren", t)
            node = ("pipe", pipe, [], t.pos)
        else:
            raise self.err(f"unexpected {t.val!r} in operand".replace("'", '"'), t)
        # a chain: (x).Field.Field
        names = []
        while self.i < len(self.toks) and self.toks[self.i].kind == "field":
            names.append(self.toks[self.i].val)
            self.i += 1
        if names:
            if node[0] != "pipe":
                raise self.err(f"unexpected . after term {node!r}", t)
            node = ("pipe", node[1], names, node[-1])
        return node


# -- execution ---------------------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _MissingKey:
    """Marker for a map lookup that found nothing (prints "<no value>")."""


MISSING = _MissingKey()


def _node_str(node: tuple) -> str:
    kind = node[0]
    if kind == "field":
        return "." + ".".join(node[1])
    if kind == "var":
        return node[1] + "".join("." + n for n in node[2])
    if kind == "ident":
        return node[1]
    if kind == "dot":
        return "."
    if kind == "lit":
        return _json.dumps(node[1]) if isinstance(node[1], str) else go_print(node[1])
    return "(...)"


class Template:
    def __init__(self, source: str, missing_key_error: bool = False,
                 funcs: dict[str, Callable[..., object]] | None = None, name: str = "") -> None:
        self.name = name
        self.source = source
        self.missing_key_error = missing_key_error
        self.funcs = {**FUNCS, **(funcs or {})}
        self.nodes = _Parser(source, self.funcs).parse()

    def execute(self, data: object) -> str:
        out: list[str] = []
        self._walk(self.nodes, data, [("$", data)], out)
        return "".join(out)

    def execute_partial(self, data: object) -> tuple[str, TemplateError | None]:
        """Like Go's Execute into a buffer: on an error, what was written before it is kept."""
        out: list[str] = []
        try:
            self._walk(self.nodes, data, [("$", data)], out)
        except TemplateError as e:
            return "".join(out), e
        return "".join(out), None

    # --

    def _err(self, node: tuple, msg: str, offset: int = 0) -> TemplateError:
        name = self.name
        pos = (node[-1] if isinstance(node[-1], int) else 0) + offset
        line = _line(self.source, pos)
        last_nl = self.source.rfind("\n", 0, pos)
        col = pos if last_nl < 0 else pos - (last_nl + 1)
        return TemplateError(f'template: {name}:{line}:{col}: executing "{name}" at <{_node_str(node)}>: {msg}')

    def _walk(self, nodes: list[tuple], dot: object, vars_: list[tuple[str, object]], out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                val = self._pipeline(node[1], dot, vars_)
                if not node[1][0]:
                    out.append(self._print(val))
            elif kind == "if":
                mark = len(vars_)
                if truth(self._unmissing(self._pipeline(node[1], dot, vars_))):
                    self._walk(node[2], dot, vars_, out)
                else:
                    self._walk(node[3], dot, vars_, out)
                del vars_[mark:]
            elif kind == "with":
                mark = len(vars_)
                val = self._unmissing(self._pipeline(node[1], dot, vars_))
                if truth(val):
                    self._walk(node[2], val, vars_, out)
                else:
                    self._walk(node[3], dot, vars_, out)
                del vars_[mark:]
            elif kind == "range":
                self._range(node, dot, vars_, out)
            elif kind == "break":
                raise _Break
            elif kind == "continue":
                raise _Continue

    def _range(self, node: tuple, dot: object, vars_: list[tuple[str, object]], out: list[str]) -> None:
        decls, _assign, cmds = node[1]
        mark = len(vars_)
        val = self._unmissing(self._pipeline((([], False, cmds)), dot, vars_))
        if isinstance(val, dict) and not isinstance(val, GoStruct):
            items: list[tuple[object, object]] = sorted(val.items(), key=lambda kv: str(kv[0]))
        elif isinstance(val, (list, tuple)):
            items = list(enumerate(val))
        elif isinstance(val, int) and not isinstance(val, bool):
            items = [(i, i) for i in range(val)]
        elif is_nil(val):
            items = []
        else:
            raise self._err(node[1][2][0][0], f"range can't iterate over {self._print(val)}")
        if not items:
            self._walk(node[3], dot, vars_, out)
            return
        for k, v in items:
            del vars_[mark:]
            if len(decls) == 1:
                vars_.append((decls[0], v))
            elif len(decls) == 2:
                vars_.append((decls[0], k))
                vars_.append((decls[1], v))
            try:
                self._walk(node[2], v, vars_, out)
            except _Break:
                break
            except _Continue:
                continue
        del vars_[mark:]

    def _print(self, val: object) -> str:
        if val is MISSING:
            return "<no value>"
        return go_print(val)

    @staticmethod
    def _unmissing(val: object) -> object:
        return None if val is MISSING else val

    def _pipeline(self, pipe: tuple, dot: object, vars_: list[tuple[str, object]]) -> object:
        decls, is_assign, cmds = pipe
        val: object = MISSING
        first = True
        for cmd in cmds:
            val = self._command(cmd, dot, vars_, None if first else val, not first)
            first = False
        val = self._unmissing(val) if decls else val
        for name in decls:
            if is_assign:
                for idx in range(len(vars_) - 1, -1, -1):
                    if vars_[idx][0] == name:
                        vars_[idx] = (name, val)
                        break
                else:
                    raise TemplateError(f"template: :1: undefined variable: {name}")
            else:
                vars_.append((name, val))
        return val

    def _command(self, cmd: list[tuple], dot: object, vars_: list[tuple[str, object]], final: object,
                 has_final: bool) -> object:
        first = cmd[0]
        kind = first[0]
        if kind == "ident":
            args = [self._arg(a, dot, vars_) for a in cmd[1:]]
            if has_final:
                args.append(self._unmissing(final))
            fn = self.funcs[first[1]]
            try:
                return fn(*args)
            except TemplateError:
                raise
            except _FuncError as e:
                raise self._err(first, f"error calling {first[1]}: {e}") from None
            except TypeError:
                raise self._err(first, f"wrong number of args for {first[1]}") from None
        if kind == "field":
            extra = [self._arg(a, dot, vars_) for a in cmd[1:]]
            if has_final:
                extra.append(self._unmissing(final))
            return self._fields(first, dot, first[1], extra)
        if kind == "var":
            base = self._lookup_var(first, vars_)
            if not first[2]:
                if len(cmd) > 1 or has_final:
                    raise self._err(first, f"can't give argument to non-function {first[1]}")
                return base
            extra = [self._arg(a, dot, vars_) for a in cmd[1:]]
            if has_final:
                extra.append(self._unmissing(final))
            return self._fields(first, base, first[2], extra)
        if kind == "pipe":
            base = self._pipeline(first[1], dot, vars_)
            if not first[2]:
                if len(cmd) > 1 or has_final:
                    raise self._err(first, "can't give argument to non-function")
                return base
            extra = [self._arg(a, dot, vars_) for a in cmd[1:]]
            if has_final:
                extra.append(self._unmissing(final))
            return self._fields(first, self._unmissing(base), first[2], extra)
        if len(cmd) > 1 or has_final:
            raise self._err(first, f"can't give argument to non-function {_node_str(first)}")
        return self._arg(first, dot, vars_)

    def _lookup_var(self, node: tuple, vars_: list[tuple[str, object]]) -> object:
        for name, val in reversed(vars_):
            if name == node[1]:
                return val
        raise TemplateError(f"template: :1: undefined variable: {node[1]}")

    def _arg(self, node: tuple, dot: object, vars_: list[tuple[str, object]]) -> object:
        kind = node[0]
        if kind == "dot":
            return dot
        if kind == "lit":
            return node[1]
        if kind == "nil":
            return None
        if kind == "field":
            return self._unmissing(self._fields(node, dot, node[1], []))
        if kind == "var":
            base = self._lookup_var(node, vars_)
            return self._unmissing(self._fields(node, base, node[2], []) if node[2] else base)
        if kind == "pipe":
            v = self._unmissing(self._pipeline(node[1], dot, vars_))
            return self._unmissing(self._fields(node, v, node[2], [])) if node[2] else v
        if kind == "ident":
            fn = self.funcs[node[1]]
            try:
                return fn()
            except TypeError:
                raise self._err(node, f"wrong number of args for {node[1]}: want more got 0") from None
        raise self._err(node, "unexpected node")

    def _fields(self, node: tuple, receiver: object, names: list[str], args: list[object]) -> object:
        val = receiver
        # Go reports the position of the field that failed: the chain's start plus the names before it
        base = len(node[1]) if node[0] == "var" else 0
        offsets = []
        for name in names:
            offsets.append(base)
            base += len(name) + 1
        for i, name in enumerate(names):
            last = i == len(names) - 1
            if isinstance(val, _Nil) and val.absent and i > 0:
                raise self._err(node, f'map has no entry for key "{names[i - 1]}"', offsets[i - 1])
            val = self._field(node, val, name, args if last else [], last, offsets[i])
        return val

    def _field(self, node: tuple, receiver: object, name: str, args: list[object], last: bool,
               offset: int = 0) -> object:
        if receiver is MISSING or receiver is None:
            raise self._err(node, f"nil pointer evaluating interface {{}}.{name}", offset)
        if is_nil(receiver):
            raise self._err(node, f"nil pointer evaluating *{name}", offset)
        if isinstance(receiver, GoStruct) and receiver.go_names is not None:
            key = receiver.lookup_key(name)
            if key is None:
                raise self._err(node, f"can't evaluate field {name} in type {receiver.type_name}", offset)
            return receiver[key]
        if isinstance(receiver, dict):
            if args:
                raise self._err(node, f"{name} is not a method but has arguments", offset)
            if name in receiver:
                return receiver[name]
            if self.missing_key_error or isinstance(receiver, GoStruct):
                raise self._err(node, f'map has no entry for key "{name}"', offset)
            return MISSING
        attr = getattr(receiver, name, None) if not name.startswith("_") else None
        if attr is None:
            if hasattr(receiver, "__dict__") or hasattr(receiver, "__slots__"):
                raise self._err(node, f"can't evaluate field {name} in type {type(receiver).__name__}")
            raise self._err(node, f"can't evaluate field {name} in type {_go_type(receiver)}")
        if callable(attr):
            try:
                return attr(*args)
            except TypeError:
                raise self._err(node, f"wrong number of args for {name}: want 0 got {len(args)}") from None
        if args:
            raise self._err(node, f"{name} is not a method but has arguments")
        return attr


def parse(source: str, missing_key_error: bool = False) -> Template:
    return Template(source, missing_key_error)


def preformat(fmt: str) -> tuple[str, bool]:
    """docker's Context.preFormat: strip a `table` prefix (returns is_table), map `json` to `{{json .}}`,
    trim spaces and turn the two-character `\\t` and `\\n` into real tabs and newlines."""
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[5:]
    elif fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.strip(" ")
    return fmt.replace("\\t", "\t").replace("\\n", "\n"), is_table
