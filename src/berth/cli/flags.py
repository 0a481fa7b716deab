"""A flag parser with docker's (pflag's) rules, light enough for every command's start-up.

What it reproduces: combined short flags (`-it`), a short flag's value glued on (`-eA=1`, `-e=A=1`),
`--flag=value` and `--flag value`, booleans with `=false`, repeated flags collecting lists, `--`, and,
for `run`/`exec`/`create`, no flag parsing after the first positional argument (the image or
container). Errors read as pflag's and exit 125; argument-count errors read as cobra's and exit 1."""

from __future__ import annotations

TYPE_CHECKING = False  # typing and collections.abc cost a millisecond or two on every command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Converter = Callable[[str], object]

BOOL, STRING, INT, LIST, CUSTOM = "bool", "string", "int", "list", "custom"



class UsageError(Exception):
    """A command-line mistake: printed with the command's usage, exit status `code`."""

    def __init__(self, message: str, usage: str = "", code: int = 125, help_word: str = "Run") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.code = code
        self.help_word = help_word


class Flag:
    __slots__ = ("api", "conv", "default", "help", "hidden", "kind", "name", "ostype", "short", "type_name")

    def __init__(self, name: str, short: str = "", kind: str = STRING, default: object = None, help: str = "",
                 conv: Converter | None = None, hidden: bool = False, type_name: str = "", api: str = "",
                 ostype: str = "") -> None:
        self.api = api  # the API version the flag needs (docker's "version" annotation)
        self.ostype = ostype  # the daemon OS it is for (docker's "ostype" annotation)
        self.name = name
        self.short = short
        self.kind = kind
        self.help = help
        self.conv = conv
        self.hidden = hidden
        self.type_name = type_name or {BOOL: "", STRING: "string", INT: "int", LIST: "list"}.get(kind, "value")
        if default is None:
            default = {BOOL: False, STRING: "", INT: 0, LIST: None}.get(kind)
        self.default = default

    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


def go_parse_int(text: str) -> int:
    """strconv.ParseInt(s, 0, 64) as pflag's IntVar uses it (base prefixes, underscores rejected)."""
    s = text.strip()
    try:
        if s.lower().startswith(("0x", "-0x")):
            return int(s, 16)
        if s.lower().startswith(("0o", "-0o")):
            return int(s, 8)
        if s.lower().startswith(("0b", "-0b")):
            return int(s, 2)
        if len(s.lstrip("-+")) > 1 and s.lstrip("-+").startswith("0"):
            return int(s, 8)
        if "_" in s or not s or s != text:
            raise ValueError
        return int(s, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


class Values:
    """Parsed flag values by attribute (dashes become underscores), plus which flags were given."""

    def __init__(self, values: dict[str, object], changed: set[str]) -> None:
        self.__dict__.update({k.replace("-", "_"): v for k, v in values.items()})
        self._changed = changed

    def changed(self, name: str) -> bool:
        return name in self._changed

    def get(self, name: str) -> Any:
        return self.__dict__[name.replace("-", "_")]

    def __getattr__(self, name: str) -> Any:  # for mypy: attributes are dynamic
        raise AttributeError(name)


class Command:
    """A command's flags and argument rules. `path` is e.g. "berth container ls"; `use` its Use line."""

    def __init__(self, path: str, use: str, flags: list[Flag] | None = None, *, interspersed: bool = True,
                 min_args: int | None = None, max_args: int | None = None, exact: int | None = None,
                 no_args: bool = False, short: str = "", bin_name: str = "berth") -> None:
        self.path = path
        self.use = use
        self.flags = list(flags or [])
        self.flags.append(Flag("help", "", BOOL, help="Print usage"))
        self.interspersed = interspersed
        self.min_args, self.max_args, self.exact, self.no_args = min_args, max_args, exact, no_args
        self.short = short
        self.bin_name = bin_name
        self._long = {f.name: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    @property
    def usage_line(self) -> str:
        return f"{self.path} {self.use}".rstrip() if self.use else self.path

    def error(self, message: str) -> UsageError:
        return UsageError(message, self.usage_line, 125)

    def _set(self, flag: Flag, raw: str, values: dict[str, object], changed: set[str]) -> None:
        if flag.kind == BOOL:
            try:
                value: object = parse_bool(raw)
            except ValueError as e:
                raise self.error(f'invalid argument "{raw}" for "{flag.label()}" flag: {e}') from None
        elif flag.kind == INT:
            try:
                value = go_parse_int(raw)
            except ValueError as e:
                raise self.error(f'invalid argument "{raw}" for "{flag.label()}" flag: {e}') from None
        else:
            value = raw
            if flag.conv is not None:
                try:
                    value = flag.conv(raw)
                except ValueError as e:
                    raise self.error(f'invalid argument "{raw}" for "{flag.label()}" flag: {e}') from None
        if flag.kind == LIST:
            current = values.get(flag.name)
            if not isinstance(current, list) or flag.name not in changed:
                current = []
            current.append(value)
            value = current
        values[flag.name] = value
        changed.add(flag.name)

    def parse(self, argv: list[str]) -> tuple[Values, list[str]]:
        """Parse argv (after the command name). Raises UsageError (exit 125) on a bad flag."""
        values: dict[str, object] = {f.name: (list(f.default) if isinstance(f.default, list) else f.default)
                                     for f in self.flags}
        changed: set[str] = set()
        args: list[str] = []
        i = 0
        n = len(argv)
        while i < n:
            a = argv[i]
            i += 1
            if a == "--":
                args.extend(argv[i:])
                break
            if a.startswith("--") and len(a) > 2:
                name, eq, val = a[2:].partition("=")
                flag = self._long.get(name)
                if flag is None:
                    raise self.error(f"unknown flag: --{name}")
                if eq:
                    self._set(flag, val, values, changed)
                elif flag.kind == BOOL:
                    self._set(flag, "true", values, changed)
                elif i < n:
                    self._set(flag, argv[i], values, changed)
                    i += 1
                else:
                    raise self.error(f"flag needs an argument: --{name}")
                continue
            if a.startswith("-") and len(a) > 1:
                shorts = a[1:]
                while shorts:
                    c = shorts[0]
                    flag = self._short.get(c)
                    if flag is None:
                        raise self.error(f"unknown shorthand flag: {c!r} in -{shorts}".replace('"', "'"))
                    if len(shorts) > 2 and shorts[1] == "=":
                        self._set(flag, shorts[2:], values, changed)
                        shorts = ""
                    elif flag.kind == BOOL:
                        self._set(flag, "true", values, changed)
                        shorts = shorts[1:]
                    elif len(shorts) > 1:
                        self._set(flag, shorts[1:], values, changed)
                        shorts = ""
                    elif i < n:
                        self._set(flag, argv[i], values, changed)
                        i += 1
                        shorts = ""
                    else:
                        raise self.error(f"flag needs an argument: {c!r} in -{c}")
                continue
            args.append(a)
            if not self.interspersed:
                args.extend(argv[i:])
                break
        return Values(values, changed), args

    def unsupported(self, values: Values, api_version: object, ostype: object) -> list[str]:
        """docker's areFlagsSupported: given flags that the daemon's API version or OS can't honour.
        `api_version` and `ostype` are callables, so the daemon is asked only when a flag needs it."""
        from berth.client.api import version_lt

        errs = []
        for f in self.flags:
            if not values.changed(f.name):
                continue
            if f.api:
                current = api_version()  # type: ignore[operator]
                if version_lt(current, f.api):
                    errs.append(f'"--{f.name}" requires API version {f.api}, but the Docker daemon API version is '
                                f"{current}")
                    continue
            if f.ostype:
                os_ = ostype()  # type: ignore[operator]
                if os_ != f.ostype:
                    errs.append(f'"--{f.name}" is only supported on a Docker daemon running on {f.ostype}, but the '
                                f"Docker daemon is running on {os_}")
        return errs

    def check_args(self, args: list[str]) -> None:
        """cobra's positional-argument validators, with their wording (exit 1)."""
        path, bn, ul = self.path, self.bin_name, self.usage_line

        def plural(k: int) -> str:
            return "argument" if k == 1 else "arguments"

        if self.no_args and args:
            raise UsageError(f"{bn}: '{path}' accepts no arguments", ul, 1)
        if self.exact is not None and len(args) != self.exact:
            raise UsageError(f"{bn}: '{path}' requires {self.exact} {plural(self.exact)}", ul, 1)
        if self.min_args is not None and self.max_args is not None:
            if not self.min_args <= len(args) <= self.max_args:
                raise UsageError(f"{bn}: '{path}' requires at least {self.min_args} and at most {self.max_args} "
                                 f"{plural(self.max_args)}", ul, 1)
            return
        if self.min_args is not None and len(args) < self.min_args:
            raise UsageError(f"{bn}: '{path}' requires at least {self.min_args} {plural(self.min_args)}", ul, 1,
                             help_word="See")
        if self.max_args is not None and len(args) > self.max_args:
            raise UsageError(f"{bn}: '{path}' requires at most {self.max_args} {plural(self.max_args)}", ul, 1)

    def help_text(self) -> str:
        """`--help`: usage, description and the flag table in cobra's layout."""
        lines = [f"\nUsage:  {self.usage_line}\n"]
        if self.short:
            lines.append(f"{self.short}\n")
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            lines.append("Options:")
            rows = []
            for f in sorted(shown, key=lambda f: f.name):
                left = (f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}")
                if f.type_name:
                    left += f" {f.type_name}"
                rows.append((left, f.help))
            width = max(len(r[0]) for r in rows) + 3
            for left, text in rows:
                lines.append(f"{left.ljust(width)}{text}".rstrip())
        return "\n".join(lines) + "\n"
