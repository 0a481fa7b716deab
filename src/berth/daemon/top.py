"""`docker top`: the host's `ps`, filtered to a container's processes, as moby's ContainerTop.

moby runs `ps <args> -q<pid,pid,...>` (falling back to `ps <args>` when the options can't take -q),
then keeps the rows whose PID column names a process of the container (plus the thread rows that
follow one, for `-m`). The pids are host pids (the cgroup's), so `ps` runs in the host's namespaces.
"""

from __future__ import annotations

import re
import subprocess

from berth.errors import BerthError, InvalidArgument

# moby: `\s+([^\s]*)=\s*(PID[^\s]*)` — renaming a column to PID... would fool the PID lookup
_PS_ARGS = re.compile(r"[\t\n\f\r ]+([^\t\n\f\r ]*)=[\t\n\f\r ]*(PID[^\t\n\f\r ]*)")  # RE2's \s: ASCII
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")
_TIMEOUT = 30.0


def validate_ps_args(ps_args: str) -> None:
    for key, value in _PS_ARGS.findall(ps_args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')


def top(pids: list[int], ps_args: str | None = None) -> dict[str, list]:
    """{"Titles": [...], "Processes": [[...], ...]} for the processes `pids` (the container's
    cgroup, host pids), from `ps` run with `ps_args` ("-ef" when None or empty)."""
    ps_args = ps_args or "-ef"
    validate_ps_args(ps_args)
    args = ps_args.split(" ")  # as moby: split on single spaces, so "a  b" passes an empty argument
    q = "-q" + ",".join(str(p) for p in pids)
    try:
        out = _ps([*args, q])
    except subprocess.CalledProcessError:
        # some options (such as f) can't be combined with -q: list everything and filter
        try:
            out = _ps(args)
        except subprocess.CalledProcessError as e:
            first = (e.stderr or b"").split(b"\n", 1)[0].decode("utf-8", "replace")
            raise InvalidArgument(f"ps: {first or f'exit status {e.returncode}'}") from None
    return parse_ps_output(out, pids)


def _ps(args: list[str]) -> str:
    try:
        proc = subprocess.run(["ps", *args], capture_output=True, check=True, timeout=_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BerthError('ps: exec: "ps": executable file not found in $PATH') from None
    except subprocess.TimeoutExpired:
        raise BerthError(f"ps: timed out after {_TIMEOUT:.0f}s") from None
    return proc.stdout.decode("utf-8", "replace")


def _fields(line: str) -> list[str]:
    """Go's strings.FieldsFunc on ASCII white space only (moby #24358: ps may print other spaces)."""
    return [f for f in _ASCII_SPACE.split(line) if f]


def parse_ps_output(output: str, pids: list[int]) -> dict[str, list]:
    lines = output.split("\n")
    titles = _fields(lines[0])
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise InvalidArgument("Couldn't find PID field in ps output") from None
    wanted = set(pids)
    processes: list[list[str]] = []
    in_container = False  # a "-" PID is a thread row (ps -m): it belongs to the process above it
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if in_container:
                processes.append(_row(fields, len(titles)))
            continue
        try:
            p = int(fields[pid_index])
        except ValueError:
            raise InvalidArgument(f"Unexpected pid '{fields[pid_index]}': strconv.Atoi: parsing "
                                  f'"{fields[pid_index]}": invalid syntax') from None
        in_container = p in wanted
        if in_container:
            processes.append(_row(fields, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _row(fields: list[str], ntitles: int) -> list[str]:
    """As many columns as titles: the overhanging fields (the command's arguments) join the last."""
    return [*fields[:ntitles - 1], " ".join(fields[ntitles - 1:])]
