"""`berth-runtime`: runc's command line over berth's runtime library.

Same subcommands, flags, output and exit codes as runc 1.1, so that runc, crun and berth-runtime
are interchangeable (and comparable) under the same bundle. The parser is hand-written: this is
the hot path of every container start and argparse alone costs several milliseconds to import.
"""

from __future__ import annotations

import os
import sys
import time

from berth import fastjson
from berth.errors import BerthError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms per start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

SIGTERM = 15

PROG = "berth-runtime"
VERSION = "0.1.0"

# flag name -> takes a value?
GLOBAL_FLAGS = {"root": True, "log": True, "log-format": True, "debug": False, "systemd-cgroup": False,
                "rootless": True, "criu": True, "help": False, "h": False, "version": False, "v": False}
_BUNDLE = {"bundle": True, "b": True}
COMMANDS: dict[str, dict[str, bool]] = {
    "create": {**_BUNDLE, "console-socket": True, "pid-file": True, "no-pivot": False, "no-new-keyring": False,
               "preserve-fds": True},
    "run": {**_BUNDLE, "console-socket": True, "pid-file": True, "no-pivot": False, "no-new-keyring": False,
            "preserve-fds": True, "detach": False, "d": False, "keep": False, "no-subreaper": False},
    "start": {},
    "state": {},
    "kill": {"all": False, "a": False},
    "delete": {"force": False, "f": False},
    "pause": {},
    "resume": {},
    "exec": {"console-socket": True, "cwd": True, "env": True, "e": True, "tty": False, "t": False, "user": True,
             "u": True, "additional-gids": True, "g": True, "process": True, "p": True, "detach": False, "d": False,
             "pid-file": True, "process-label": True, "apparmor": True, "no-new-privs": False, "cap": True, "c": True,
             "preserve-fds": True, "cgroup": True, "ignore-paused": False},
    "list": {"format": True, "f": True, "quiet": False, "q": False},
    "ps": {"format": True, "f": True},
    "spec": {**_BUNDLE, "rootless": False},
    "update": {"resources": True, "r": True, "memory": True, "memory-swap": True, "memory-reservation": True,
               "cpu-shares": True, "cpu-quota": True, "cpu-period": True, "cpuset-cpus": True, "cpuset-mems": True,
               "pids-limit": True},
    "features": {},
}
# flags that may be repeated (collected into a list)
REPEATABLE = {"env", "e", "cap", "c", "additional-gids", "g"}
ALIASES = {"b": "bundle", "d": "detach", "a": "all", "f": "force", "q": "quiet", "e": "env", "t": "tty",
           "u": "user", "g": "additional-gids", "p": "process", "c": "cap", "r": "resources", "h": "help",
           "v": "version"}


class UsageError(Exception):
    pass


def parse_flags(args: list[str], spec: dict[str, bool], stop_at_positional: bool) -> tuple[dict[str, Any], list[str]]:
    """urfave/cli style: `--flag value`, `--flag=value`, `-flag`; flags end at the first positional
    for the global level; commands also accept flags after positionals until `--`."""
    flags: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            name, eq, val = a.lstrip("-").partition("=")
            if name not in spec:
                raise UsageError(f"flag provided but not defined: -{name}")
            key = ALIASES.get(name, name)
            if spec[name]:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"flag needs an argument: -{name}")
                    val = args[i]
                if name in REPEATABLE:
                    flags.setdefault(key, []).append(val)
                else:
                    flags[key] = val
            else:
                flags[key] = val.lower() not in ("false", "0") if eq else True
        else:
            if stop_at_positional:
                rest.extend(args[i:])
                break
            rest.append(a)
        i += 1
    return flags, rest


class Logger:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def error(self, msg: str, level: str = "error") -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            line = fastjson.dumps({"level": level, "msg": msg, "time": now}, compact=True)
        else:
            line = f'time="{now}" level={level} msg={fastjson.dumps(msg)}'
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def _runtime(g: dict[str, Any]) -> Any:
    from berth.runtime.container import DEFAULT_ROOT, Runtime

    return Runtime(g.get("root") or DEFAULT_ROOT)


def _need_id(rest: list[str], cmd: str) -> str:
    if not rest:
        raise UsageError(f'"{cmd}" requires a minimum of 1 argument')
    return rest[0]


def parse_signal(s: str) -> int:
    import signal

    s = s.strip()
    if s.isdigit():
        return int(s)
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise UsageError(f"unknown signal {s!r}") from None


# ----------------------------------------------------------------------------- commands


def cmd_spec(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    import json

    from berth.runtime.spec import default_spec, rootless

    bundle = f.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise BerthError("File config.json exists. Remove it first.")
    spec = default_spec()
    if f.get("rootless"):
        spec = rootless(spec)
    with open(path, "w") as out:
        json.dump(spec, out, indent="\t")
    return 0


def cmd_create(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    cid = _need_id(rest, "create")
    _runtime(g).create(cid, f.get("bundle") or ".", console_socket=f.get("console-socket"),
                       pid_file=f.get("pid-file"), no_pivot=bool(f.get("no-pivot")),
                       preserve_fds=int(f.get("preserve-fds") or 0))
    return 0


def cmd_start(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    _runtime(g).get(_need_id(rest, "start")).start()
    return 0


def cmd_state(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    import json

    c = _runtime(g).get(_need_id(rest, "state"))
    sys.stdout.write(json.dumps(c.oci_state(), indent=2))
    return 0


def cmd_kill(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    cid = _need_id(rest, "kill")
    sig = parse_signal(rest[1]) if len(rest) > 1 else SIGTERM
    _runtime(g).get(cid).kill(sig, bool(f.get("all")))
    return 0


def cmd_delete(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    from berth.runtime.errors import ContainerNotFound

    cid = _need_id(rest, "delete")
    try:
        c = _runtime(g).get(cid)
    except ContainerNotFound:
        if f.get("force"):
            return 0
        raise
    c.delete(force=bool(f.get("force")), warn=g["log"].error)
    return 0


def cmd_pause(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    _runtime(g).get(_need_id(rest, "pause")).pause()
    return 0


def cmd_resume(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    _runtime(g).get(_need_id(rest, "resume")).resume()
    return 0


def cmd_list(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    rows = []
    for c in _runtime(g).containers():
        s = c.oci_state()
        rows.append(s)
    if f.get("quiet"):
        for s in rows:
            print(s["id"])
        return 0
    if f.get("format") == "json":
        print(fastjson.dumps([{**s, "owner": s["owner"] or "root"} for s in rows], compact=True))
        return 0
    table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    table += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"] or "root"] for s in rows]
    sys.stdout.write(tabwrite(table, minwidth=12, padding=1))
    return 0


def tabwrite(rows: list[list[str]], minwidth: int = 0, padding: int = 3) -> str:
    """Go's text/tabwriter: each column as wide as its widest cell plus padding, at least minwidth."""
    widths = [max(minwidth, *(len(r[i]) + padding for r in rows)) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def cmd_ps(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    import subprocess

    c = _runtime(g).get(_need_id(rest, "ps"))
    if c.status() == "stopped":
        raise BerthError("container not running")
    pids = c.processes()
    if f.get("format") == "json":
        print(fastjson.dumps(pids, compact=True))
        return 0
    ps_args = rest[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout.splitlines()
    if not out:
        return 0
    header = out[0]
    try:
        pid_col = header.split().index("PID")
    except ValueError:
        raise BerthError("couldn't find PID field in ps output") from None
    print(header)
    want = set(pids)
    for line in out[1:]:
        fields = line.split()
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in want:
            print(line)
    return 0


def cmd_update(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    c = _runtime(g).get(_need_id(rest, "update"))
    res: dict[str, Any] = {}
    if f.get("resources"):
        if f["resources"] == "-":
            res = fastjson.loads(sys.stdin.read())  # type: ignore[assignment]
        else:
            with open(f["resources"]) as fh:
                res = fastjson.loads(fh.read())  # type: ignore[assignment]
    mem = res.setdefault("memory", {})
    cpu = res.setdefault("cpu", {})
    for flag, (d, key) in {"memory": (mem, "limit"), "memory-swap": (mem, "swap"),
                           "memory-reservation": (mem, "reservation"), "cpu-shares": (cpu, "shares"),
                           "cpu-quota": (cpu, "quota"), "cpu-period": (cpu, "period")}.items():
        if f.get(flag) is not None:
            d[key] = int(f[flag])
    for flag, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if f.get(flag) is not None:
            cpu[key] = f[flag]
    if f.get("pids-limit") is not None:
        res["pids"] = {"limit": int(f["pids-limit"])}
    c.update({k: v for k, v in res.items() if v})
    return 0


def cmd_features(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    import json

    from berth.runtime.linux.mountopts import _FLAGS, _PROPAGATION, _REC_ATTRS
    from berth.runtime.linux.syscalls import NAMESPACE_FLAGS
    from berth.runtime.state import OCI_VERSION

    print(json.dumps({"ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
                      "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                "poststop"],
                      "mountOptions": sorted([*_FLAGS, *_PROPAGATION, *_REC_ATTRS]),
                      "linux": {"namespaces": sorted(NAMESPACE_FLAGS)}}, indent=4))
    return 0


def _forward_signals(pid: int) -> Callable[[], None]:
    """Relay the signals a foreground runc relays to the container's init; returns an undo."""
    import _signal

    sigs = [_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2]
    old = {}

    def relay(signum: int, _frame: Any) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in sigs:
        old[s] = _signal.signal(s, relay)

    def undo() -> None:
        for s, h in old.items():
            _signal.signal(s, h)

    return undo


def _wait_foreground(pid: int, master: int | None) -> int:
    """Wait for `pid` (our child), relaying a pty if we own one; reap orphans as a subreaper."""
    from berth.runtime.container import exit_status

    if master is not None:
        from berth.runtime import ttyproxy

        ttyproxy.proxy(master, pid)
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if wpid == pid:
            return exit_status(status)


def _console_pair(terminal: bool, console_socket: str | None) -> tuple[Any, Any]:
    """For a foreground run with a terminal and no --console-socket, runc keeps the pty master itself."""
    if not terminal or console_socket:
        return None, None
    import socket

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a, b


def _recv_master(sock: Any) -> int:
    import socket

    _msg, fds, _flags, _addr = socket.recv_fds(sock, 1024, 1)
    if not fds:
        raise BerthError("no console master received")
    return fds[0]


def cmd_run(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    from berth.runtime import config as cfgmod
    from berth.runtime.linux import syscalls as sc

    cid = _need_id(rest, "run")
    bundle = f.get("bundle") or "."
    config = cfgmod.load_bundle(os.path.abspath(bundle))
    detach = bool(f.get("detach"))
    terminal = bool((config.get("process") or {}).get("terminal"))
    if terminal and detach and not f.get("console-socket"):
        raise BerthError("cannot allocate tty if runc will detach without setting console socket")
    if not detach and not f.get("no-subreaper"):
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    ours, theirs = _console_pair(terminal, f.get("console-socket"))
    rt = _runtime(g)
    c = rt.create(cid, bundle, console_socket=f.get("console-socket"), console=theirs, pid_file=f.get("pid-file"),
                  no_pivot=bool(f.get("no-pivot")), preserve_fds=int(f.get("preserve-fds") or 0), config=config)
    master = None
    try:
        if theirs is not None:
            theirs.close()
            master = _recv_master(ours)
            ours.close()
        undo = _forward_signals(c.pid) if not detach else None
        c.start()
    except BaseException:
        c.delete(force=True)
        raise
    if detach:
        return 0
    try:
        code = _wait_foreground(c.pid, master)
    finally:
        if undo:
            undo()
    if not f.get("keep"):
        c.delete(force=True, warn=g["log"].error)
    return code


def _process_from_flags(c: Any, f: dict[str, Any], rest: list[str]) -> dict[str, Any]:
    if f.get("process"):
        with open(f["process"]) as fh:
            proc: dict[str, Any] = fastjson.loads(fh.read())  # type: ignore[assignment]
        return proc
    base = dict(c.st.config.get("process") or {})
    if len(rest) < 2:
        raise UsageError('"exec" requires a minimum of 2 arguments')
    proc = dict(base)
    proc["args"] = rest[1:]
    proc["terminal"] = bool(f.get("tty"))
    proc.pop("consoleSize", None)
    if f.get("cwd"):
        proc["cwd"] = f["cwd"]
    env = list(base.get("env") or [])
    for e in f.get("env") or []:
        key = e.split("=", 1)[0]
        env = [x for x in env if x.split("=", 1)[0] != key] + [e]
    proc["env"] = env
    if f.get("user"):
        uid, _, gid = f["user"].partition(":")
        proc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if f.get("additional-gids"):
        proc.setdefault("user", {"uid": 0, "gid": 0})
        proc["user"] = {**proc["user"], "additionalGids": [int(x) for x in f["additional-gids"]]}
    if f.get("no-new-privs"):
        proc["noNewPrivileges"] = True
    if f.get("cap"):
        caps = {k: list(v) for k, v in (proc.get("capabilities") or {}).items()}
        for cap in f["cap"]:
            for s in ("bounding", "effective", "permitted", "ambient", "inheritable"):
                if s != "ambient" and s != "inheritable" and cap not in caps.setdefault(s, []):
                    caps[s].append(cap)
        proc["capabilities"] = caps
    return proc


def cmd_exec(g: dict[str, Any], f: dict[str, Any], rest: list[str]) -> int:
    cid = _need_id(rest, "exec")
    c = _runtime(g).get(cid)
    proc = _process_from_flags(c, f, rest)
    detach = bool(f.get("detach"))
    terminal = bool(proc.get("terminal"))
    if terminal and detach and not f.get("console-socket"):
        raise BerthError("cannot allocate tty if runc will detach without setting console socket")
    ours, theirs = _console_pair(terminal, f.get("console-socket"))
    pid = c.exec(proc, console_socket=f.get("console-socket"), console=theirs, pid_file=f.get("pid-file"),
                 preserve_fds=int(f.get("preserve-fds") or 0), ignore_paused=bool(f.get("ignore-paused")))
    if detach:
        return 0
    master = None
    if theirs is not None:
        theirs.close()
        master = _recv_master(ours)
    undo = _forward_signals(pid)
    try:
        return _wait_foreground(pid, master)
    finally:
        undo()


HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], list[str]], int]] = {
    "spec": cmd_spec, "create": cmd_create, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "pause": cmd_pause, "resume": cmd_resume, "list": cmd_list, "ps": cmd_ps,
    "run": cmd_run, "exec": cmd_exec, "update": cmd_update, "features": cmd_features,
}

USAGE = f"""NAME:
   {PROG} - berth's Open Container Initiative runtime (runc's command line)

USAGE:
   {PROG} [global options] command [command options] [arguments...]

COMMANDS:
   create   create a container
   delete   delete any resources held by the container
   exec     execute new process inside the container
   features show the enabled features
   kill     kill sends the specified signal (default: SIGTERM) to the container's init process
   list     lists containers started by {PROG} with the given root
   pause    pause suspends all processes inside the container
   ps       ps displays the processes running inside a container
   resume   resumes all processes that have been previously paused
   run      create and run a container
   spec     create a new specification file
   start    executes the user defined process in a created container
   state    output the state of a container
   update   update container resource constraints

GLOBAL OPTIONS:
   --log value         set the log file to write logs to (default is '/dev/stderr')
   --log-format value  set the log format ('text' (default), or 'json')
   --root value        root directory for storage of container state (default: "/run/berth-runtime")
"""


def _exit(code: int) -> NoReturn:
    """Exit without the interpreter's teardown (~2 ms of module cleanup a short-lived runtime never needs)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """The command line. Called with `argv`, it behaves as a library call and raises SystemExit;
    as the program it ends with os._exit."""
    if argv is not None:
        _main(argv)
    import gc

    gc.disable()  # a run lasts milliseconds: collection passes only cost time
    try:
        _main(sys.argv[1:], warm=True)
    except SystemExit as e:
        _exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
    _exit(0)


def _main(argv: list[str], warm: bool = False) -> NoReturn:
    """`warm`: as the program (not a library call), start the cgroup-attach warm-up (attachwarm)."""
    log = Logger(None, "text")
    cmd = "?"
    try:
        g, rest = parse_flags(argv, GLOBAL_FLAGS, stop_at_positional=True)
        log = Logger(g.get("log"), g.get("log-format") or "text")
        g["log"] = log
        if g.get("version"):
            print(f"{PROG} version {VERSION}\nspec: 1.2.0")
            sys.exit(0)
        if g.get("help") or not rest:
            sys.stdout.write(USAGE)
            sys.exit(0)
        cmd = rest[0]
        if cmd not in COMMANDS:
            raise UsageError(f"No help topic for '{cmd}'")
        if warm and cmd in ("run", "create", "exec"):
            from berth.runtime import attachwarm

            attachwarm.start()
        # exec: flags come before the id; everything after the id is the command and its flags
        f, args = parse_flags(rest[1:], COMMANDS[cmd], stop_at_positional=cmd == "exec")
        sys.exit(HANDLERS[cmd](g, f, args))
    except UsageError as e:
        log.error(str(e), level="fatal" if cmd == "?" else "error")
        sys.exit(1)
    except BerthError as e:
        msg = str(e)
        if cmd in ("create", "run") and not msg.startswith(f"{PROG} {cmd} failed"):
            msg = f"{PROG} {cmd} failed: {msg}"
        elif cmd == "exec":
            msg = msg if msg.startswith("exec failed") else f"exec failed: {msg}"
        log.error(msg)
        sys.exit(255 if cmd == "exec" else 1)
    except Exception as e:  # StartError and friends carry runc's wording already
        from berth.runtime.errors import RuntimeErrorBase

        msg = str(e) if isinstance(e, RuntimeErrorBase) else f"{type(e).__name__}: {e}"
        if isinstance(e, OSError) and not isinstance(e, RuntimeErrorBase):
            msg = f"{e.strerror}: {e.filename}" if e.filename else str(e.strerror or e)
        if cmd in ("create", "run"):
            msg = f"{PROG} {cmd} failed: {msg}"
        log.error(msg)
        sys.exit(255 if cmd == "exec" else 1)
