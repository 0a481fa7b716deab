"""One conformance suite for every cgroup backend berth has:

- v1:      the real v1 hierarchies under /sys/fs/cgroup (this host is hybrid v1);
- v2:      the real cgroup2 tree (here /sys/fs/cgroup/unified: only hugetlb is delegated, but
           cgroup.procs, cgroup.freeze, cgroup.events, cgroup.kill and cpu.stat are real);
- v2-fake: a directory of plain files laid out as a cgroup2 tree, for the resource files a real
           v2 tree here cannot offer (memory.max, cpu.max, io.max, ...).

Each test runs on every backend that has the feature it needs (a real v2 host runs them all).
Real-kernel tests use real processes: forked children that the test moves into the cgroup."""

from __future__ import annotations

import errno
import mmap
import os
import select
import signal
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from berth.errors import InvalidArgument
from berth.runtime import cgroups
from berth.runtime.cgroups import CgroupError, fs
from tests import leaks

V2_ROOT = "/sys/fs/cgroup/unified"


# --- real processes --------------------------------------------------------------------------
class Child:
    """A forked child that waits for `go()` (so the test can place it in a cgroup first), then
    runs one action and reports a line on a pipe. It exits when the test closes the go pipe."""

    def __init__(self, action: str, arg: int | str = 0) -> None:
        self.counter = mmap.mmap(-1, 8)  # shared with the child: its progress, for freezer tests
        go_r, self._go_w = os.pipe()
        self._res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                os.close(self._go_w)
                os.close(self._res_r)
                if os.read(go_r, 1) == b"g":
                    os.write(res_w, (_ACTIONS[action](self, arg) + "\n").encode())
                    os.read(go_r, 1)  # stay alive (in the cgroup) until the test lets go
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(res_w)
        self.pid = pid
        self.status: int | None = None
        self.hold = b""

    def go(self) -> None:
        os.write(self._go_w, b"g")

    def result(self, timeout: float = 20.0) -> str:
        ready, _, _ = select.select([self._res_r], [], [], timeout)
        assert ready, "child did not report"
        return os.read(self._res_r, 4096).decode().strip()

    def count(self) -> int:
        return int(struct.unpack("Q", self.counter[:8])[0])

    def cpu_ticks(self) -> int:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def wait(self, timeout: float = 10.0) -> int:
        """Reap; returns the wait status."""
        if self.status is not None:
            return self.status
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return status
            assert time.monotonic() < deadline, f"child {self.pid} did not exit"
            time.sleep(0.005)

    def close(self) -> None:
        """Let go and reap, whatever state the child is in."""
        for fd in (self._go_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        self.counter.close()


def _sleep(child: Child, arg: int | str) -> str:
    return "ready"


def _spin(child: Child, arg: int | str) -> str:
    """Burn CPU forever, publishing a counter (never reports)."""
    n = 0
    while True:
        n += 1
        if n % 512 == 0:
            child.counter[:8] = struct.pack("Q", n)


def _alloc(child: Child, arg: int | str) -> str:
    data = b"x" * int(arg)  # bytes * n writes every page: the memory is really charged
    child.hold = data  # and stays charged while the child waits
    return f"allocated {len(data)}"


def _fork(child: Child, arg: int | str) -> str:
    """Fork `arg` children without reaping them (a zombie still counts in pids.current)."""
    made = 0
    err = 0
    kids = []
    for _ in range(int(arg)):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno or 0
            break
        if pid == 0:
            os._exit(0)
        kids.append(pid)
        made += 1
    for pid in kids:
        os.waitpid(pid, 0)
    return f"{made} {err}"


def _open(child: Child, arg: int | str) -> str:
    try:
        os.close(os.open(str(arg), os.O_RDONLY))
    except OSError as e:
        return str(e.errno)
    return "0"


def _write_file(child: Child, arg: int | str) -> str:
    fd = os.open(str(arg), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"y" * (4 << 20))
        os.fsync(fd)
    finally:
        os.close(fd)
    return "written"


_ACTIONS: dict[str, Callable[[Child, int | str], str]] = {
    "sleep": _sleep, "spin": _spin, "alloc": _alloc, "fork": _fork, "open": _open, "write": _write_file,
}


@pytest.fixture
def children() -> Iterator[Callable[..., Child]]:
    made: list[Child] = []

    def spawn(action: str = "sleep", arg: int | str = 0) -> Child:
        c = Child(action, arg)
        made.append(c)
        return c

    yield spawn
    for c in made:
        c.close()


# --- the fake cgroup2 tree -------------------------------------------------------------------
FAKE_CGROUP_FILES = {
    "cgroup.controllers": "cpuset cpu io memory pids\n",
    "cgroup.subtree_control": "\n",
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.current": "1234\n",
    "memory.peak": "5678\n",
    "memory.swap.current": "0\n",
    "memory.stat": "anon 4096\nfile 8192\ninactive_file 4096\nactive_anon 4096\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n",
    "cpu.weight": "100\n",
    "cpu.max": "max 100000\n",
    "cpu.max.burst": "0\n",
    "cpu.idle": "0\n",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\n"
                "throttled_usec 30\n",
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "pids.max": "max\n",
    "pids.current": "0\n",
    "io.weight": "default 100\n",
    "io.max": "",
    "io.stat": "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
}


def make_fake_v2(root: str, cgroup: str) -> None:
    """A cgroup2 root offering every controller berth uses, and the container's cgroup as the
    kernel would populate it (a plain directory cannot make its own files on mkdir)."""
    os.makedirs(root, exist_ok=True)
    for name, text in (("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
                       ("cgroup.subtree_control", "\n"), ("cgroup.procs", "")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    d = os.path.join(root, cgroup.lstrip("/"))
    os.makedirs(d, exist_ok=True)
    for name, text in FAKE_CGROUP_FILES.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def read_file(m: cgroups.CgroupManager, name: str) -> str:
    return fs.read(os.path.join(m.dir, name)).strip()


# --- backends --------------------------------------------------------------------------------
def _v2_features() -> set[str]:
    """What the real cgroup2 tree offers below its root here."""
    try:
        ctrls = set(fs.read(os.path.join(V2_ROOT, "cgroup.controllers")).split())
    except OSError:
        return set()
    return {"real", "procs", "freeze", "kill", "cpu_usage"} | (ctrls & {"memory", "pids", "cpu", "io", "cpuset"})


class Backend:
    def __init__(self, name: str, features: set[str]) -> None:
        self.name = name
        self.features = features

    def manager(self, cgroups_path: str, tmp: str) -> cgroups.CgroupManager:
        if self.name == "v1":
            return cgroups.manager_for(cgroups_path, "cid", version="v1")
        if self.name == "v2":
            return cgroups.manager_for(cgroups_path, "cid", root=V2_ROOT, version="v2")
        root = os.path.join(tmp, "fakecg")
        make_fake_v2(root, cgroups_path)
        return cgroups.manager_for(cgroups_path, "cid", root=root, version="v2")


V1_FEATURES = {"real", "procs", "freeze", "kill", "cpu_usage", "memory", "pids", "cpu", "cpuset", "v1"}
FAKE_FEATURES = {"memory", "pids", "cpu", "cpuset", "io", "files", "procs_file"}

BACKENDS = [
    pytest.param(Backend("v1", V1_FEATURES), id="v1", marks=pytest.mark.root),
    pytest.param(Backend("v2", _v2_features()), id="v2", marks=pytest.mark.root),
    pytest.param(Backend("v2-fake", FAKE_FEATURES), id="v2-fake"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    b: Backend = request.param
    if b.name == "v1" and cgroups.detect() != "v1":
        pytest.skip("host is not cgroup v1")
    if b.name == "v2" and not os.path.exists(os.path.join(V2_ROOT, "cgroup.procs")):
        pytest.skip(f"no cgroup2 tree at {V2_ROOT}")
    return b


def need(backend: Backend, *features: str) -> None:
    missing = [f for f in features if f not in backend.features]
    if missing:
        pytest.skip(f"{backend.name} has no {', '.join(missing)}")


@pytest.fixture
def cg(backend: Backend, tmp_path: object) -> Iterator[cgroups.CgroupManager]:
    """A created cgroup on the backend, removed (with anything left in it) afterwards."""
    m = backend.manager("/" + leaks.name("berth-cg"), str(tmp_path))
    m.create()
    yield m
    if "real" in backend.features:
        if m.exists():
            if m.is_frozen():
                m.thaw()
            for pid in m.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        m.destroy()


def kernel_says_frozen(m: cgroups.CgroupManager) -> bool:
    if m.version == "v1":
        return fs.read(os.path.join(m.paths["freezer"], "freezer.state")).strip() == "FROZEN"
    return fs.parse_kv(fs.read(os.path.join(m.dir, "cgroup.events"))).get("frozen") == 1


def join(m: cgroups.CgroupManager, child: Child) -> None:
    m.add_pid(child.pid)
    child.go()


# --- the suite -------------------------------------------------------------------------------
def test_create_is_idempotent_and_path_round_trips(backend: Backend, cg: cgroups.CgroupManager,
                                                   tmp_path: object) -> None:
    cg.create()  # a second create (runc's create, then exec's join) is not an error
    assert cg.exists()
    assert cg.version in ("v1", "v2")
    again = backend.manager(cg.path, str(tmp_path))
    assert again.paths == cg.paths
    rebuilt = cgroups.manager_from_paths(cg.paths, version=cg.version, root=cg.root)
    assert rebuilt.paths == cg.paths and rebuilt.path == cg.path
    for d in cg.paths.values():
        assert os.path.isdir(d) and os.path.basename(d) == os.path.basename(cg.path)


def test_add_pid_moves_the_process_everywhere(backend: Backend, cg: cgroups.CgroupManager,
                                              children: Callable[..., Child]) -> None:
    need(backend, "real")
    c = children("sleep")
    join(cg, c)
    assert c.result() == "ready"
    assert c.pid in cg.pids()
    with open(f"/proc/{c.pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    if cg.version == "v2":
        assert ["0", "", cg.path] in lines
    else:
        joined = {sub for _, subs, path in lines if path == cg.path for sub in subs.split(",")}
        assert {"memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer", "blkio"} <= joined


def test_procs_files_opened_early_join_late(backend: Backend, cg: cgroups.CgroupManager,
                                            children: Callable[..., Child]) -> None:
    """The runtime's init opens cgroup.procs before pivot_root and writes itself in later."""
    need(backend, "real")
    fds = [os.open(f, os.O_WRONLY | os.O_CLOEXEC) for f in cg.procs_files()]
    try:
        c = children("sleep")
        for fd in fds:
            os.write(fd, str(c.pid).encode())
    finally:
        for fd in fds:
            os.close(fd)
    c.go()
    assert c.result() == "ready"
    assert cg.pids() == [c.pid]


def test_pids_lists_sub_cgroups(backend: Backend, cg: cgroups.CgroupManager,
                                children: Callable[..., Child]) -> None:
    need(backend, "real")
    sub = os.path.join(cg.dir, "inner")
    os.mkdir(sub)
    a, b = children("sleep"), children("sleep")
    join(cg, a)
    fs.write_pid(os.path.join(sub, "cgroup.procs"), b.pid)
    b.go()
    assert sorted(cg.pids()) == sorted([a.pid, b.pid])
    # kill_all reaches the sub-cgroup, and destroy removes it (children first)
    cg.kill_all(signal.SIGTERM)
    assert os.WTERMSIG(a.wait()) == signal.SIGTERM
    assert os.WTERMSIG(b.wait()) == signal.SIGTERM
    cg.destroy()
    assert not os.path.exists(sub) and not cg.exists()


def test_memory_limit_is_applied_and_reported(backend: Backend, cg: cgroups.CgroupManager) -> None:
    need(backend, "memory")
    cg.apply({"memory": {"limit": 64 << 20}})
    assert cg.stats()["memory_stats"]["limit"] == 64 << 20
    cg.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20}})  # update, memory == memory+swap
    assert cg.stats()["memory_stats"]["limit"] == 32 << 20


def test_pids_limit_values(backend: Backend, cg: cgroups.CgroupManager) -> None:
    need(backend, "pids")
    cg.apply({"pids": {"limit": 100}})
    assert cg.stats()["pids_stats"]["limit"] == 100
    cg.apply({"pids": {"limit": 0}})  # runc: 0 means 1 (systemd cannot express 0)
    assert cg.stats()["pids_stats"]["limit"] == 1
    cg.apply({"pids": {"limit": -1}})
    assert cg.stats()["pids_stats"]["limit"] == 0  # unlimited reads as 0, as runc/Docker


def test_absent_fields_are_left_alone(backend: Backend, cg: cgroups.CgroupManager) -> None:
    need(backend, "pids")
    cg.apply({"pids": {"limit": 42}})
    cg.apply({})
    cg.apply({"memory": {}, "cpu": {}, "blockIO": {}, "devices": []})
    assert cg.stats()["pids_stats"]["limit"] == 42


@pytest.mark.parametrize(("resources", "message"), [
    ({"pids": {"limit": "10"}}, "linux.resources.pids.limit must be an integer"),
    ({"memory": {"limit": True}}, "linux.resources.memory.limit must be an integer"),
    ({"memory": {"swappiness": 101}}, "invalid memory swappiness value: 101 (valid range is 0-100)"),
    ({"cpu": {"shares": -5}}, "linux.resources.cpu.shares must not be negative"),
    ({"cpu": {"cpus": "0-"}}, "invalid value for cpuset cpus"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8}]}}, "needs major, minor and rate"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, "not supported by berth yet"),
    ("not an object", "linux.resources must be an object"),
])
def test_malformed_resources_are_refused(backend: Backend, cg: cgroups.CgroupManager, resources: object,
                                         message: str) -> None:
    with pytest.raises(Exception) as info:
        cg.apply(resources)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert isinstance(info.value, InvalidArgument) or "not supported" in message


def test_refused_apply_changes_nothing(backend: Backend, cg: cgroups.CgroupManager) -> None:
    """pids is written before blockIO is read: the bad blockIO entry must undo the pids write."""
    need(backend, "pids")
    cg.apply({"pids": {"limit": 50}})
    with pytest.raises(InvalidArgument):
        cg.apply({"pids": {"limit": 10}, "blockIO": {"throttleReadBpsDevice": [{"major": 1}]}})
    assert cg.stats()["pids_stats"]["limit"] == 50


def test_freeze_stops_a_busy_process_and_thaw_resumes_it(backend: Backend, cg: cgroups.CgroupManager,
                                                         children: Callable[..., Child]) -> None:
    need(backend, "freeze", "real")
    c = children("spin")
    join(cg, c)
    assert fs.wait_until(lambda: c.count() > 0, 5.0)
    assert not cg.is_frozen()
    cg.freeze()
    assert cg.is_frozen()
    n, ticks = c.count(), c.cpu_ticks()
    time.sleep(0.3)  # 30 clock ticks: a running spinner would add ~30
    assert c.count() == n
    assert c.cpu_ticks() == ticks
    cg.thaw()
    assert not cg.is_frozen()
    assert fs.wait_until(lambda: c.count() > n, 5.0)


def test_freeze_returns_only_once_every_process_is_frozen(backend: Backend, cg: cgroups.CgroupManager,
                                                          children: Callable[..., Child]) -> None:
    """With more spinners than CPUs, freezing takes the kernel a few scheduler ticks: a freeze
    that returned after writing the request would be caught here mid-way."""
    need(backend, "freeze", "real")
    spinners = [children("spin") for _ in range(6)]
    for c in spinners:
        join(cg, c)
    assert fs.wait_until(lambda: all(c.count() > 0 for c in spinners), 10.0)
    for _ in range(3):
        cg.freeze()
        assert kernel_says_frozen(cg)
        cg.thaw()
        assert not cg.is_frozen()


def test_kill_all_signals_every_process(backend: Backend, cg: cgroups.CgroupManager,
                                        children: Callable[..., Child]) -> None:
    need(backend, "kill", "real")
    a, b = children("sleep"), children("sleep")
    join(cg, a)
    join(cg, b)
    cg.kill_all(signal.SIGTERM)
    assert os.WTERMSIG(a.wait()) == signal.SIGTERM and os.WTERMSIG(b.wait()) == signal.SIGTERM
    assert not cg.is_frozen()  # the freeze that guarded the listing was undone


def test_kill_all_sigkill_reaches_a_frozen_cgroup(backend: Backend, cg: cgroups.CgroupManager,
                                                  children: Callable[..., Child]) -> None:
    """A v1-frozen task cannot act on SIGKILL until thawed: kill_all must leave it able to die."""
    need(backend, "kill", "freeze", "real")
    c = children("spin")
    join(cg, c)
    cg.freeze()
    cg.kill_all(signal.SIGKILL)
    assert os.WTERMSIG(c.wait(5.0)) == signal.SIGKILL


def test_kill_all_leaves_a_paused_cgroup_paused(backend: Backend, cg: cgroups.CgroupManager,
                                                children: Callable[..., Child]) -> None:
    need(backend, "kill", "freeze", "real")
    c = children("sleep")
    join(cg, c)
    assert c.result() == "ready"
    cg.freeze()
    cg.kill_all(signal.SIGTERM)
    assert cg.is_frozen()  # the signal waits for unpause, as with runc
    cg.thaw()
    assert os.WTERMSIG(c.wait()) == signal.SIGTERM


def test_destroy_leaves_nothing_and_is_idempotent(backend: Backend, cg: cgroups.CgroupManager,
                                                  children: Callable[..., Child]) -> None:
    need(backend, "real")
    c = children("sleep")
    join(cg, c)
    assert c.result() == "ready"
    os.kill(c.pid, signal.SIGKILL)  # not waited for: destroy must retry while the task exits
    cg.destroy()
    assert not any(os.path.exists(d) for d in cg.paths.values())
    cg.destroy()
    assert not cg.exists()
    c.wait()


def test_destroy_with_a_live_process_fails_clearly(backend: Backend, cg: cgroups.CgroupManager,
                                                   children: Callable[..., Child]) -> None:
    need(backend, "real")
    c = children("sleep")
    join(cg, c)
    t = time.monotonic()
    with pytest.raises(CgroupError, match="Failed to remove paths"):
        cg.destroy()
    assert time.monotonic() - t < 5.0  # retries briefly, then gives up
    assert cg.exists() and cg.pids() == [c.pid]


def test_stats_shape(backend: Backend, cg: cgroups.CgroupManager) -> None:
    st = cg.stats()
    assert set(st) == {"memory_stats", "cpu_stats", "pids_stats", "blkio_stats"}
    assert set(st["cpu_stats"]["cpu_usage"]) == {"total_usage", "percpu_usage", "usage_in_kernelmode",
                                                 "usage_in_usermode"}
    assert set(st["cpu_stats"]["throttling_data"]) == {"periods", "throttled_periods", "throttled_time"}
    assert set(st["pids_stats"]) == {"current", "limit"}
    assert set(st["blkio_stats"]) == {"io_service_bytes_recursive", "io_serviced_recursive"}
    if "memory" in backend.features:
        assert {"usage", "max_usage", "failcnt", "limit", "stats"} <= set(st["memory_stats"])
        assert all(isinstance(v, int) for v in st["memory_stats"]["stats"].values())
    assert isinstance(cg.oom_kill_count(), int)


def test_stats_count_cpu_time_and_processes(backend: Backend, cg: cgroups.CgroupManager,
                                            children: Callable[..., Child]) -> None:
    need(backend, "real", "cpu_usage")
    c = children("spin")
    join(cg, c)
    assert fs.wait_until(lambda: cg.stats()["cpu_stats"]["cpu_usage"]["total_usage"] > 50_000_000, 10.0)
    st = cg.stats()
    usage = st["cpu_stats"]["cpu_usage"]
    assert usage["usage_in_usermode"] > 0
    if cg.version == "v1":
        assert len(usage["percpu_usage"]) == os.cpu_count()
        assert sum(usage["percpu_usage"]) == pytest.approx(usage["total_usage"], rel=0.2)
    assert st["pids_stats"]["current"] == 1


def test_stats_of_a_missing_cgroup(backend: Backend, cg: cgroups.CgroupManager) -> None:
    need(backend, "real")
    cg.destroy()
    from berth.errors import NotFound

    with pytest.raises(NotFound):
        cg.stats()
    with pytest.raises(NotFound):
        cg.kill_all(signal.SIGKILL)
    with pytest.raises(NotFound):
        cg.apply({"pids": {"limit": 5}})
    with pytest.raises(NotFound):
        cg.freeze()
    cg.thaw()  # nothing to thaw: not an error
    assert cg.pids() == [] and not cg.is_frozen()


def _opens(cg: cgroups.CgroupManager, children: Callable[..., Child], *paths: str) -> list[str]:
    """What each open(O_RDONLY) gives a process in the cgroup: "0" or the errno."""
    out = []
    for p in paths:
        c = children("open", p)
        join(cg, c)
        out.append(c.result())
    return out


def host_block_node(directory: str) -> str:
    """A block device node (the first loop device, b 7:0) that the host itself lets root open: the
    stand-in for a host disk (this machine refuses even root an open of its real disk, which would
    make a "denied" check pass whatever the cgroup says)."""
    node = os.path.join(directory, "blockdev")
    os.mknod(node, 0o600 | 0o060000, os.makedev(7, 0))
    try:
        os.close(os.open(node, os.O_RDONLY))
    except OSError as e:
        pytest.skip(f"the host cannot open b 7:0 itself: {e.strerror}")
    return node


def test_device_rules_decide_what_opens(backend: Backend, cg: cgroups.CgroupManager,
                                        children: Callable[..., Child], tmp_path: object) -> None:
    # v1 writes devices.allow/deny; v2 attaches an eBPF program: the same decisions either way
    need(backend, "real")
    eperm = str(errno.EPERM)
    disk = host_block_node(str(tmp_path))
    assert _opens(cg, children, disk, "/dev/kmsg") == ["0", "0"]  # no rules yet
    cg.apply(cgroups.with_runc_defaults({}))  # what every container gets: deny, then runc's list
    assert _opens(cg, children, disk, "/dev/null", "/dev/ptmx", "/dev/kmsg") == [eperm, "0", "0", eperm]
    deny_all = {"allow": False, "access": "rwm"}
    cg.apply({"devices": [deny_all, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "w"}]})
    assert _opens(cg, children, "/dev/zero", "/dev/null") == [eperm, eperm]  # r not covered by "w"
    cg.apply({"devices": [deny_all, {"allow": True, "type": "c", "major": 1, "minor": None, "access": "rw"}]})
    assert _opens(cg, children, "/dev/zero", "/dev/null", "/dev/ptmx", disk) == ["0", "0", eperm, eperm]
    cg.apply({"devices": [deny_all, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]})
    assert _opens(cg, children, disk, "/dev/null") == ["0", eperm]
    # allow by default, one exception denied
    cg.apply({"devices": [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3,
                                                             "access": "r"}]})
    assert _opens(cg, children, "/dev/null", "/dev/zero", disk) == [eperm, "0", "0"]
    if cg.version == "v2":  # each apply replaced the program before: one stays attached
        from berth.runtime.cgroups import devfilter

        fd = os.open(cg.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(devfilter._attached(fd)) == 1
        finally:
            os.close(fd)
