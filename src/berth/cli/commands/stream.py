"""Commands that stream a container's I/O: start (-a/-i), attach, exec, logs."""

from __future__ import annotations

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import _cpath, _parse
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.client.errors import DaemonError


def _detach_keys(cli: Cli, flag: str) -> tuple[str, bytes]:
    from berth.cli.terminal import DEFAULT_DETACH_KEYS, parse_detach_keys

    text = flag or cli.config.detach_keys
    keys = DEFAULT_DETACH_KEYS
    if text:
        try:
            keys = parse_detach_keys(text)
        except ValueError as e:
            cli.err(f"invalid detach escape keys, using default: {e}")
    return text, keys


def _forwarder(cli: Cli, cid: str, tty: bool, resize_path: str | None):
    import signal as _signal

    from berth.cli.pump import signal_name

    def on_signal(num: int) -> None:
        if num == _signal.SIGWINCH and resize_path is not None:
            from berth.cli.commands.run import _resize

            _resize(cli, resize_path)
            if tty:
                return
        if num in (_signal.SIGCHLD, _signal.SIGPIPE, _signal.SIGURG) or tty:
            return
        try:
            cli.client.post(_cpath(cid, "kill"), {"signal": signal_name(num)})
        except Exception:
            pass

    return on_signal


def _attach_params(stdin: bool, keys_text: str, logs: bool = False) -> dict[str, object]:
    params: dict[str, object] = {"stream": True, "stdin": stdin or None, "stdout": True, "stderr": True}
    if keys_text:
        params["detachKeys"] = keys_text
    if logs:
        params["logs"] = True
    return params


def start(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER [CONTAINER...]", [
        Flag("attach", "a", BOOL, help="Attach STDOUT/STDERR and forward signals"),
        Flag("interactive", "i", BOOL, help="Attach container's STDIN"),
        Flag("detach-keys", "", STRING, help="Override the key sequence for detaching a container"),
        Flag("checkpoint", "", STRING, ostype="linux", help="Restore from this checkpoint"),
        Flag("checkpoint-dir", "", STRING, ostype="linux", help="Use a custom checkpoint storage directory"),
    ], argv, "Start one or more stopped containers", min_args=1)
    if p is None:
        return 0
    o, args = p
    client = cli.client
    if o.attach or o.interactive:
        if len(args) > 1:
            raise StatusError(1, "you cannot start and attach multiple containers at once")
        from berth.cli.pump import PROXY_SIGNALS, SignalQueue, pump
        from berth.cli.terminal import is_tty

        c = client.get_json(_cpath(args[0], "json"))
        assert isinstance(c, dict)
        cid = str(c["Id"])
        tty = bool(c["Config"].get("Tty"))
        stdin = bool(o.interactive and c["Config"].get("OpenStdin"))
        keys_text, keys = _detach_keys(cli, o.detach_keys)
        signals = SignalQueue(PROXY_SIGNALS if not tty else ("SIGWINCH",))
        try:
            conn, _ = client.hijack(_cpath(cid, "attach"), _attach_params(stdin, keys_text))
            auto_remove = bool((c.get("HostConfig") or {}).get("AutoRemove"))
            waiter = client.request("POST", _cpath(cid, "wait"),
                                    {"condition": "removed" if auto_remove else "next-exit"})
            try:
                client.post(_cpath(cid, "start"))
            except DaemonError:
                conn.close()
                raise
            out_tty = is_tty(1)
            resize = _cpath(cid, "resize") if (tty and out_tty) else None
            if resize:
                from berth.cli.commands.run import _init_tty_size

                _init_tty_size(cli, resize)
            cli.stdout.flush()
            res = pump(conn, tty=tty, stdin_fd=0 if stdin else None, stdout_fd=1, stderr_fd=2 if not tty else 1,
                       detach_keys=keys, waiter=waiter, signals=signals,
                       on_signal=_forwarder(cli, cid, tty, resize), raw_terminal=tty and stdin and is_tty(0),
                       log=cli.err)
            conn.close()
        finally:
            signals.close()
        if res.detached:
            return 0
        if res.error:
            raise StatusError(1, res.error)
        return res.status or 0
    if o.checkpoint:
        if len(args) > 1:
            raise StatusError(1, "you cannot restore multiple containers at once")
        params = {"checkpoint": o.checkpoint, "checkpoint-dir": o.checkpoint_dir or None}
        client.post(_cpath(args[0], "start"), params)
        return 0
    failed = []
    for name in args:
        try:
            client.post(_cpath(name, "start"))
        except DaemonError as e:
            cli.err(str(e))
            failed.append(name)
            continue
        cli.out(name)
    if failed:
        raise StatusError(1, f"Error: failed to start containers: {', '.join(failed)}")
    return 0


def attach(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER", [
        Flag("no-stdin", "", BOOL, help="Do not attach STDIN"),
        Flag("sig-proxy", "", BOOL, default=True, help="Proxy all received signals to the process"),
        Flag("detach-keys", "", STRING, help="Override the key sequence for detaching a container"),
    ], argv, "Attach local standard input, output, and error streams to a running container", exact=1)
    if p is None:
        return 0
    o, args = p
    from berth.cli.pump import PROXY_SIGNALS, SignalQueue, pump
    from berth.cli.terminal import is_tty

    client = cli.client
    name = args[0]
    waiter = client.request("POST", _cpath(name, "wait"))

    def check() -> dict[str, object]:
        c = client.get_json(_cpath(name, "json"))
        assert isinstance(c, dict)
        st = c.get("State") or {}
        if not st.get("Running"):
            raise StatusError(1, "You cannot attach to a stopped container, start it first")
        if st.get("Paused"):
            raise StatusError(1, "You cannot attach to a paused container, unpause it first")
        if st.get("Restarting"):
            raise StatusError(1, "You cannot attach to a restarting container, wait until it is running")
        return c

    c = check()
    config = c.get("Config") or {}
    tty = bool(config.get("Tty"))  # type: ignore[attr-defined]
    if tty and not o.no_stdin and not is_tty(0):
        raise StatusError(1, "the input device is not a TTY")
    keys_text, keys = _detach_keys(cli, o.detach_keys)
    stdin = bool(not o.no_stdin and config.get("OpenStdin"))  # type: ignore[attr-defined]
    signals = SignalQueue(PROXY_SIGNALS if (o.sig_proxy and not tty) else ("SIGWINCH",))
    try:
        conn, _ = client.hijack(_cpath(name, "attach"), _attach_params(stdin, keys_text))
        check()
        out_tty = is_tty(1)
        resize = _cpath(name, "resize") if (tty and out_tty) else None
        if resize:
            from berth.cli.terminal import size

            h, w = size(1)
            try:
                # docker nudges the size by one first so the program redraws
                client.post(resize, {"h": h + 1, "w": w + 1})
            except DaemonError:
                pass
            from berth.cli.commands.run import _init_tty_size

            _init_tty_size(cli, resize)
        cli.stdout.flush()
        res = pump(conn, tty=tty, stdin_fd=0 if stdin else None, stdout_fd=1, stderr_fd=2 if not tty else 1,
                   detach_keys=keys, waiter=waiter, signals=signals,
                   on_signal=_forwarder(cli, str(c["Id"]), tty or not o.sig_proxy, resize),
                   raw_terminal=tty and stdin and is_tty(0), log=cli.err)
        conn.close()
    finally:
        signals.close()
    if res.detached:
        return 0
    if res.error:
        raise StatusError(1, res.error)
    return res.status or 0


def exec_(cli: Cli, path: str, argv: list[str]) -> int:
    from berth.cli.validate import _kv_file, validate_env

    p = _parse(cli, path, "[OPTIONS] CONTAINER COMMAND [ARG...]", [
        Flag("detach-keys", "", STRING, help="Override the key sequence for detaching a container"),
        Flag("interactive", "i", BOOL, help="Keep STDIN open even if not attached"),
        Flag("tty", "t", BOOL, help="Allocate a pseudo-TTY"),
        Flag("detach", "d", BOOL, help="Detached mode: run command in the background"),
        Flag("user", "u", STRING, help='Username or UID (format: "<name|uid>[:<group|gid>]")'),
        Flag("privileged", "", BOOL, help="Give extended privileges to the command"),
        Flag("env", "e", LIST, conv=validate_env, api="1.25", help="Set environment variables"),
        Flag("env-file", "", LIST, api="1.25", help="Read in a file of environment variables"),
        Flag("workdir", "w", STRING, api="1.35", help="Working directory inside the container"),
    ], argv, "Execute a command in a running container", min_args=2, interspersed=False)
    if p is None:
        return 0
    o, args = p
    from berth.cli.terminal import is_tty, size

    client = cli.client
    name, command = args[0], args[1:]
    env: list[str] = []
    try:
        for f in o.env_file or []:
            env += _kv_file(f, True)
    except ValueError as e:
        raise StatusError(1, str(e)) from None
    env += o.env or []
    detach = bool(o.detach)
    attach_stdin = bool(o.interactive) and not detach
    keys_text = o.detach_keys or cli.config.detach_keys
    client.get_json(_cpath(name, "json"))
    if not detach and o.tty and attach_stdin and not is_tty(0):
        raise StatusError(1, "the input device is not a TTY")
    from berth.client.api import version_lt

    # ConsoleSize is sent (from API 1.42) only with a TTY, as docker's client does
    console = list(size(1)) if (o.tty and not version_lt(client.api_version(), "1.42")) else None
    body: dict[str, object] = {"User": o.user, "Privileged": o.privileged, "Tty": o.tty}
    if console is not None:
        body["ConsoleSize"] = console
    body.update({
        "AttachStdin": attach_stdin, "AttachStderr": not detach, "AttachStdout": not detach, "Detach": detach,
        "DetachKeys": keys_text, "Env": env or None, "WorkingDir": o.workdir, "Cmd": command,
    })
    resp = client.post_json(_cpath(name, "exec"), json=body)
    exec_id = str((resp or {}).get("Id") or "")  # type: ignore[attr-defined]
    if not exec_id:
        raise StatusError(1, "exec ID empty")
    start_body: dict[str, object] = {"Detach": detach, "Tty": bool(o.tty)}
    if console is not None:
        start_body["ConsoleSize"] = console
    if detach:
        client.post(f"/exec/{exec_id}/start", json=start_body)
        return 0
    from berth.cli.pump import SignalQueue, pump

    _, keys = _detach_keys(cli, o.detach_keys)
    conn, _ = client.hijack(f"/exec/{exec_id}/start", json=start_body)
    resize = f"/exec/{exec_id}/resize" if (o.tty and is_tty(0)) else None
    signals = SignalQueue(("SIGWINCH",)) if resize else None
    try:
        if resize:
            from berth.cli.commands.run import _init_tty_size

            _init_tty_size(cli, resize)

        def on_signal(num: int) -> None:
            if resize:
                from berth.cli.commands.run import _resize

                _resize(cli, resize)

        cli.stdout.flush()
        res = pump(conn, tty=bool(o.tty), stdin_fd=0 if attach_stdin else None, stdout_fd=1,
                   stderr_fd=1 if o.tty else 2, detach_keys=keys, signals=signals, on_signal=on_signal,
                   raw_terminal=bool(o.tty) and attach_stdin and is_tty(0), log=cli.err)
        conn.close()
    finally:
        if signals is not None:
            signals.close()
    if res.detached:
        return 0
    if res.error:
        raise StatusError(1, res.error)
    info = client.get_json(f"/exec/{exec_id}/json") or {}
    code = info.get("ExitCode")  # type: ignore[attr-defined]
    return int(code or 0)


def get_timestamp(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: a duration ("10m") counts back from now, RFC 3339 dates and
    unix timestamps become "<seconds>.<nanoseconds>"."""
    import time

    from berth.units import parse_duration

    now = time.time() if now is None else now
    try:
        d = parse_duration(value)
    except ValueError:
        d = None
    if d is not None and value not in ("0",):
        t_ns = int(now * 1e9) - d
        return f"{t_ns // 10**9}.{t_ns % 10**9:09d}"
    body = value.split(".", 1)
    if body[0].lstrip("-").isdigit() and (len(body) == 1 or body[1].isdigit()):
        return value
    import datetime as dt

    text = value.replace("z", "Z")
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                   "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H%z", "%Y-%m-%dT%H", "%Y-%m-%d"):
        try:
            t = dt.datetime.strptime(text.replace("Z", "+0000"), layout)
        except ValueError:
            continue
        if t.tzinfo is None:
            t = t.astimezone()
        ts = t.timestamp()
        sec = int(ts // 1)
        return f"{sec}.{round((ts - sec) * 1e9):09d}"
    raise StatusError(1, f'failed to parse value as time or duration: "{value}"')


def logs(cli: Cli, path: str, argv: list[str]) -> int:
    p = _parse(cli, path, "[OPTIONS] CONTAINER", [
        Flag("follow", "f", BOOL, help="Follow log output"),
        Flag("since", "", STRING, help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                                       '(e.g. "42m" for 42 minutes)'),
        Flag("until", "", STRING, api="1.35",
             help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
        Flag("timestamps", "t", BOOL, help="Show timestamps"),
        Flag("details", "", BOOL, help="Show extra details provided to logs"),
        Flag("tail", "n", STRING, default="all", help="Number of lines to show from the end of the logs"),
    ], argv, "Fetch the logs of a container", exact=1)
    if p is None:
        return 0
    o, args = p
    client = cli.client
    c = client.get_json(_cpath(args[0], "json"))
    assert isinstance(c, dict)
    params: dict[str, object] = {"stdout": True, "stderr": True, "timestamps": o.timestamps or None,
                                 "details": o.details or None, "follow": o.follow or None, "tail": o.tail}
    if o.since:
        params["since"] = get_timestamp(o.since)
    if o.until:
        params["until"] = get_timestamp(o.until)
    resp = client.request("GET", _cpath(str(c["Id"]), "logs"), params)
    from berth.cli.pump import write_all

    cli.stdout.flush()
    if (c.get("Config") or {}).get("Tty"):
        for piece in resp.iter_raw():
            if not write_all(1, piece):
                break
        return 0
    from berth.client.stdcopy import STDERR, Demuxer, StreamError

    demux = Demuxer()
    try:
        for piece in resp.iter_raw():
            for stream, payload in demux.feed(piece):
                write_all(2 if stream == STDERR else 1, payload)
    except StreamError as e:
        raise StatusError(1, str(e)) from None
    return 0
