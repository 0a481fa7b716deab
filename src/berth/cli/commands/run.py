"""`run` and `create`: docker's flow, request for request (docker-api.md §2).

run: create (on 404: "Unable to find image", pull, create again) → attach (hijack) →
`wait?condition=next-exit|removed` (its headers arrive before start) → start → resize if TTY →
pump the streams → exit with the wait's StatusCode."""

from __future__ import annotations

import os

from berth.cli.app import Cli, StatusError
from berth.cli.commands.container import check_supported
from berth.cli.flags import BOOL, STRING, Command, Flag, Values
from berth.cli.opts import build_create_body, container_flags
from berth.client.errors import DaemonError, DaemonNotFound

USE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"
PULL_CHOICES = ("always", "missing", "never", "")


def _with_help(cli: Cli, err: object, verb: str) -> str:
    return f"{cli.bin_name}: {err}\n\nRun '{cli.bin_name} {verb} --help' for more information"


def _to_status_error(cli: Cli, err: Exception) -> StatusError:
    """docker's toStatusError: 127 for a missing executable, 126 for permission denied, else 125."""
    msg = str(err)
    if "executable file not found" in msg or "no such file or directory" in msg or \
            "system cannot find the file specified" in msg:
        return StatusError(127, _with_help(cli, msg, "run"))
    if "permission denied" in msg or "is a directory" in msg:
        return StatusError(126, _with_help(cli, msg, "run"))
    return StatusError(125, _with_help(cli, msg, "run"))


def _validate_pull(cli: Cli, o: Values, verb: str) -> None:
    if o.pull not in PULL_CHOICES:
        raise StatusError(125, _with_help(
            cli, f"invalid pull option: '{o.pull}': must be one of \"always\", \"missing\" or \"never\"", verb))


def _parse_body(cli: Cli, o: Values, args: list[str], verb: str, tty_size: tuple[int, int]) -> dict[str, object]:
    server_os = cli.client.server_os()
    try:
        body = build_create_body(o, args[0], args[1:], server_os, tty_size)
    except ValueError as e:
        raise StatusError(125, _with_help(cli, e, verb)) from None
    if o.platform:
        # ConsoleSize is ignored for linux platforms before API 1.42, as docker's client does
        from berth.client.api import version_lt

        if o.platform.split("/")[0] == "linux" and version_lt(cli.client.api_version(), "1.42"):
            body["HostConfig"]["ConsoleSize"] = [0, 0]  # type: ignore[index]
    return body


def _version_error(cli: Cli, feature: str, minimum: str) -> StatusError | None:
    from berth.client.api import version_lt

    current = cli.client.api_version()
    if version_lt(current, minimum):
        return StatusError(1, f'"{feature}" requires API version {minimum}, but the Docker daemon API version is '
                              f"{current}")
    return None


def _adjust_for_version(cli: Cli, body: dict[str, object], platform: str) -> None:
    """What docker's client does to the create request for older daemons (and its refusals)."""
    from berth.client.api import version_lt

    host: dict[str, object] = body["HostConfig"]  # type: ignore[assignment]
    endpoints: dict[str, dict[str, object]] = body["NetworkingConfig"]["EndpointsConfig"]  # type: ignore[index]
    checks = [("stop timeout", "1.25", "StopTimeout" in body), ("specify container image platform", "1.41",
                                                                 bool(platform)),
              ("specify health-check start interval", "1.44",
               bool((body.get("Healthcheck") or {}).get("StartInterval"))),  # type: ignore[attr-defined]
              ("specify mac-address per network", "1.44", any(e.get("MacAddress") for e in endpoints.values()))]
    for feature, minimum, used in checks:
        if used:
            err = _version_error(cli, feature, minimum)
            if err is not None:
                raise err
    v = cli.client.api_version()
    if version_lt(v, "1.25"):
        host["AutoRemove"] = False
    if not version_lt(v, "1.42") or version_lt(v, "1.40"):
        host.pop("KernelMemory", None)


def create_container(cli: Cli, o: Values, body: dict[str, object]) -> str:
    """POST /containers/create, pulling on 404 (`--pull missing`) or first (`--pull always`)."""
    _adjust_for_version(cli, body, o.platform)
    from berth.cli.pull import pull_image
    from berth.oci.reference import parse as parse_normalized

    cidfile = o.cidfile
    if cidfile:
        if os.path.exists(cidfile):
            raise StatusError(1, f"container ID file found, make sure the other container isn't running or "
                                 f"delete {cidfile}")
        try:
            open(cidfile, "w").close()
        except OSError as e:
            raise StatusError(1, f"failed to create the container ID file: {e}") from None
    image = str(body["Image"])
    named = None
    try:
        named = parse_normalized(image)
    except Exception:
        named = None
    params: dict[str, object] = {}
    if o.platform:
        params["platform"] = o.platform
    if o.name:
        params["name"] = o.name
    written = False
    try:
        if o.pull == "always":
            pull_image(cli, image, o.platform, o.quiet)
        try:
            resp = cli.client.post_json("/containers/create", params, json=body)
        except DaemonNotFound:
            if named is None or o.pull not in ("missing", ""):
                raise
            if not o.quiet:
                cli.err(f"Unable to find image '{named.with_default_tag().familiar()}' locally")
            pull_image(cli, image, o.platform, o.quiet)
            resp = cli.client.post_json("/containers/create", params, json=body)
        assert isinstance(resp, dict)
        for w in resp.get("Warnings") or []:
            cli.err(f"WARNING: {w}")
        for dns in body["HostConfig"].get("Dns") or []:  # type: ignore[attr-defined]
            if dns.startswith("127.") or dns == "::1":
                cli.err(f"WARNING: Localhost DNS ({dns}) may fail in containers.")
        cid = str(resp["Id"])
        if cidfile:
            with open(cidfile, "w") as f:
                f.write(cid)
            written = True
        return cid
    finally:
        if cidfile and not written:
            try:
                os.unlink(cidfile)
            except OSError:
                pass


def create(cli: Cli, path: str, argv: list[str]) -> int:
    cmd = Command(path, USE, container_flags(), interspersed=False, min_args=1, short="Create a new container",
                  bin_name=cli.bin_name)
    o, args = cmd.parse(argv)
    if o.help:
        cli.out(cmd.help_text(), end="")
        return 0
    cmd.check_args(args)
    check_supported(cli, cmd, o)
    _validate_pull(cli, o, "create")
    from berth.cli.terminal import size

    body = _parse_body(cli, o, args, "create", size(1))
    try:
        cid = create_container(cli, o, body)
    except Exception as e:
        from berth.cli.jsonmessage import JSONMessageError

        if isinstance(e, (DaemonError, JSONMessageError)):
            raise StatusError(1, str(e)) from None
        raise
    cli.out(cid)
    return 0


def run_flags() -> list[Flag]:
    return [
        Flag("detach", "d", BOOL, help="Run container in background and print container ID"),
        Flag("sig-proxy", "", BOOL, default=True, help="Proxy received signals to the process"),
        Flag("detach-keys", "", STRING, help="Override the key sequence for detaching a container"),
        *container_flags(),
    ]


def run(cli: Cli, path: str, argv: list[str]) -> int:
    cmd = Command(path, USE, run_flags(), interspersed=False, min_args=1,
                  short="Create and run a new container from an image", bin_name=cli.bin_name)
    o, args = cmd.parse(argv)
    if o.help:
        cli.out(cmd.help_text(), end="")
        return 0
    cmd.check_args(args)
    check_supported(cli, cmd, o)
    _validate_pull(cli, o, "run")
    from berth.cli.terminal import is_tty, size

    try:
        body = _parse_body(cli, o, args, "run", size(1))
    except Exception as e:
        from berth.errors import BerthError

        if isinstance(e, BerthError):
            raise _to_status_error(cli, e) from None
        raise
    config = body
    if not o.detach:
        if config["Tty"] and config["AttachStdin"] and not is_tty(0):
            raise StatusError(1, "the input device is not a TTY")
    else:
        if o.attach:
            raise StatusError(1, "conflicting options: cannot specify both --attach and --detach")
        for k in ("AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"):
            config[k] = False
    try:
        cid = create_container(cli, o, body)
    except StatusError as e:
        raise _to_status_error(cli, Exception(e.message)) from None
    except Exception as e:
        from berth.cli.jsonmessage import JSONMessageError
        from berth.errors import BerthError

        if isinstance(e, (BerthError, JSONMessageError)):
            raise _to_status_error(cli, e) from None
        raise
    return run_container(cli, o, cid, config)


def run_container(cli: Cli, o: Values, cid: str, config: dict[str, object]) -> int:
    from berth.cli.pump import PROXY_SIGNALS, SignalQueue, pump, signal_name
    from berth.cli.terminal import DEFAULT_DETACH_KEYS, is_tty, parse_detach_keys

    client = cli.client
    tty = bool(config["Tty"])
    stdin, stdout, stderr = bool(config["AttachStdin"]), bool(config["AttachStdout"]), bool(config["AttachStderr"])
    attach = stdin or stdout or stderr
    auto_remove = bool(config["HostConfig"]["AutoRemove"])  # type: ignore[index]
    signals = SignalQueue(PROXY_SIGNALS) if o.sig_proxy else None
    try:
        conn = None
        if attach:
            keys = o.detach_keys or cli.config.detach_keys
            params: dict[str, object] = {"stream": True, "stdin": stdin, "stdout": stdout, "stderr": stderr}
            if keys:
                params["detachKeys"] = keys
            params = {k: v for k, v in params.items() if v}
            conn, _ = client.hijack(f"/containers/{cid}/attach", params)
        waiter = client.request("POST", f"/containers/{cid}/wait",
                                {"condition": "removed" if auto_remove else "next-exit"})
        try:
            client.post(f"/containers/{cid}/start")
        except DaemonError as e:
            if conn is not None:
                conn.close()
            if auto_remove:
                try:
                    waiter.read()
                except OSError:
                    pass
            raise _to_status_error(cli, e) from None
        if not attach:
            cli.out(cid)
            waiter.close()
            return 0
        assert conn is not None
        out_tty = is_tty(1)
        if tty and out_tty:
            _init_tty_size(cli, f"/containers/{cid}/resize")

        def on_signal(num: int) -> None:
            import signal as _signal

            if tty and num == _signal.SIGWINCH and out_tty:
                _resize(cli, f"/containers/{cid}/resize")
            if num in (_signal.SIGCHLD, _signal.SIGPIPE, _signal.SIGURG):
                return
            try:
                client.post(f"/containers/{cid}/kill", {"signal": signal_name(num)})
            except Exception:
                pass

        detach_keys = DEFAULT_DETACH_KEYS
        keys = o.detach_keys or cli.config.detach_keys
        if keys:
            try:
                detach_keys = parse_detach_keys(keys)
            except ValueError as e:
                cli.err(f"invalid detach escape keys, using default: {e}")
        cli.stdout.flush()
        res = pump(conn, tty=tty, stdin_fd=0 if stdin else None, stdout_fd=1 if stdout else None,
                   stderr_fd=(1 if tty else 2) if stderr else None, detach_keys=detach_keys, waiter=waiter,
                   signals=signals, on_signal=on_signal, raw_terminal=tty and stdin and is_tty(0),
                   log=lambda m: cli.err(m))
        conn.close()
        if res.detached:
            waiter.close()
            return 0
        if res.error:
            raise StatusError(1, res.error)
        return res.status or 0
    finally:
        if signals is not None:
            signals.close()


def _resize(cli: Cli, path: str) -> bool:
    from berth.cli.terminal import size

    h, w = size(1)
    if h == 0 and w == 0:
        return True
    try:
        cli.client.post(path, {"h": h, "w": w})
        return True
    except Exception:
        return False


def _init_tty_size(cli: Cli, path: str) -> None:
    """Resize once; on failure retry up to 10 times with a growing pause (docker's initTtySize)."""
    if _resize(cli, path):
        return
    import time

    for retry in range(10):
        time.sleep((retry + 1) * 0.01)
        if _resize(cli, path):
            return
    cli.err("failed to resize tty, using default size")
