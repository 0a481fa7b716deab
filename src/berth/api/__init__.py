"""berth.api: Docker's Engine API over berth.httpd, calling the daemon's services through the
backend Protocols in `berth.api.backends`. No business logic lives here: parsing, version rules,
error mapping and the wire formats (JSON streams, stdcopy frames, hijacked attach/exec, wait)."""

from berth.api.app import Backends, EngineAPI
from berth.api.backends import (
    AttachOptions,
    BuildBackend,
    ContainersBackend,
    ExecBackend,
    ImagesBackend,
    LogRecord,
    LogsOptions,
    LogStream,
    NetworksBackend,
    StreamSession,
    SystemBackend,
    VolumesBackend,
    WaitResult,
)
from berth.api.version import API_VERSION, MIN_API_VERSION

__all__ = [
    "API_VERSION",
    "MIN_API_VERSION",
    "AttachOptions",
    "Backends",
    "BuildBackend",
    "ContainersBackend",
    "EngineAPI",
    "ExecBackend",
    "ImagesBackend",
    "LogRecord",
    "LogStream",
    "LogsOptions",
    "NetworksBackend",
    "StreamSession",
    "SystemBackend",
    "VolumesBackend",
    "WaitResult",
]
