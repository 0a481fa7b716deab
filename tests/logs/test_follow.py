"""Following: another process writes (and rotates) while berthd-style async readers follow; they get
every entry once, in order, and end when the writer stops (or at `until`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from berth.logs import JSONFileWriter
from berth.logs.reader import LogReader
from berth.logs.stream import read_logs
from berth.logs.watch import DirWatch

T0 = 1_700_000_000_000_000_000

WRITER = """
import sys, time
from berth.logs import JSONFileWriter
path, n, max_size, max_file, compress, every, pause = sys.argv[1:]
w = JSONFileWriter(path, max_size=int(max_size) or None, max_file=int(max_file), compress=compress == "1")
for i in range(int(n)):
    w.write("stderr" if i % 3 == 0 else "stdout", b"line %d\\n" % i)
    if i % int(every) == 0:
        time.sleep(float(pause))
w.close()
"""


def start_writer(path: str, n: int, max_size: int = 0, max_file: int = 1, compress: bool = False,
                 every: int = 20, pause: float = 0.002) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, path, str(n), str(max_size), str(max_file),
                             "1" if compress else "0", str(every), str(pause)])


async def collect(path: str, **kw) -> list[tuple[int, bytes, int]]:
    return [e async for e in read_logs(path, **kw)]


def numbers(entries) -> list[int]:
    return [int(d.split()[1]) for _, d, _ in entries]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ~60-byte entries, 10 every 5 ms: a rotation every ~50 ms at 6000 bytes. A follower that falls more than
# max_file-1 rotations behind loses files, as with dockerd; with max_file=1 it must reopen the new file
# before the writer replaces that one too, so that case gets a wide margin (a rotation every ~160 ms).
@pytest.mark.parametrize(("max_size", "max_file", "compress"), [(0, 1, False), (6000, 3, False), (6000, 3, True),
                                                                (20000, 1, False)])
def test_follow_while_another_process_writes_and_rotates(tmp_path, max_size, max_file, compress) -> None:
    p = str(tmp_path / "c.log")
    proc = start_writer(p, 2000, max_size, max_file, compress, every=10, pause=0.005)

    async def main() -> list[tuple[int, bytes, int]]:
        while not os.path.exists(p):
            await asyncio.sleep(0.001)
        got = await collect(p, follow=True, is_running=lambda: proc.poll() is None)
        return got

    got = asyncio.run(main())
    assert proc.wait() == 0
    assert numbers(got) == list(range(2000))  # every entry once, in order, across every rotation
    assert [s for s, _, _ in got] == [2 if i % 3 == 0 else 1 for i in range(2000)]
    if max_size:
        assert len(os.listdir(tmp_path)) == max_file


def test_follow_ends_soon_after_the_container_stops(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    w.write("stdout", b"before\n")
    state = {"running": True}

    async def main() -> tuple[list[bytes], float]:
        got: list[bytes] = []
        stopped = 0.0

        async def stop_later() -> None:
            nonlocal stopped
            await asyncio.sleep(1.5)  # long enough for the follower's tick to back off to its slowest
            w.write("stdout", b"last words\n")
            w.close()  # the monitor closes the log, then the daemon learns of the exit
            state["running"] = False
            stopped = time.monotonic()

        task = asyncio.create_task(stop_later())
        async for _, data, _ in read_logs(p, follow=True, is_running=lambda: state["running"]):
            got.append(data)
        await task
        return got, time.monotonic() - stopped

    got, lag = asyncio.run(main())
    assert got == [b"before\n", b"last words\n"]
    assert lag < 0.6  # at worst one slow tick (0.5 s); usually ~20 ms, the close having woken it


def test_follow_with_tail_0_gets_only_new_entries(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    for i in range(5):
        w.write("stdout", b"old %d\n" % i)
    w.write("stdout", b"half")  # not logged yet: the line has no newline
    state = {"running": True}

    async def main() -> list[bytes]:
        async def more() -> None:
            await asyncio.sleep(0.2)
            w.write("stdout", b" and the rest\nnew\n")
            w.close()
            state["running"] = False

        task = asyncio.create_task(more())
        got = [d for _, d, _ in await collect(p, tail=0, follow=True, is_running=lambda: state["running"])]
        await task
        return got

    assert asyncio.run(main()) == [b"half and the rest\n", b"new\n"]


def test_follow_waits_for_a_torn_line_to_be_completed(tmp_path) -> None:
    p = tmp_path / "c.log"
    line = b'{"log":"whole\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n'
    p.write_bytes(line[:20])  # a writer caught half-way through its write
    state = {"running": True}

    async def main() -> list[bytes]:
        async def finish() -> None:
            await asyncio.sleep(0.2)
            with open(p, "ab") as f:
                f.write(line[20:])
            state["running"] = False

        task = asyncio.create_task(finish())
        got = [d for _, d, _ in await collect(str(p), follow=True, is_running=lambda: state["running"])]
        await task
        return got

    assert asyncio.run(main()) == [b"whole\n"]


def test_follow_until_ends_while_the_writer_goes_on(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    proc = start_writer(p, 100000, every=1, pause=0.01)  # ~100 lines a second for a long while
    try:
        async def main() -> list[tuple[int, bytes, int]]:
            while not os.path.exists(p):
                await asyncio.sleep(0.001)
            until = time.time() + 0.5
            got = await asyncio.wait_for(collect(p, follow=True, until=until, is_running=lambda: True), 5)
            assert time.time() - until < 1.0
            assert all(t <= until * 1e9 + 1 for _, _, t in got)
            return got

        got = asyncio.run(main())
        assert numbers(got) == list(range(len(got))) and len(got) > 5
    finally:
        proc.kill()
        proc.wait()


def test_follow_a_log_that_does_not_exist_yet(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    proc: list[subprocess.Popen] = []

    async def main() -> list[tuple[int, bytes, int]]:
        async def start() -> None:
            await asyncio.sleep(0.2)
            proc.append(start_writer(p, 50))

        def running() -> bool:
            return not proc or proc[0].poll() is None

        task = asyncio.create_task(start())
        got = await collect(p, follow=True, is_running=running)
        await task
        return got

    got = asyncio.run(main())
    assert proc[0].wait() == 0 and numbers(got) == list(range(50))


def test_a_slow_follower_reads_the_files_it_missed(tmp_path) -> None:
    for compress in (False, True):
        p = str(tmp_path / f"c{compress:d}.log")
        w = JSONFileWriter(p, max_size=500, max_file=6, compress=compress)

        def write(lo: int, hi: int, w: JSONFileWriter = w) -> None:
            for i in range(lo, hi):
                w.write("stdout", b"line %d\n" % i, time_ns=T0 + i)

        write(0, 10)
        r = LogReader(p)
        assert numbers(r.snapshot()) == list(range(10))
        write(10, 40)  # four rotations while the follower looks away
        assert numbers(r.poll(limit=7)) == list(range(10, 17))  # batches are bounded
        assert numbers(r.poll()) == list(range(17, 40))
        assert r.poll() == []
        write(40, 200)  # now more rotations than files kept: what was deleted is lost, as with dockerd
        got = numbers(r.poll())
        assert got[-1] == 199 and got == sorted(set(got)) and got[0] >= 40
        w.close()
        r.close()


def test_cancelling_a_follower_releases_its_files(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=300, max_file=3)
    for i in range(20):
        w.write("stdout", b"line %d\n" % i)
    before = fds()

    async def main() -> None:
        gen = read_logs(p, follow=True, is_running=lambda: True)
        first = await anext(gen)
        assert first[1].startswith(b"line ")
        task = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0)
        await gen.aclose()

    for _ in range(3):
        asyncio.run(main())  # asyncio.run waits for the executor, so close() has run
    w.close()
    assert fds() == before - 1  # the writer's fd is the only difference


def test_many_followers_share_one_inotify_instance(tmp_path) -> None:
    # More followers than the kernel's default of 128 inotify instances per user.
    logs = [str(tmp_path / f"c{i % 10}" / "c.log") for i in range(200)]
    writers = {}
    for p in set(logs):
        os.mkdir(os.path.dirname(p))
        writers[p] = JSONFileWriter(p)
    state = {"running": True}

    def inotify_fds() -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
            except OSError:
                pass
        return n

    async def main() -> list[list[bytes]]:
        tasks = [asyncio.create_task(collect(p, follow=True, is_running=lambda: state["running"])) for p in logs]
        await asyncio.sleep(0.3)
        assert inotify_fds() == 1
        for p, w in writers.items():
            w.write("stdout", f"hello {p}\n".encode())
            w.close()
        await asyncio.sleep(0.3)
        state["running"] = False
        got = await asyncio.gather(*tasks)
        assert inotify_fds() == 0  # the last follower closed it
        return [[d for _, d, _ in g] for g in got]

    got = asyncio.run(main())
    assert got == [[f"hello {p}\n".encode()] for p in logs]


def test_dir_watch_wakes_on_a_write_from_another_process(tmp_path) -> None:
    p = tmp_path / "c.log"
    p.write_bytes(b"")

    async def main() -> tuple[bool, bool, float]:
        watch = DirWatch(str(tmp_path))
        assert not watch.polling
        quiet = await watch.wait(0.05)
        t = time.monotonic()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", f"open({str(p)!r}, 'ab').write(b'x')")
        woke = await watch.wait(10)
        lag = time.monotonic() - t
        await proc.wait()
        watch.close()
        missing = DirWatch(str(tmp_path / "no-such-dir"))  # inotify cannot watch it: poll instead
        assert missing.polling and await missing.wait(0.01) is False
        missing.close()
        return quiet, woke, lag

    quiet, woke, lag = asyncio.run(main())
    assert quiet is False and woke is True and lag < 5


def test_follow_on_a_stopped_container_returns_what_is_there(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    for i in range(3):
        w.write("stdout", b"line %d\n" % i)
    w.close()
    t = time.monotonic()
    assert numbers(asyncio.run(collect(p, follow=True, is_running=lambda: False))) == [0, 1, 2]
    assert numbers(asyncio.run(collect(p, follow=True, tail=1, is_running=lambda: False))) == [2]
    assert time.monotonic() - t < 2


def test_following_from_a_killed_writers_half_rotation_repeats_nothing(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=300, max_file=3)
    for i in range(12):
        w.write("stdout", b"line %d\n" % i, time_ns=T0 + i)
    w.close()
    os.rename(p, p + ".rotating")  # killed right after its first rename: no current file for a while
    r = LogReader(p)
    first = numbers(r.snapshot())
    assert first and first[-1] < 11  # what the rotated files hold (the .rotating one is not visible)
    w = JSONFileWriter(p, max_size=300, max_file=3)  # the container starts again; its writer repairs the log
    w.write("stdout", b"line 12\n", time_ns=T0 + 12)
    w.close()
    assert numbers(r.poll()) == list(range(first[-1] + 1, 13))
    r.close()


def test_bad_arguments_raise_before_iteration(tmp_path) -> None:
    from berth.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="You must choose at least one stream"):
        read_logs(str(tmp_path / "c.log"), stdout=False, stderr=False)


def test_rotations_within_one_read_are_told_apart_when_compressed(tmp_path) -> None:
    # One read of the container's output can fill several files: their entries, and so the lastTime of
    # the compressed copies, share one time. Their sizes tell them apart.
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=300, max_file=10, compress=True)
    w.write("stdout", b"first\n", time_ns=T0)
    r = LogReader(p)
    assert [d for _, d, _ in r.snapshot()] == [b"first\n"]
    lines = [b"line %d %s\n" % (i, b"x" * (i * 7 % 13)) for i in range(30)]
    w.write("stdout", b"".join(lines), time_ns=T0 + 1)  # seven rotations in one call, none deleted
    assert sorted(os.listdir(tmp_path))[-1] == "c.log.7.gz"
    assert [d for _, d, _ in r.poll()] == lines
    w.close()
    r.close()
