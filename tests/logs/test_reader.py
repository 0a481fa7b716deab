"""Reading: tail (backwards, across rotated and compressed files), since/until with moby's rules,
torn lines, and consistent snapshots while another process rotates the log."""

from __future__ import annotations

import gzip
import os
import pathlib
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from berth.errors import InvalidArgument
from berth.logs import JSONFileWriter, scan
from berth.logs.jsonline import encode, escape
from berth.logs.reader import LogReader, read_all

T0 = 1_700_000_000_000_000_000
S0 = T0 // 10**9  # T0 in seconds


def make_log(path: str, n: int, **opts) -> None:
    """n entries "line i\\n" at T0 + i seconds, stdout for even i and stderr for odd i."""
    w = JSONFileWriter(path, **opts)
    for i in range(n):
        w.write("stderr" if i % 2 else "stdout", b"line %d\n" % i, time_ns=T0 + i * 10**9)
    w.close()


def numbers(entries) -> list[int]:
    return [int(d.split()[1]) for _, d, _ in entries]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\n\n", b"xyz\n"]), max_size=60), st.integers(0, 30),
       st.integers(1, 8))
def test_tail_start_matches_a_naive_split(tmp_path_factory, parts, n, block) -> None:
    data = b"".join(parts)
    path = tmp_path_factory.mktemp("t") / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    old, scan.BLOCK = scan.BLOCK, block  # tiny blocks so that lines straddle them
    try:
        start, stop, found = scan.tail_start(fd, len(data), n)
    finally:
        scan.BLOCK = old
        os.close(fd)
    complete = data[:data.rfind(b"\n") + 1]
    lines = complete.splitlines(keepends=True)
    want = lines[max(0, len(lines) - n):] if n else []
    assert data[start:stop] == b"".join(want) and found == len(want) and stop == len(complete)


def test_lines_skips_an_incomplete_last_line(tmp_path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"a\nbb\ncc")
    fd = os.open(p, os.O_RDONLY)
    assert list(scan.lines(fd, 0)) == [(b"a", 2), (b"bb", 5)]
    assert list(scan.lines(fd, 2, 5)) == [(b"bb", 5)]
    os.close(fd)


@pytest.mark.parametrize("compress", [False, True])
def test_read_and_tail_across_rotated_files(tmp_path, compress) -> None:
    p = str(tmp_path / "c.log")
    make_log(p, 100, max_size=1000, max_file=5, compress=compress)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 5 and names[0] == "c.log" and all(n.endswith(".gz") == compress for n in names[1:])
    everything = read_all(p)
    first = numbers(everything)[0]
    assert numbers(everything) == list(range(first, 100)) and first > 0  # the oldest were rotated out
    assert [s for s, _, _ in everything] == [2 if i % 2 else 1 for i in range(first, 100)]
    assert [t for _, _, t in everything] == [T0 + i * 10**9 for i in range(first, 100)]
    kept = 100 - first
    for tail in (1, 5, 14, 15, 16, 40, kept - 1, kept, kept + 1, 10**6):  # within, at and across file bounds
        assert numbers(read_all(p, tail=tail)) == list(range(max(first, 100 - tail), 100)), tail
    assert read_all(p, tail=0) == []
    assert read_all(p, tail=-1) == everything


def test_tail_counts_both_streams_before_choosing_one(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    make_log(p, 10)
    assert numbers(read_all(p, tail=4, stderr=False)) == [6, 8]  # as dockerd: tail first, then the stream
    assert numbers(read_all(p, stdout=False)) == [1, 3, 5, 7, 9]
    with pytest.raises(InvalidArgument, match="You must choose at least one stream"):
        read_all(p, stdout=False, stderr=False)


def test_since_and_until_follow_moby(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    for i, t in enumerate([0, 1, 2, 3, 1, 4, 5, 2, 6]):  # times need not be monotonic
        w.write("stdout", b"line %d\n" % i, time_ns=T0 + t * 10**9)
    w.close()
    # since: skip until the first entry at or after it, then keep all (the later 1 stays)
    assert numbers(read_all(p, since=S0 + 2)) == [2, 3, 4, 5, 6, 7, 8]
    # until: the first entry after it ends the read (the later 2 is not reached)
    assert numbers(read_all(p, until=S0 + 3)) == [0, 1, 2, 3, 4]
    assert numbers(read_all(p, since=S0 + 1, until=S0 + 4)) == [1, 2, 3, 4, 5]
    assert numbers(read_all(p, since=S0 + 0.5, until=S0 + 0.9)) == []
    assert numbers(read_all(p, tail=3, since=S0 + 5)) == [6, 7, 8]  # tail first, then since
    assert numbers(read_all(p, since=S0 + 1.000001)) == [2, 3, 4, 5, 6, 7, 8]  # a float's decimals count


def test_since_skips_compressed_files_by_their_header(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    make_log(p, 30, max_size=300, max_file=3, compress=True)
    # Rewrite .2.gz with a header claiming an old lastTime: a reader asked for `since` must not open it,
    # which is what lets dockerd answer `--since` without inflating old files.
    body = gzip.decompress(pathlib.Path(p + ".2.gz").read_bytes())
    os.unlink(p + ".2.gz")
    os.rename(p + ".1.gz", p + ".1")
    from berth.logs.gzfile import compress_file
    (tmp_path / "old").write_bytes(body)
    compress_file(str(tmp_path / "old"), p + ".2.gz", T0)
    compress_file(p + ".1", p + ".1.gz", T0 + 29 * 10**9)
    first_kept = numbers(read_all(p))[0]
    later = numbers(read_all(p, since=S0 + 1))
    assert first_kept not in later and later[-1] == 29 and len(later) < len(read_all(p))


def test_torn_and_foreign_lines_are_skipped(tmp_path) -> None:
    p = tmp_path / "c.log"
    good = [encode(b"stdout", escape(b"line %d" % i) + b"\\n", T0) for i in range(3)]
    p.write_bytes(good[0] + b'{"log":"torn\n' + good[1] + b"garbage\n" + good[2] + b'{"log":"half wri')
    assert numbers(read_all(str(p))) == [0, 1, 2]
    assert numbers(read_all(str(p), tail=1)) == [2]  # the incomplete last line is not counted


def test_missing_and_empty_logs(tmp_path) -> None:
    assert read_all(str(tmp_path / "never-written.log")) == []
    (tmp_path / "empty.log").write_bytes(b"")
    assert read_all(str(tmp_path / "empty.log"), tail=5) == []


def test_close_releases_every_file(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    make_log(p, 60, max_size=500, max_file=4)
    before = len(os.listdir("/proc/self/fd"))
    r = LogReader(p, tail=3)
    assert numbers(r.snapshot(2)) == [57, 58]  # part way through
    r.close()
    assert r.snapshot() == [] and r.poll() == []
    assert len(os.listdir("/proc/self/fd")) == before


WRITER = """
import sys, time
from berth.logs import JSONFileWriter
path, n, compress = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
w = JSONFileWriter(path, max_size=2000, max_file=4, compress=compress)
for i in range(n):
    w.write("stdout", b"line %d\\n" % i)
    if i % 50 == 0:
        time.sleep(0.001)
w.close()
"""


@pytest.mark.parametrize("compress", [False, True])
def test_snapshots_are_consistent_while_another_process_rotates(tmp_path, compress) -> None:
    p = str(tmp_path / "c.log")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, p, "20000", "1" if compress else "0"])
    reads = 0
    try:
        while not os.path.exists(p):
            time.sleep(0.001)
        while proc.poll() is None:
            got = numbers(read_all(p))
            # never a gap or a repeat, whatever the writer was doing: one run of consecutive lines
            assert got == list(range(got[0], got[0] + len(got))) if got else True
            reads += 1
    finally:
        proc.wait()
    assert proc.returncode == 0 and reads > 10
    got = numbers(read_all(p))
    assert got[-1] == 19999 and got == list(range(got[0], 20000))


def test_a_corrupt_compressed_file_gives_what_it_can(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    make_log(p, 40, max_size=400, max_file=3, compress=True)
    good = numbers(read_all(p))
    with open(p + ".2.gz", "r+b") as f:
        oldest = len(gzip.decompress(f.read()).splitlines())
        f.seek(f.tell() // 2)
        f.write(b"\xff" * 16)  # garbage in the middle of the deflate stream
    got = numbers(read_all(p))  # no error: what inflates of the broken file, then all the others
    assert got[-(len(good) - oldest):] == good[oldest:]
    assert got == sorted(set(got)) and set(got) <= set(good) and len(got) < len(good)


def test_a_listing_that_never_settles_gives_the_current_file_alone(tmp_path, monkeypatch) -> None:
    from berth.logs import files

    p = str(tmp_path / "c.log")
    make_log(p, 30, max_size=300, max_file=3)
    # (a fake for the logic: a writer rotating between every open and every check)
    monkeypatch.setattr(files, "ident", lambda path: (-1, -1))
    rotated, current = files.open_set(p)
    assert rotated == [] and current is not None
    current.close()
    monkeypatch.undo()
    assert numbers(read_all(p))[0] < numbers(read_all(p, tail=3))[0]
