"""What every command gets: the daemon client (made on first use), output streams, the config file."""

from __future__ import annotations

import os
import sys

from berth.client.api import APIClient
from berth.client.hosts import TLSConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from berth.cli.config import ConfigFile


class StatusError(Exception):
    """End the command with exit status `code`, printing `message` (if any) to stderr, as docker's
    cli.StatusError does."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Cli:
    """Per-invocation state shared by the commands."""

    def __init__(self, host: str | None = None, tls: TLSConfig | None = None, config_dir: str | None = None,
                 debug: bool = False, bin_name: str = "berth") -> None:
        self.host = host
        self.tls = tls
        self.debug = debug
        self.bin_name = bin_name
        self.config_dir = config_dir or os.environ.get("BERTH_CONFIG") or os.environ.get("DOCKER_CONFIG") or \
            os.path.join(os.path.expanduser("~"), ".docker")
        self._client: APIClient | None = None
        self._config: ConfigFile | None = None
        self.stdin = sys.stdin
        self.stdout = sys.stdout
        self.stderr = sys.stderr

    @property
    def client(self) -> APIClient:
        if self._client is None:
            self._client = APIClient(self.host, self.tls)
        return self._client

    @property
    def config(self) -> ConfigFile:
        if self._config is None:
            from berth.cli.config import ConfigFile

            self._config = ConfigFile.load(self.config_dir)
        return self._config

    # -- output helpers --------------------------------------------------------------------------

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout.write(text + end)

    def err(self, text: str = "", end: str = "\n") -> None:
        self.stdout.flush()
        self.stderr.write(text + end)
        self.stderr.flush()

    def out_bytes(self, data: bytes) -> None:
        self.stdout.flush()
        self.stdout.buffer.write(data)
        self.stdout.buffer.flush()

    def is_tty_out(self) -> bool:
        try:
            return os.isatty(self.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            return False

    def is_tty_in(self) -> bool:
        try:
            return os.isatty(self.stdin.fileno())
        except (OSError, ValueError, AttributeError):
            return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
