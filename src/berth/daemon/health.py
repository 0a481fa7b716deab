"""Docker's health checks, as moby's daemon/health.go runs them, one asyncio task per container.

Config.Healthcheck (durations in nanoseconds, 0 meaning the default):
  Test         ["CMD", arg...] exec'd as is; ["CMD-SHELL", "cmd"] run by Config.Shell or /bin/sh -c;
               ["NONE"] or [] for no check
  Interval     between the end of a probe and the start of the next, and before the first (30s)
  Timeout      a probe running longer fails with exit code -1 (30s)
  Retries      consecutive failures that make the container unhealthy (3)
  StartPeriod  failures starting within this time of the container's start don't count (0)
  StartInterval the interval while in the start period and still "starting" (5s)
State.Health is {"Status": "starting"|"healthy"|"unhealthy", "FailingStreak": n, "Log": [the last 5
{"Start", "End", "ExitCode", "Output"}]}: one success makes it healthy (streak 0); a failure adds to
the streak (unless still starting within the start period) and at Retries makes it unhealthy. Output
is stdout and stderr together, cut at 4096 bytes with "..." appended. Stopping the monitor (the
container stopped or paused) leaves the status "unhealthy", as moby does "for compatibility".
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from berth.errors import InvalidArgument

log = logging.getLogger("berth.daemon.health")

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
MAX_LOG_ENTRIES = 5
MINIMUM_DURATION_NS = 1_000_000  # 1ms, moby's containertypes.MinimumDuration

ProbeRunner = Callable[[list[str], float], Awaitable[tuple[int, "bytes | str"]]]


class ProbeTimeout(Exception):
    """Raised by a probe runner that killed its probe at `timeout`, carrying what it printed so far
    (moby puts it in the log: "Health check exceeded timeout (30s): <output>")."""

    def __init__(self, output: bytes | str = b"") -> None:
        super().__init__("health check probe timed out")
        self.output = output


def probe_command(healthcheck: dict[str, Any] | None, shell: list[str] | None = None) -> list[str] | None:
    """The command a probe runs, or None when there is no check (no Test, "NONE", an unknown kind).
    A CMD with nothing after it is a command of [], which fails at every probe, as in moby."""
    test = (healthcheck or {}).get("Test") or []
    if not test:
        return None
    kind, args = test[0], list(test[1:])
    if kind == "CMD":
        return args
    if kind == "CMD-SHELL":
        return [*(shell or ["/bin/sh", "-c"]), *args] if args else []
    if kind != "NONE":
        log.warning("Unknown healthcheck type '%s' (expected 'CMD')", kind)
    return None


def validate(healthcheck: dict[str, Any] | None) -> None:
    """moby's create-time checks (daemon/container.go validateHealthCheck), InvalidArgument if bad."""
    hc = healthcheck or {}

    def at_least_minimum(key: str) -> None:
        v = int(hc.get(key) or 0)
        if v != 0 and v < MINIMUM_DURATION_NS:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than {go_duration(MINIMUM_DURATION_NS)}")

    at_least_minimum("Interval")
    at_least_minimum("Timeout")
    if int(hc.get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    at_least_minimum("StartPeriod")
    at_least_minimum("StartInterval")


def status_text(health: dict[str, Any] | None) -> str:
    """What `docker ps` shows in parentheses after "Up 5 seconds": "health: starting", "healthy",
    "unhealthy" ("" without a health check)."""
    if not health:
        return ""
    status = health.get("Status") or UNHEALTHY
    return "health: starting" if status == STARTING else status


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "30s", "1m0s", "1.5s", "500ms", "1µs"."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000_000_000:
        for unit, prec in (("ns", 0), ("µs", 3), ("ms", 6)):
            if u < 10 ** (prec + 3):
                return sign + _frac(u, prec) + unit
    out = _frac(u, 9) + "s"
    minutes = u // 1_000_000_000 // 60
    if minutes:
        out = f"{minutes % 60}m" + out
        if minutes // 60:
            out = f"{minutes // 60}h" + out
    return sign + out


def _frac(v: int, prec: int) -> str:
    """v / 10**prec with the fraction's trailing zeros (and a bare dot) dropped; seconds mod 60."""
    whole, frac = divmod(v, 10**prec)
    if prec == 9:
        whole %= 60
    digits = f"{frac:0{prec}d}".rstrip("0") if prec else ""
    return f"{whole}.{digits}" if digits else f"{whole}"


def _rfc3339nano(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def _go_invalid_bytes(err: UnicodeError) -> tuple[str, int]:
    # Go's JSON encoder turns each invalid byte into U+FFFD; Python's "replace" merges some runs
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("berth-go-replace", _go_invalid_bytes)


def probe_output(raw: bytes | str) -> str:
    """The output as moby keeps it: at most 4096 bytes, then "..." if anything was cut."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    cut = len(data) > MAX_OUTPUT
    text = data[:MAX_OUTPUT].decode("utf-8", "berth-go-replace")
    return text + "..." if cut else text


def _seconds(ns: Any, default: float) -> float:
    v = int(ns or 0)
    return v / 1e9 if v > 0 else default


class HealthMonitor:
    """Runs a container's health check while it runs and keeps `state` (its State.Health dict).

    `run_probe(cmd, timeout)` is the daemon's exec into the container: it returns (exit code,
    output). When the timeout passes the monitor cancels it: the runner must then kill the probe; it
    may raise `ProbeTimeout(output_so_far)` itself instead. Any other exception is a failed probe
    with exit code -1 and the error as output (as a failing exec start is in moby).
    `on_change(status)` is called (and awaited if it returns an awaitable) when a probe changes the
    status: the daemon emits "health_status: <status>" and saves the container."""

    def __init__(self, healthcheck: dict[str, Any], *, run_probe: ProbeRunner,
                 on_change: Callable[[str], Any] | None = None, state: dict[str, Any] | None = None,
                 shell: list[str] | None = None, container_id: str = "") -> None:
        hc = healthcheck or {}
        self.command = probe_command(hc, shell)
        self.interval = _seconds(hc.get("Interval"), DEFAULT_INTERVAL)
        self.timeout = _seconds(hc.get("Timeout"), DEFAULT_TIMEOUT)
        self.start_period = _seconds(hc.get("StartPeriod"), DEFAULT_START_PERIOD)
        self.start_interval = _seconds(hc.get("StartInterval"), DEFAULT_START_INTERVAL)
        retries = int(hc.get("Retries") or 0)
        self.retries = retries if retries > 0 else DEFAULT_RETRIES
        self.container_id = container_id
        self._run_probe = run_probe
        self._on_change = on_change
        self.state: dict[str, Any] = state if state is not None else {}
        self.state.setdefault("Status", STARTING)
        self.state.setdefault("FailingStreak", 0)
        self.state.setdefault("Log", None)  # moby: null until the first probe
        self.started_at = time.time()
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()  # stopped, possibly still killing their probe

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, started_at: float | None = None, *, reset: bool = True) -> None:
        """Begin probing (on the running event loop). `started_at` is State.StartedAt as unix time
        (default: now), the origin of the start period. `reset` (a start or restart) puts the status
        back to "starting" with no failures, keeping the log; unpause passes reset=False, so the
        status stays what the pause left until the next probe. A no-op when already running or when
        the check is NONE."""
        if self.command is None or self.running:
            return
        if started_at is not None:
            self.started_at = started_at
        if reset:
            self.state["Status"] = STARTING
            self.state["FailingStreak"] = 0
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="health")

    def stop(self) -> None:
        """Stop probing (the container stopped or paused): an in-flight probe is cancelled, and the
        status becomes "unhealthy", without an event, as moby's CloseMonitorChannel does."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        self.state["Status"] = UNHEALTHY

    async def aclose(self) -> None:
        """`stop`, then wait until every probe is gone (moby waits so dying probes don't pile up)."""
        self.stop()
        for task in list(self._stopping):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the loop --------------------------------------------------------------------------------
    def _next_interval(self) -> float:
        if time.time() - self.started_at >= self.start_period:
            return self.interval
        return self.start_interval if self.state.get("Status") == STARTING else self.interval

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._next_interval())
            start = time.time_ns()
            code, output = await self._run()
            entry = {"Start": _rfc3339nano(start), "End": _rfc3339nano(time.time_ns()), "ExitCode": code,
                     "Output": output}
            await self._record(entry, start)

    async def _run(self) -> tuple[int, str]:
        if not self.command:
            return -1, f"healthcheck for container {self.container_id} has no command"
        timeout_text = go_duration(round(self.timeout * 1e9))
        try:
            async with asyncio.timeout(self.timeout):
                code, raw = await self._run_probe(list(self.command), self.timeout)
        except ProbeTimeout as e:
            out = probe_output(e.output)
            return -1, f"Health check exceeded timeout ({timeout_text})" + (f": {out}" if out else "")
        except TimeoutError:
            return -1, f"Health check exceeded timeout ({timeout_text})"
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("Health check for container %s error: %s", self.container_id, e)
            return -1, str(e)
        return int(code), probe_output(raw)

    async def _record(self, result: dict[str, Any], start_ns: int) -> None:
        """moby's handleProbeResult."""
        h = self.state
        old = h.get("Status") or UNHEALTHY
        h["Log"] = [*(h.get("Log") or []), result][-MAX_LOG_ENTRIES:]
        if result["ExitCode"] == 0:
            h["FailingStreak"] = 0
            h["Status"] = HEALTHY
        else:
            counts = not (old == STARTING and start_ns / 1e9 - self.started_at < self.start_period)
            if counts:
                h["FailingStreak"] = int(h.get("FailingStreak") or 0) + 1
                if h["FailingStreak"] >= self.retries:
                    h["Status"] = UNHEALTHY
        if h["Status"] != old and self._on_change is not None:
            try:
                ret = self._on_change(h["Status"])
                if inspect.isawaitable(ret):
                    await ret
            except Exception:  # the daemon's trouble must not end the checks
                log.exception("health status callback for container %s", self.container_id)
