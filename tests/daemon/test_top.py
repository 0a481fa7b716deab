"""`docker top`: the host's real `ps`, filtered to the processes of a real cgroup, as moby does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from berth.daemon import top as topmod
from berth.errors import InvalidArgument
from berth.runtime import cgroups
from tests import leaks

THREADS = r"""
import sys, threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def container() -> Iterator[tuple[cgroups.CgroupManager, list[subprocess.Popen[bytes]]]]:
    """A cgroup holding `sleep 1000 1` and a python with three extra threads: a container's processes."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    m = cgroups.manager_for("/" + leaks.name("berth-top"), "cid", version=cgroups.detect())
    m.create()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(["sleep", "1000", "1"]))
        procs.append(subprocess.Popen([sys.executable, "-c", THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        assert procs[1].stdout is not None and procs[1].stdout.readline() == b"ready\n"
        for p in procs:
            m.add_pid(p.pid)
        yield m, procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        m.destroy()


pytestmark = pytest.mark.root


def test_default_is_ps_ef_filtered_to_the_container(container: tuple[cgroups.CgroupManager, list]) -> None:
    m, procs = container
    out = topmod.top(m.pids(), None)
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = {int(r[1]): r for r in out["Processes"]}
    assert set(rows) == {p.pid for p in procs}
    sleep = rows[procs[0].pid]
    assert len(sleep) == 8 and sleep[0] == "root" and sleep[2] == str(os.getpid())
    assert sleep[-1] == "sleep 1000 1"  # the overhanging fields are joined into the last column
    default = topmod.top(m.pids(), "")  # "" means the default too
    assert default["Titles"] == out["Titles"] and {int(r[1]) for r in default["Processes"]} == set(rows)


def test_ps_args(container: tuple[cgroups.CgroupManager, list]) -> None:
    m, procs = container
    aux = topmod.top(m.pids(), "aux")
    assert aux["Titles"][:2] == ["USER", "PID"] and aux["Titles"][-1] == "COMMAND"
    assert {int(r[1]) for r in aux["Processes"]} == {p.pid for p in procs}
    assert all(len(r) == len(aux["Titles"]) for r in aux["Processes"])
    o = topmod.top(m.pids(), "-o pid,args")
    assert o["Titles"] == ["PID", "COMMAND"]
    assert [str(procs[0].pid), "sleep 1000 1"] in o["Processes"]
    # one row per thread (-L): the python's four threads, all with its PID
    threads = topmod.top(m.pids(), "-eLf")
    assert threads["Titles"][3] == "LWP"
    assert sum(1 for r in threads["Processes"] if r[1] == str(procs[1].pid)) == 4


def test_thread_rows_follow_their_process_only(container: tuple[cgroups.CgroupManager, list]) -> None:
    m, procs = container
    out = topmod.top(m.pids(), "m")  # BSD thread display: thread rows have "-" as PID
    pid_col = out["Titles"].index("PID")
    pids = [r[pid_col] for r in out["Processes"]]
    assert sorted(p for p in pids if p != "-") == sorted(str(p.pid) for p in procs)
    assert pids.count("-") == 1 + 4  # sleep's one thread, python's four; nobody else's
    # "-" rows are kept after a container process, dropped after any other one (the unit case below)


def test_options_that_refuse_q_fall_back_to_filtering(container: tuple[cgroups.CgroupManager, list]) -> None:
    m, procs = container
    out = topmod.top(m.pids(), "axf")  # ps: "-q cannot be used together with forest type listings"
    assert {int(r[0]) for r in out["Processes"]} == {p.pid for p in procs}
    assert any(r[-1].endswith("sleep 1000 1") for r in out["Processes"])


def test_moby_errors() -> None:
    with pytest.raises(InvalidArgument, match=r'^specifying "user=PID" is not allowed$'):
        topmod.top([1], "-o user=PID")
    topmod.validate_ps_args("-o pid=PID")  # renaming the pid column itself is allowed
    with pytest.raises(InvalidArgument, match=r"^ps: error: unknown gnu long option"):
        topmod.top([os.getpid()], "--bogus")
    with pytest.raises(InvalidArgument, match=r"^Couldn't find PID field in ps output$"):
        topmod.top([os.getpid()], "-o comm")
    with pytest.raises(InvalidArgument, match=r"^ps: exit status 1$"):
        topmod.top([os.getpid()], "-C no-such-command-anywhere")


def test_no_processes_gives_an_empty_list() -> None:
    out = topmod.top([], None)
    assert out["Titles"][1] == "PID" and out["Processes"] == []


def test_parse_ps_output() -> None:
    text = ("  PID TTY      STAT   TIME COMMAND\n"
            "   10 ?        Ss     0:00 /init --flag\n"
            "    - -        Ssl    0:00 -\n"
            "   11 ?        S      0:00 other\n"
            "    - -        S      0:00 -\n"
            "   12 ?        S      0:00 echo a\u00a0b  c\n")
    out = topmod.parse_ps_output(text, [10, 12])
    assert out == {"Titles": ["PID", "TTY", "STAT", "TIME", "COMMAND"],
                   "Processes": [["10", "?", "Ss", "0:00", "/init --flag"], ["-", "-", "Ssl", "0:00", "-"],
                                 ["12", "?", "S", "0:00", "echo a\u00a0b c"]]}  # only ASCII spaces split
    with pytest.raises(InvalidArgument, match=r"^Unexpected pid 'x1': strconv.Atoi: parsing \"x1\": invalid syntax$"):
        topmod.parse_ps_output("PID CMD\nx1 sh\n", [1])
