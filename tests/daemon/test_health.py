"""Health checks as moby runs them: a scripted probe with tiny intervals for the state machine, and
real processes (an exec-like runner over asyncio subprocesses) for outputs, exit codes and timeouts."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from berth.daemon import health
from berth.daemon.health import HealthMonitor, ProbeTimeout
from berth.errors import InvalidArgument

MS = 1_000_000  # Config.Healthcheck durations are nanoseconds
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


class Script:
    """A probe runner answering from a list of (exit code, output) or exceptions, recording calls."""

    def __init__(self, *answers: Any, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], float, float]] = []  # (cmd, timeout, monotonic time)
        self.delay = delay
        self.cancelled = 0

    async def __call__(self, cmd: list[str], timeout: float) -> tuple[int, bytes | str]:
        self.calls.append((cmd, timeout, time.monotonic()))
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if callable(a):
                return await a()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(a, BaseException):
            raise a
        return a


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def hc(test: list[str] | None = None, **kw: int) -> dict[str, Any]:
    return {"Test": test or ["CMD", "check"], "Interval": kw.pop("interval", 20 * MS), **kw}


# -- configuration --------------------------------------------------------------------------------


def test_probe_commands() -> None:
    assert health.probe_command({"Test": ["CMD", "curl", "-f", "x"]}) == ["curl", "-f", "x"]
    assert health.probe_command({"Test": ["CMD-SHELL", "curl -f x || exit 1"]}) == ["/bin/sh", "-c",
                                                                                   "curl -f x || exit 1"]
    assert health.probe_command({"Test": ["CMD-SHELL", "x"]}, ["pwsh", "-c"]) == ["pwsh", "-c", "x"]
    assert health.probe_command({"Test": ["CMD"]}) == []  # fails at every probe, as in moby
    nones: list[dict[str, Any] | None] = [{"Test": ["NONE"]}, {"Test": []}, {}, None, {"Test": ["BOGUS", "x"]}]
    for none in nones:
        assert health.probe_command(none) is None


def test_defaults_and_validation() -> None:
    m = HealthMonitor({"Test": ["CMD", "true"]}, run_probe=Script((0, "")))
    assert (m.interval, m.timeout, m.start_period, m.start_interval, m.retries) == (30.0, 30.0, 0.0, 5.0, 3)
    assert m.state == {"Status": "starting", "FailingStreak": 0, "Log": None}
    m = HealthMonitor({"Test": ["CMD", "true"], "Interval": 2_000 * MS, "Timeout": 500 * MS, "Retries": -1,
                       "StartPeriod": 10_000 * MS, "StartInterval": 100 * MS}, run_probe=Script((0, "")))
    assert (m.interval, m.timeout, m.start_period, m.start_interval, m.retries) == (2.0, 0.5, 10.0, 0.1, 3)
    health.validate({"Test": ["CMD", "x"], "Interval": MS, "Timeout": 0})
    for bad, msg in (({"Interval": MS - 1}, "Interval in Healthcheck cannot be less than 1ms"),
                     ({"Timeout": 5}, "Timeout in Healthcheck cannot be less than 1ms"),
                     ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
                     ({"StartPeriod": 1}, "StartPeriod in Healthcheck cannot be less than 1ms"),
                     ({"StartInterval": 1}, "StartInterval in Healthcheck cannot be less than 1ms")):
        with pytest.raises(InvalidArgument, match=f"^{msg}$"):
            health.validate(bad)


def test_go_durations_and_texts() -> None:
    cases = {0: "0s", 250: "250ns", 1_500: "1.5µs", MS: "1ms", 1_500 * MS: "1.5s", 100 * MS: "100ms",
             30_000 * MS: "30s", 90_000 * MS: "1m30s", 60_000 * MS: "1m0s", 3_600_000 * MS: "1h0m0s",
             3_723_500 * MS: "1h2m3.5s"}
    assert {k: health.go_duration(k) for k in cases} == cases
    assert health.status_text({"Status": "starting"}) == "health: starting"
    assert health.status_text({"Status": "healthy"}) == "healthy"
    assert health.status_text({"Status": ""}) == "unhealthy" and health.status_text(None) == ""


def test_output_is_cut_at_4096_bytes_and_kept_as_go_would() -> None:
    assert health.probe_output(b"x" * 4096) == "x" * 4096
    assert health.probe_output(b"x" * 5000) == "x" * 4096 + "..."
    assert health.probe_output("é" * 3000) == "é" * 2048 + "..."
    assert health.probe_output(b"a\xe2\x82b\xff") == "a\ufffd\ufffdb\ufffd"  # one U+FFFD per bad byte


# -- the state machine ----------------------------------------------------------------------------


def test_success_makes_it_healthy_and_logs_the_probe() -> None:
    async def main() -> None:
        events: list[str] = []
        state: dict[str, Any] = {}
        probe = Script((0, b"fine\n"))
        m = HealthMonitor(hc(["CMD-SHELL", "check"]), run_probe=probe, on_change=events.append, state=state)
        m.start()
        await until(lambda: state["Status"] == "healthy")
        await m.aclose()
        assert events == ["healthy"] and probe.calls[0][:2] == (["/bin/sh", "-c", "check"], 30.0)
        entry = state["Log"][0]
        assert entry["ExitCode"] == 0 and entry["Output"] == "fine\n"
        assert RFC3339.match(entry["Start"]) and RFC3339.match(entry["End"]) and entry["Start"] <= entry["End"]
        assert list(entry) == ["Start", "End", "ExitCode", "Output"]
        assert state["Status"] == "unhealthy"  # stopped: moby's "for compatibility" status, no event
        assert events == ["healthy"]

    run(main())


def test_retries_then_unhealthy_then_healthy_again() -> None:
    async def main() -> None:
        events: list[str] = []
        streaks: list[tuple[str, int]] = []
        probe = Script((1, "no"), (2, "no"), (7, "no"), (1, "no"), (0, "ok"))
        m = HealthMonitor(hc(Retries=3), run_probe=probe, on_change=events.append)

        async def record(result: dict[str, Any], start_ns: int) -> None:
            await HealthMonitor._record(m, result, start_ns)
            streaks.append((m.state["Status"], m.state["FailingStreak"]))

        m._record = record  # type: ignore[method-assign]
        m.start()
        await until(lambda: len(streaks) >= 5)
        await m.aclose()
        assert streaks[:5] == [("starting", 1), ("starting", 2), ("unhealthy", 3), ("unhealthy", 4), ("healthy", 0)]
        assert events == ["unhealthy", "healthy"]  # only changes are reported

    run(main())


def test_log_keeps_the_last_five() -> None:
    async def main() -> None:
        probe = Script(*[(i % 2, f"run {i}") for i in range(7)], (0, "more"))
        m = HealthMonitor(hc(Retries=100), run_probe=probe)
        m.start()
        await until(lambda: len(probe.calls) >= 8)
        await m.aclose()
        outs = [e["Output"] for e in m.state["Log"]]
        assert len(outs) == 5 and outs[:3] == ["run 3", "run 4", "run 5"]

    run(main())


def test_timeouts_cancel_the_probe_and_say_so() -> None:
    async def main() -> None:
        probe = Script((0, ""), delay=10)
        m = HealthMonitor(hc(Timeout=50 * MS, Retries=1), run_probe=probe)
        m.start()
        await until(lambda: m.state["Log"] is not None)
        await m.aclose()
        assert m.state["Log"][0]["ExitCode"] == -1
        assert m.state["Log"][0]["Output"] == "Health check exceeded timeout (50ms)"
        assert probe.cancelled >= 1 and m.state["Status"] == "unhealthy"

        async def partial() -> tuple[int, str]:
            raise ProbeTimeout(b"half done")

        m2 = HealthMonitor(hc(Timeout=1_500 * MS), run_probe=Script(partial))
        m2.start()
        await until(lambda: m2.state["Log"] is not None)
        await m2.aclose()
        assert m2.state["Log"][0]["Output"] == "Health check exceeded timeout (1.5s): half done"

    run(main())


def test_probe_errors_and_a_missing_command() -> None:
    async def main() -> None:
        m = HealthMonitor(hc(), run_probe=Script(RuntimeError('exec: "curl": executable file not found in $PATH')))
        m.start()
        await until(lambda: m.state["Log"] is not None)
        await m.aclose()
        assert m.state["Log"][0]["ExitCode"] == -1
        assert m.state["Log"][0]["Output"] == 'exec: "curl": executable file not found in $PATH'
        probe = Script((0, ""))
        m = HealthMonitor(hc(["CMD"]), run_probe=probe, container_id="abc")
        m.start()
        await until(lambda: m.state["Log"] is not None)
        await m.aclose()
        assert m.state["Log"][0]["Output"] == "healthcheck for container abc has no command" and not probe.calls

    run(main())


def test_start_period_and_start_interval() -> None:
    async def main() -> None:
        events: list[str] = []
        probe = Script((1, "not yet"))
        m = HealthMonitor(hc(interval=200 * MS, StartPeriod=300 * MS, StartInterval=20 * MS, Retries=2),
                          run_probe=probe, on_change=events.append)
        t0 = time.time()
        m.start(started_at=t0)
        await until(lambda: m.state["Status"] == "unhealthy", 5)
        await m.aclose()
        times = [c[2] for c in probe.calls]
        during = [t for t in times if t - times[0] < 0.25]
        assert len(during) >= 5  # probed every StartInterval while starting in the start period
        failing_in_period = [e for e in m.state["Log"] if e["ExitCode"] == 1]
        assert failing_in_period and events == ["unhealthy"]
        # failures inside the start period did not count: unhealthy only after it, at Retries=2
        assert time.time() - t0 >= 0.3
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[-1] >= 0.15  # after the start period: the normal Interval

    run(main())


def test_stop_restart_and_unpause() -> None:
    async def main() -> None:
        events: list[str] = []
        gate = asyncio.Event()

        async def slow() -> tuple[int, str]:
            await gate.wait()
            return 0, "ok"

        probe = Script(slow)
        state = {"Status": "starting", "FailingStreak": 0, "Log": []}
        m = HealthMonitor(hc(), run_probe=probe, on_change=events.append, state=state)
        m.start()
        await until(lambda: bool(probe.calls))
        m.stop()  # mid-probe (the daemon's stop/pause path is synchronous)
        await until(lambda: probe.cancelled == 1)
        assert state["Status"] == "unhealthy" and not m.running and events == [] and state["Log"] == []
        state["FailingStreak"] = 2
        gate.set()
        m.start()  # a restart: starting again, streak reset, log kept
        assert state["Status"] == "starting" and state["FailingStreak"] == 0 and m.running
        await until(lambda: state["Status"] == "healthy")
        m.stop()
        m.start(reset=False)  # unpause: the status stays what the pause left until the next probe
        assert state["Status"] == "unhealthy"
        await until(lambda: state["Status"] == "healthy")
        await m.aclose()
        assert events == ["healthy", "healthy"]

    run(main())


def test_none_never_runs_and_callbacks_may_be_async_or_fail() -> None:
    async def main() -> None:
        m = HealthMonitor({"Test": ["NONE"]}, run_probe=Script((0, "")))
        m.start()
        assert not m.running
        seen: list[str] = []

        async def on_change(status: str) -> None:
            await asyncio.sleep(0)
            seen.append(status)
            raise RuntimeError("the daemon's problem")

        m = HealthMonitor(hc(), run_probe=Script((1, ""), (0, "")), on_change=on_change)
        m.start()
        await until(lambda: bool(seen) and len(m.state["Log"] or []) >= 3)
        assert m.running  # the failing callback did not end the checks
        await m.aclose()
        assert seen == ["healthy"]

    run(main())


# -- real processes ---------------------------------------------------------------------------------


async def exec_probe(cmd: list[str], timeout: float) -> tuple[int, bytes]:
    """What the daemon's exec does for a probe, on the host: stdout and stderr together; on
    cancellation (the monitor's timeout) the process is killed and reaped, and what it printed so
    far is handed back through ProbeTimeout."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
    out = bytearray()
    assert proc.stdout is not None
    try:
        while chunk := await proc.stdout.read(4096):
            out += chunk
        return await proc.wait(), bytes(out)
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise ProbeTimeout(bytes(out)) from None


def test_real_probes_exit_codes_output_and_timeouts(tmp_path: Any) -> None:
    async def main() -> None:
        events: list[str] = []
        m = HealthMonitor(hc(["CMD-SHELL", "echo out; echo err >&2; exit 3"], Retries=1), run_probe=exec_probe,
                          on_change=events.append)
        m.start()
        await until(lambda: m.state["Status"] == "unhealthy")
        await m.aclose()
        assert (m.state["Log"][0]["ExitCode"], m.state["Log"][0]["Output"]) == (3, "out\nerr\n")
        m = HealthMonitor(hc(["CMD", "sh", "-c", "head -c 6000 /dev/zero | tr '\\0' y"]), run_probe=exec_probe)
        m.start()
        await until(lambda: m.state["Status"] == "healthy")
        await m.aclose()
        assert m.state["Log"][0]["Output"] == "y" * 4096 + "..."
        pidfile = tmp_path / "pid"
        m = HealthMonitor(hc(["CMD-SHELL", f"echo $$ > {pidfile}; echo partial; exec sleep 30"], Timeout=300 * MS),
                          run_probe=exec_probe)
        m.start()
        await until(lambda: m.state["Log"] is not None)
        await m.aclose()
        assert m.state["Log"][0]["Output"] == "Health check exceeded timeout (300ms): partial\n"
        pid = int(pidfile.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped, not left to pile up

    run(main())
