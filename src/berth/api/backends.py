"""The narrow interfaces the Engine API layer calls: the daemon's services implement them.

The API layer parses requests, calls one backend method and shapes the response; backends never
see HTTP. Conventions every backend follows:

- Objects are referred to as the user typed them (`ref`): full ID, unique ID prefix or name
  (a container name with or without its leading "/"; an image by name[:tag], name@digest,
  sha256:<id> or short ID). Resolving refs is the backend's job.
- Failures are `berth.errors` exceptions with moby's messages, e.g.
  `NotFound("No such container: x")`, `NotFound("No such image: busybox:latest")` (docker-py
  only raises ImageNotFound if the message contains "no such image"), `Conflict(...)`,
  `NotModified()` for start-when-running / stop-when-stopped. The API maps them to statuses.
- JSON objects (dicts) are Docker's wire shapes (PascalCase keys), passed through as they are:
  the spec's definitions (ContainerConfig, HostConfig, ContainerInspectResponse, ...) are the
  contract. Unknown request fields must be ignored, not rejected.
- Filters arrive as {name: [values]} whichever shape the client sent.
- Streams are async iterators; the API closes them (`aclose`) when the client goes away, so a
  generator's `finally` is the place to release what it holds. Methods declared `def ... ->
  AsyncIterator` are meant as async generators; unless said otherwise the API awaits their first
  item before answering 200, so an error raised before the first item becomes a real HTTP error.
  Methods declared `async def` resolve and validate first, then return what streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

JSON = dict[str, Any]
Filters = dict[str, list[str]]
# Aliases, because classes below have a method called `list` that shadows the builtin there.
JSONList = list[JSON]
StrList = list[str]


# -- shared data types ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitResult:
    """What `POST /containers/{id}/wait` answers: the exit code and, if waiting failed, why."""

    status_code: int
    error: str | None = None


class LogRecord(NamedTuple):
    """One chunk of container output as stored (the API adds framing and timestamps)."""

    stream: int  # 1 stdout, 2 stderr (berth.api.stdcopy constants)
    data: bytes
    time_ns: int  # wall-clock time it was produced, nanoseconds since the epoch


@dataclass(frozen=True, slots=True)
class LogsOptions:
    stdout: bool
    stderr: bool
    follow: bool = False
    since: float | None = None  # unix time; only records at or after it
    until: float | None = None  # unix time; only records before it (and follow ends there)
    tail: int | None = None  # last N records; None = all
    timestamps: bool = False  # informative: the API prefixes timestamps itself
    details: bool = False


@dataclass(frozen=True, slots=True)
class AttachOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    logs: bool  # replay the log first
    stream: bool  # then follow live output
    detach_keys: str | None = None  # e.g. "ctrl-p,ctrl-q"; None = the default


class LogStream(NamedTuple):
    tty: bool  # the container's Config.Tty: raw output if true, multiplexed frames if false
    records: AsyncIterator[LogRecord]


class StreamSession(Protocol):
    """A live attach or exec I/O session, handed to the API before the connection is hijacked.

    The API relays the client's input to `write_stdin` (only if `stdin`), and the session's
    `output()` to the client until it ends; then it closes the connection. So the output must
    end only once the process has exited and everything is flushed (for exec, after its ExitCode
    is recorded: the CLI reads it right after the stream closes), or when the session detaches
    (detach keys, seen by `write_stdin`, are the backend's business).

    On the client's half-close (stdin EOF) the API applies moby's rule: if `stdin_once` and not
    `tty`, `close_stdin()` and keep relaying output; otherwise this session ends (`detach()`).
    When the client goes away entirely, `detach()` is called and the output closed.
    """

    tty: bool  # Config.Tty (attach) or the exec's Tty: raw output if true, else multiplexed frames
    stdin: bool  # the client's stdin is wired to the process (asked for, and Config.OpenStdin)
    stdin_once: bool  # close the process's stdin when the client's ends (Config.StdinOnce; exec: True)

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, data) pairs: 1 stdout, 2 stderr, 3 systemerr (an error the CLI reports)."""
        ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def detach(self) -> None: ...


# -- containers ----------------------------------------------------------------------------------


class ContainersBackend(Protocol):
    async def create(self, config: JSON, *, name: str | None, platform: str | None,
                     default_ro_non_recursive: bool = False) -> JSON:
        """`config` is the whole create body (Config fields + HostConfig + NetworkingConfig).
        `default_ro_non_recursive`: read-only binds keep submounts writable (API < 1.44).
        Returns {"Id": ..., "Warnings": [...]}. NotFound("No such image: x:tag") makes the CLI
        pull and retry; Conflict for a name in use."""
        ...

    async def inspect(self, ref: str, *, size: bool) -> JSON: ...

    async def list(self, *, all: bool, limit: int | None, size: bool, filters: Filters) -> JSONList: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, *, timeout: int | None, signal: int | None) -> None: ...

    async def restart(self, ref: str, *, timeout: int | None, signal: int | None) -> None: ...

    async def kill(self, ref: str, *, signal: int) -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    async def wait(self, ref: str, *, condition: str) -> Awaitable[WaitResult]:
        """Resolve the container and arm the waiter, then return the awaitable of its result.

        `condition` is "not-running" (resolves at once if not running), "next-exit" or
        "removed" (after AutoRemove or `rm` deleted it). The waiter must be armed when this
        returns: the API sends the 200 headers only then, and the client starts the container
        as soon as it sees them, so a quick exit must not be missed."""
        ...

    async def remove(self, ref: str, *, force: bool, volumes: bool, link: bool) -> None: ...

    async def rename(self, ref: str, *, name: str) -> None: ...

    async def update(self, ref: str, *, config: JSON) -> JSON:
        """Returns {"Warnings": [...]}."""
        ...

    async def top(self, ref: str, *, ps_args: str | None) -> JSON:
        """Returns {"Titles": [...], "Processes": [[...], ...]}."""
        ...

    async def logs(self, ref: str, options: LogsOptions) -> LogStream: ...

    async def attach(self, ref: str, options: AttachOptions) -> StreamSession:
        """Validate and set up the session; raise (NotFound, Conflict) before anything is
        hijacked so the client gets a normal JSON error."""
        ...

    async def resize(self, ref: str, *, height: int, width: int) -> None: ...

    def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[JSON]:
        """Stats frames; with stream=False exactly one (with precpu_stats filled unless one_shot).
        The first frame is awaited before the 200 is sent, so NotFound raised first is a 404."""
        ...

    async def changes(self, ref: str) -> JSONList: ...

    def export(self, ref: str) -> AsyncIterator[bytes]:
        """A tar of the container's filesystem (first chunk awaited before the 200)."""
        ...

    async def archive_stat(self, ref: str, *, path: str) -> JSON:
        """{"name","size","mode","mtime","linkTarget"}; mode in Go os.FileMode bits."""
        ...

    async def archive_get(self, ref: str, *, path: str) -> tuple[JSON, AsyncIterator[bytes]]:
        """The stat of `path` and a tar stream of it."""
        ...

    async def archive_put(
        self, ref: str, *, path: str, data: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> None: ...

    async def prune(self, *, filters: Filters) -> JSON:
        """{"ContainersDeleted": [...], "SpaceReclaimed": n}."""
        ...

    async def commit(
        self, ref: str, *, repo: str | None, tag: str | None, author: str | None, comment: str | None,
        changes: StrList, pause: bool, config: JSON | None,
    ) -> JSON:
        """{"Id": "sha256:..."}."""
        ...


# -- exec ----------------------------------------------------------------------------------------


class ExecBackend(Protocol):
    async def create(self, container_ref: str, *, config: JSON) -> str:
        """The exec's ID. Conflict("container <id> is not running") or "... is paused, ..."."""
        ...

    async def start(
        self, exec_id: str, *, detach: bool, tty: bool, console_size: tuple[int, int] | None
    ) -> StreamSession | None:
        """Start the exec. NotFound("No such exec instance: <id>") or Conflict are raised before
        any hijack; a process that then fails to start reports its error inside the session's
        output (moby writes it on stdout) and records its exit code. None when detached."""
        ...

    async def resize(self, exec_id: str, *, height: int, width: int) -> None: ...

    async def inspect(self, exec_id: str) -> JSON: ...


# -- images and builds ---------------------------------------------------------------------------


class ImagesBackend(Protocol):
    async def list(self, *, all: bool, filters: Filters, digests: bool, shared_size: bool) -> JSONList: ...

    async def inspect(self, ref: str) -> JSON: ...

    async def history(self, ref: str) -> JSONList: ...

    async def remove(self, ref: str, *, force: bool, noprune: bool) -> JSONList:
        """[{"Untagged": "..."}, {"Deleted": "sha256:..."}]."""
        ...

    async def tag(self, ref: str, *, repo: str, tag: str | None) -> None: ...

    def pull(
        self, *, image: str, tag: str | None, platform: str | None, auth: JSON | None
    ) -> AsyncIterator[JSON]:
        """Progress messages (berth.api.jsonstream helpers). Raise before the first message for
        errors that deserve a status (404 "pull access denied for x, ...")."""
        ...

    def import_image(
        self, *, source: str, data: AsyncIterator[bytes] | None, repo: str | None, tag: str | None,
        message: str | None, changes: StrList, platform: str | None,
    ) -> AsyncIterator[JSON]:
        """`docker import`: source is "-" (the request body is the tarball) or a URL."""
        ...

    def push(self, ref: str, *, tag: str | None, auth: JSON | None) -> AsyncIterator[JSON]:
        """Messages ending with {"aux": {"Tag", "Digest", "Size"}}."""
        ...

    def save(self, refs: StrList) -> AsyncIterator[bytes]:
        """A `docker save` tarball. Raise NotFound before the first chunk."""
        ...

    def load(self, data: AsyncIterator[bytes], *, quiet: bool) -> AsyncIterator[JSON]:
        """{"stream": "Loaded image: repo:tag\\n"}; errors are always reported in the stream."""
        ...

    async def prune(self, *, filters: Filters) -> JSON:
        """{"ImagesDeleted": [...], "SpaceReclaimed": n}."""
        ...

    async def search(self, term: str, *, limit: int | None, filters: Filters) -> JSONList: ...

    async def distribution(self, ref: str, *, auth: JSON | None) -> JSON: ...


class BuildBackend(Protocol):
    def build(self, context: AsyncIterator[bytes], *, options: JSON, auth_configs: JSON) -> AsyncIterator[JSON]:
        """Legacy builder messages ({"stream": "Step 1/2 : ..."}, {"aux": {"ID": ...}},
        "Successfully built <id>"). `options` holds the parsed query: dockerfile, t (list),
        buildargs, labels, q, nocache, pull, rm, forcerm, target, platform, networkmode,
        extrahosts, shmsize, ulimits, cachefrom, memory, memswap, cpushares, ... and version."""
        ...

    async def prune(self, *, filters: Filters, all: bool, keep_storage: int | None) -> JSON:
        """{"CachesDeleted": [...], "SpaceReclaimed": n}."""
        ...


# -- networks and volumes ------------------------------------------------------------------------


class NetworksBackend(Protocol):
    async def list(self, *, filters: Filters) -> JSONList: ...

    async def inspect(self, ref: str, *, verbose: bool, scope: str | None) -> JSON:
        """NotFound("network x not found")."""
        ...

    async def create(self, config: JSON) -> JSON:
        """{"Id": ..., "Warning": ""}."""
        ...

    async def remove(self, ref: str) -> None: ...

    async def connect(self, ref: str, *, container: str, endpoint_config: JSON | None) -> None: ...

    async def disconnect(self, ref: str, *, container: str, force: bool) -> None: ...

    async def prune(self, *, filters: Filters) -> JSON:
        """{"NetworksDeleted": [...]}."""
        ...


class VolumesBackend(Protocol):
    async def list(self, *, filters: Filters) -> JSON:
        """{"Volumes": [...], "Warnings": []}."""
        ...

    async def create(self, config: JSON) -> JSON: ...

    async def inspect(self, name: str) -> JSON:
        """NotFound("get x: no such volume")."""
        ...

    async def remove(self, name: str, *, force: bool) -> None: ...

    async def prune(self, *, filters: Filters, all: bool) -> JSON:
        """{"VolumesDeleted": [...], "SpaceReclaimed": n}."""
        ...


# -- the daemon itself ---------------------------------------------------------------------------


class SystemBackend(Protocol):
    async def info(self) -> JSON:
        """The daemon's part of `GET /info` (Containers, ContainersRunning, Images, Driver,
        DockerRootDir, Name, ID, ...). The API fills host facts and fixed fields around it;
        what the backend returns wins."""
        ...

    async def df(self, *, types: StrList | None) -> JSON:
        """{"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}; `types` limits which
        (API >= 1.42 `type` query), None for all."""
        ...

    def events(self, *, since: float | None, until: float | None, filters: Filters) -> AsyncIterator[JSON]:
        """Past events from `since`, then live ones until `until` (forever if None). Each is the
        full message: {"Type", "Action", "Actor": {"ID", "Attributes"}, "scope", "time",
        "timeNano"} plus the deprecated "status", "id", "from" for containers."""
        ...

    async def auth(self, config: JSON) -> JSON:
        """{"Status": "Login Succeeded", "IdentityToken": ""}; Unauthorized otherwise."""
        ...

    async def version_components(self) -> JSONList:
        """Extra `/version` Components beyond the Engine (runtime, init), e.g.
        {"Name": "berth-runtime", "Version": "0.1.0", "Details": {"GitCommit": ""}}."""
        ...
