"""Writing a downloaded body (export, save, cp) to stdout or, atomically, to a file."""

from __future__ import annotations

import os
from collections.abc import Iterable

from berth.cli.app import Cli, StatusError


def copy_to_output(cli: Cli, pieces: Iterable[bytes], path: str, err_prefix: str) -> None:
    """`-o path` is written to a temporary file in the same directory and renamed at the end (docker's
    atomicwriter, mode 0600); without `-o` the bytes go to stdout."""
    if not path:
        from berth.cli.pump import write_all

        cli.stdout.flush()
        for piece in pieces:
            if not write_all(1, piece):
                return
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StatusError(1, f"{err_prefix}: invalid output path: directory {directory!r} does not exist")
    tmp = os.path.join(directory, f".tmp-{os.path.basename(path)}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            for piece in pieces:
                f.write(piece)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
