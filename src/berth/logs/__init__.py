"""Container logs in Docker's json-file format.

- `JSONFileWriter` (writer.py): what a container's monitor writes its output with. Importing this
  package loads only the writer: the monitor must stay small and never import asyncio.
- `read_logs` (stream.py): berthd's async reader (tail, since, until, follow across rotations).
- `read_all` (reader.py): the same, synchronous and without follow, for tests and tools.
- `parse_log_opts` (options.py): Docker's `--log-opt` map for json-file, checked, as writer arguments."""

from __future__ import annotations

from berth.logs.writer import JSONFileWriter

TYPE_CHECKING = False  # not typing's: importing typing costs the monitor ~9 ms; mypy reads this the same
if TYPE_CHECKING:
    from berth.logs.options import parse_log_opts
    from berth.logs.reader import read_all
    from berth.logs.stream import read_logs

__all__ = ["JSONFileWriter", "parse_log_opts", "read_all", "read_logs"]

_LAZY = {"read_logs": "berth.logs.stream", "read_all": "berth.logs.reader", "parse_log_opts": "berth.logs.options"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'berth.logs' has no attribute {name!r}")
