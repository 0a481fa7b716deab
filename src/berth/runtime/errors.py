"""Runtime errors, with runc's wording (the docker CLI maps some of it to exit codes 126/127)."""

from __future__ import annotations

from berth.errors import Conflict, InvalidArgument, NotFound


class RuntimeErrorBase(Exception):
    """Base for runtime failures; `str(e)` is what runc would print after `msg=`."""


class ContainerNotFound(NotFound):
    def __init__(self, msg: str = "container does not exist") -> None:
        super().__init__(msg)


class ContainerExists(Conflict):
    def __init__(self) -> None:
        super().__init__("container with given ID already exists")


class ConfigError(InvalidArgument):
    pass


class StartError(RuntimeErrorBase):
    """The container process could not be started ("unable to start container process: …")."""


class StateError(Conflict):
    pass
