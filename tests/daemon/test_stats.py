"""Stats frames: moby's exact shape from synthetic cgroup numbers and a cgroup2 tree, then from a real
cgroup v1 with a busy, memory-hungry, disk-writing child, read back through the CLI's formulas
(cli/command/container/stats_helpers.go) and through the real `docker stats --no-stream`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.api import EngineAPI
from berth.daemon import stats
from berth.runtime import cgroups
from berth.units import bytes_size, human_size
from tests import leaks
from tests.api.conftest import DOCKER, Engine
from tests.api.fake import ContainersFake, FakeDaemon
from tests.runtime.test_cgroups_conformance import make_fake_v2

MiB = 1 << 20


# -- the CLI's arithmetic, transcribed ----------------------------------------------------------


def cli_numbers(v: dict[str, Any]) -> dict[str, float]:
    """What `docker stats` computes from one frame (Linux daemon)."""
    cpu, pre = v["cpu_stats"], v["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus", 0) or len(cpu["cpu_usage"].get("percpu_usage") or [])
    cpu_pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = v["memory_stats"]
    usage, raw = mem.get("usage", 0), mem.get("stats") or {}
    if "total_inactive_file" in raw and raw["total_inactive_file"] < usage:
        used = usage - raw["total_inactive_file"]
    elif raw.get("inactive_file", 0) < usage:
        used = usage - raw.get("inactive_file", 0)
    else:
        used = usage
    limit = mem.get("limit", 0)
    rd = wr = 0
    for e in v["blkio_stats"].get("io_service_bytes_recursive") or []:
        if e["op"][:1] in "rR":
            rd += e["value"]
        elif e["op"][:1] in "wW":
            wr += e["value"]
    nets = v.get("networks") or {}
    return {"cpu": cpu_pct, "mem": used, "limit": limit, "mem_pct": used / limit * 100 if limit else 0.0,
            "blk_read": rd, "blk_write": wr, "pids": v["pids_stats"].get("current", 0),
            "net_rx": sum(n["rx_bytes"] for n in nets.values()), "net_tx": sum(n["tx_bytes"] for n in nets.values())}


# -- units ---------------------------------------------------------------------------------------


def test_system_cpu_usage_as_moby_reads_proc_stat(tmp_path: Path) -> None:
    f = tmp_path / "stat"
    f.write_text("cpu  100 2 30 400 5 6 7 8 9 10\ncpu0 50 1 15 200 2 3 3 4 0 0\ncpu1 50 1 15 200 3 3 4 4 0 0\n"
                 "intr 12345\ncpu9 1 1 1 1 1 1 1 1\n")
    # user..softirq (7 fields: steal and guest are left out) in USER_HZ=100 ticks, and the cpuN lines
    assert stats.system_cpu_usage(str(f)) == ((100 + 2 + 30 + 400 + 5 + 6 + 7) * 10_000_000, 2)
    a, n = stats.system_cpu_usage()
    assert n == os.sysconf("SC_NPROCESSORS_ONLN")
    time.sleep(0.05)
    assert stats.system_cpu_usage()[0] > a


def test_frame_v1_exact_shape() -> None:
    cg: dict[str, Any] = {
        "memory_stats": {"usage": 10 * MiB, "max_usage": 12 * MiB, "failcnt": 0, "limit": 1 << 62,
                         "stats": {"cache": 4096, "total_inactive_file": 2 * MiB, "shmem": 7, "swap": 0}},
        "cpu_stats": {"cpu_usage": {"total_usage": 5_000, "percpu_usage": [3_000, 2_000], "usage_in_kernelmode": 10,
                                    "usage_in_usermode": 20},
                      "throttling_data": {"periods": 1, "throttled_periods": 0, "throttled_time": 0}},
        "pids_stats": {"current": 3, "limit": 0},
        "blkio_stats": {"io_service_bytes_recursive": [{"major": 254, "minor": 0, "op": "Read", "value": 4096}],
                        "io_serviced_recursive": []},
    }
    f1 = stats.frame(cg, prev=None, read_time_ns=1_700_000_000_123_000_000, online_cpus=2,
                     system_cpu_usage_ns=10_000, name="web", id="abc", machine_memory_bytes=8 << 30,
                     net={"eth0": dict.fromkeys(("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes",
                                                 "tx_packets", "tx_errors", "tx_dropped"), 1)})
    raw = dict.fromkeys(stats.V1_MEMORY_KEYS, 0) | {"cache": 4096, "total_inactive_file": 2 * MiB}
    zero_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert f1 == {
        "name": "/web", "id": "abc", "read": "2023-11-14T22:13:20.123Z", "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": 3},
        "blkio_stats": {"io_service_bytes_recursive": [{"major": 254, "minor": 0, "op": "Read", "value": 4096}],
                        "io_serviced_recursive": [], "io_queue_recursive": [], "io_service_time_recursive": [],
                        "io_wait_time_recursive": [], "io_merged_recursive": [], "io_time_recursive": [],
                        "sectors_recursive": []},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 5_000, "percpu_usage": [3_000, 2_000], "usage_in_kernelmode": 10,
                                    "usage_in_usermode": 20},
                      "system_cpu_usage": 10_000, "online_cpus": 2,
                      "throttling_data": {"periods": 1, "throttled_periods": 0, "throttled_time": 0}},
        "precpu_stats": zero_cpu,
        "memory_stats": {"usage": 10 * MiB, "max_usage": 12 * MiB, "stats": raw, "limit": 8 << 30},  # capped
        "networks": {"eth0": f1["networks"]["eth0"]},
    }
    assert list(f1) == ["name", "id", "read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
                        "cpu_stats", "precpu_stats", "memory_stats", "networks"]  # moby v28's field order
    cg["cpu_stats"]["cpu_usage"]["total_usage"] = 9_000
    f2 = stats.frame(cg, prev=f1, read_time_ns=1_700_000_001_000_000_000, online_cpus=2, system_cpu_usage_ns=20_000,
                     name="/web", id="abc", machine_memory_bytes=8 << 30)
    assert f2["precpu_stats"] == f1["cpu_stats"] and f2["preread"] == f1["read"] and "networks" not in f2
    n = cli_numbers(f2)
    assert n["cpu"] == pytest.approx(4_000 / 10_000 * 2 * 100)
    assert n["mem"] == 8 * MiB and n["mem_pct"] == pytest.approx(8 * MiB / (8 << 30) * 100)
    json.dumps(f2)


def test_frame_v2_from_a_cgroup2_tree(tmp_path: Path) -> None:
    root = str(tmp_path / "cg2")
    make_fake_v2(root, "/c1")
    m = cgroups.manager_for("/c1", "c1", root=root, version="v2")
    f = stats.frame(m.stats(), prev=None, read_time_ns=0, online_cpus=4, system_cpu_usage_ns=1, name="c", id="i",
                    cgroup_version=m.version, machine_memory_bytes=1 << 30)
    mem = f["memory_stats"]
    assert set(mem["stats"]) == set(stats.V2_MEMORY_KEYS) and mem["stats"]["inactive_file"] == 4096
    assert mem["usage"] == 1234 and "max_usage" not in mem and mem["limit"] == 1 << 30
    assert f["cpu_stats"]["cpu_usage"] == {"total_usage": 1_500_000, "usage_in_kernelmode": 500_000,
                                           "usage_in_usermode": 1_000_000}
    blk = f["blkio_stats"]
    assert blk["io_service_bytes_recursive"] == [{"major": 254, "minor": 0, "op": "read", "value": 4096},
                                                 {"major": 254, "minor": 0, "op": "write", "value": 8192}]
    assert all(blk[k] is None for k in stats.BLKIO_KEYS[1:])
    assert f["pids_stats"] == {}
    n = cli_numbers(f)
    assert (n["mem"], n["blk_read"], n["blk_write"]) == (1234 - 4096 if 4096 < 1234 else 1234, 4096, 8192)


def test_empty_frame_for_a_stopped_container() -> None:
    f = stats.empty_frame("x", "id1")
    assert f["name"] == "/x" and f["read"] == f["preread"] == "0001-01-01T00:00:00Z"
    assert f["memory_stats"] == {} and f["blkio_stats"]["io_service_bytes_recursive"] is None
    assert cli_numbers(f)["cpu"] == 0


# -- the real kernel -------------------------------------------------------------------------------

CHILD = r"""
import os, sys
sys.stdin.buffer.read(1)                     # wait until placed in the cgroup
hog = bytearray(64 << 20)
for i in range(0, len(hog), 4096):
    hog[i] = 1                                # touch every page: 64 MiB of anonymous memory
import mmap
buf = mmap.mmap(-1, 1 << 20)                  # page-aligned, as O_DIRECT wants
buf.write(os.urandom(1 << 20))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
for _ in range(8):
    os.write(fd, buf)                         # 8 MiB straight to the disk, charged to this cgroup
os.fsync(fd)
os.close(fd)
print("ready", flush=True)
while True:
    pass                                      # one CPU, flat out
"""


@dataclasses.dataclass
class Busy:
    manager: cgroups.CgroupManager
    proc: subprocess.Popen[bytes]


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[Busy]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    m = cgroups.manager_for("/" + leaks.name("berth-stats"), "cid", version=cgroups.detect())
    m.create()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "written")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        m.apply({"memory": {"limit": 256 * MiB}})
        m.add_pid(proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"g")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"ready\n"
        yield Busy(m, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        m.destroy()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.root
def test_frames_from_a_real_cgroup_read_as_the_cli_does(busy: Busy, tmp_path: Path) -> None:
    t1, c1 = time.monotonic(), _cpu_seconds(busy.proc.pid)
    f1 = stats.sample(busy.manager, pid=busy.proc.pid, name="busy", id="b1")
    time.sleep(1.0)
    f2 = stats.sample(busy.manager, pid=busy.proc.pid, name="busy", id="b1", prev=f1)
    t2, c2 = time.monotonic(), _cpu_seconds(busy.proc.pid)
    n = cli_numbers(f2)
    # the CLI's CPU % is the share of one CPU the process had (it scales by online_cpus), whatever the
    # load of this shared machine leaves it: check it against the process's own accounting
    own = (c2 - c1) / (t2 - t1) * 100
    assert n["cpu"] > 20 and abs(n["cpu"] - own) < 15, (n, own)
    assert f2["cpu_stats"]["online_cpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert 64 * MiB <= n["mem"] < 256 * MiB and n["limit"] == 256 * MiB
    assert n["mem_pct"] == pytest.approx(n["mem"] / (256 * MiB) * 100)
    assert n["pids"] == 1
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout.strip()
    if fstype not in ("tmpfs", "overlayfs"):
        assert n["blk_write"] >= 8 * MiB, (fstype, f2["blkio_stats"])
    assert "lo" not in f2.get("networks", {})
    json.dumps(f2)
    # without a limit the host's RAM is the limit (moby caps the kernel's huge number)
    busy.manager.apply({"memory": {"limit": -1}})
    assert stats.sample(busy.manager, pid=None, name="busy", id="b1")["memory_stats"]["limit"] == \
        stats.machine_memory()


NETNS_CHILD = r"""
import socket, subprocess, sys, time
for cmd in (["ip", "link", "add", "bv0", "type", "veth", "peer", "name", "bv1"],
            ["ip", "addr", "add", "10.77.0.1/24", "dev", "bv0"], ["ip", "link", "set", "bv0", "up"],
            ["ip", "link", "set", "bv1", "up"], ["ip", "link", "set", "lo", "up"],
            ["ip", "neigh", "add", "10.77.0.2", "lladdr", "02:00:00:00:00:02", "dev", "bv0"]):
    subprocess.run(cmd, check=True)
for _ in range(200):                           # packets sent before the carrier is up are dropped
    if "LOWER_UP" in subprocess.run(["ip", "-o", "link", "show", "bv0"], capture_output=True, text=True).stdout:
        break
    time.sleep(0.01)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(b"x" * 1000, ("10.77.0.2", 9))   # out of bv0 (a known neighbour), into its peer bv1
s.sendto(b"y" * 10, ("127.0.0.1", 9))
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.root
def test_network_counters_come_from_the_process_netns() -> None:
    proc = subprocess.Popen(["unshare", "--net", sys.executable, "-c", NETNS_CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        net = stats.network_stats(proc.pid)
        assert sorted(net) == ["bv0", "bv1"]  # its own namespace's devices, loopback left out
        assert net["bv0"]["tx_packets"] >= 5 and net["bv0"]["tx_bytes"] >= 5 * 1000
        assert net["bv1"]["rx_packets"] >= 5 and net["bv1"]["rx_bytes"] >= 5 * 1000
        assert set(net["bv0"]) == {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets",
                                   "tx_errors", "tx_dropped"}
    finally:
        proc.kill()
        proc.wait()
    assert stats.network_stats(proc.pid) == {}  # gone


# -- the real CLI --------------------------------------------------------------------------------


class StatsContainers(ContainersFake):
    """Stats as the daemon will serve them: sampled from a real cgroup, the first frame skipped for
    stream=0 so that precpu_stats is filled (moby daemon/stats.go)."""

    def __init__(self, d: FakeDaemon, busy: Busy) -> None:
        super().__init__(d)
        self.busy = busy
        self.sent: list[dict[str, Any]] = []

    async def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        import asyncio

        c = self.d.get(ref)
        prev = None
        for i in range(3 if stream else 2):
            f = stats.sample(self.busy.manager, pid=self.busy.proc.pid, name=c.name, id=c.id, prev=prev)
            prev = f
            if stream or i == 1:
                self.sent.append(f)
                yield f
            await asyncio.sleep(0.5)


@pytest.mark.root
@pytest.mark.skipif(not os.path.exists(DOCKER), reason=f"{DOCKER} is not installed")
def test_docker_stats_prints_what_the_frames_say(busy: Busy, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    e = Engine(str(tmp_path / "berth.sock"), home)
    backend = StatsContainers(e.daemon, busy)
    e.api = EngineAPI(dataclasses.replace(e.daemon.backends(), containers=backend))
    e.start()
    try:
        assert e.docker("create", "--name", "c1", "busybox", "true").returncode == 0
        r = e.docker("stats", "--no-stream", "--format", "{{json .}}", "c1")
        assert r.returncode == 0, r.stderr.decode()
        shown = json.loads(r.stdout)
        [frame] = backend.sent
        n = cli_numbers(frame)
        assert shown["Name"] == "c1" and shown["ID"] == frame["id"][:12]
        assert shown["CPUPerc"] == f"{n['cpu']:.2f}%" and n["cpu"] > 20
        assert shown["MemUsage"] == f"{bytes_size(n['mem'])} / {bytes_size(n['limit'])}"
        assert shown["MemUsage"].endswith(" / 256MiB")
        assert shown["MemPerc"] == f"{n['mem_pct']:.2f}%"
        assert shown["PIDs"] == "1"
        assert shown["BlockIO"] == f"{human_size(n['blk_read'], 3)} / {human_size(n['blk_write'], 3)}"
        assert shown["NetIO"] == f"{human_size(n['net_rx'], 3)} / {human_size(n['net_tx'], 3)}"
        r = e.docker("stats", "--no-stream", "c1")  # the table, as people see it
        header, row = r.stdout.decode().splitlines()
        assert header.split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                  "NET", "I/O", "BLOCK", "I/O", "PIDS"]
        assert row.split()[1] == "c1" and row.split()[-1] == "1"
    finally:
        e.stop()
