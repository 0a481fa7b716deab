"""berth's OCI distribution registry server (`berth registry serve`)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point for `berth registry ...`; imports the server only when run."""
    from berth.registry.server.main import main as _main

    return _main(argv)
