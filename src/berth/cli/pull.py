"""`POST /images/create` with docker's auth header and progress display (pull, and run's pull-on-404)."""

from __future__ import annotations

import os
from collections.abc import Callable

from berth.cli.app import Cli
from berth.cli.config import INDEX_SERVER, encode_auth
from berth.cli.jsonmessage import display_stream
from berth.oci.reference import DEFAULT_DOMAIN, Reference
from berth.oci.reference import parse as parse_normalized


def registry_auth(cli: Cli, ref: Reference) -> str:
    """The X-Registry-Auth header for `ref`'s registry, from the config file's `auths`."""
    return encode_auth(cli.config.get_auth(INDEX_SERVER if ref.domain == DEFAULT_DOMAIN else ref.domain))


def stream_writer(cli: Cli, to_stderr: bool) -> tuple[Callable[[str], None], bool, int]:
    """(write function, is a terminal, width) for progress output on stdout or stderr."""
    stream = cli.stderr if to_stderr else cli.stdout
    fd = 2 if to_stderr else 1
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        pass
    tty = False
    width = 200
    try:
        tty = os.isatty(fd)
        if tty:
            width = os.get_terminal_size(fd).columns
    except OSError:
        pass

    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write, tty, width


def pull_image(cli: Cli, image: str, platform: str = "", quiet: bool = False, to_stderr: bool = True) -> None:
    """Pull `image` (normalized, default tag added) and render the progress. Raises on failure."""
    ref = parse_normalized(image).with_default_tag()
    params: dict[str, object] = {"fromImage": ref.name, "tag": ref.digest or ref.tag}
    if platform:
        params["platform"] = platform
    stream = cli.client.stream_json("POST", "/images/create", params,
                                    headers={"X-Registry-Auth": registry_auth(cli, ref)})
    if quiet:
        for jm in stream:
            if isinstance(jm, dict) and jm.get("errorDetail"):
                from berth.cli.jsonmessage import JSONMessageError

                err = jm["errorDetail"]
                raise JSONMessageError(str(err.get("message", "")) if isinstance(err, dict) else str(err))
        return
    write, tty, width = stream_writer(cli, to_stderr)
    display_stream(stream, write, tty, width)
