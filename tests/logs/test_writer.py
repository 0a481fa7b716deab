"""The writer on real files: line cutting, partial lines, rotation, compression, failure handling."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from berth.errors import InvalidArgument
from berth.logs import JSONFileWriter
from berth.logs import writer as writer_mod
from berth.logs.gzfile import last_time
from berth.logs.jsonline import encode, escape, parse_time
from berth.logs.options import parse_log_opts
from berth.logs.reader import read_all
from berth.logs.writer import PARTIAL_SIZE

T0 = 1_700_000_000_000_000_000


def entries(path: str) -> list[dict]:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


def test_lines_are_cut_at_newlines_and_rest_waits(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    w.write("stdout", b"one\ntwo\nthr", time_ns=T0)
    assert [e["log"] for e in entries(p)] == ["one\n", "two\n"]
    w.write("stderr", b"err\n", time_ns=T0 + 1)
    w.write("stdout", b"ee\n\n", time_ns=T0 + 2)  # the line is stamped when it is complete
    w.close()
    assert entries(p)[2:] == [
        {"log": "err\n", "stream": "stderr", "time": "2023-11-14T22:13:20.000000001Z"},
        {"log": "three\n", "stream": "stdout", "time": "2023-11-14T22:13:20.000000002Z"},
        {"log": "\n", "stream": "stdout", "time": "2023-11-14T22:13:20.000000002Z"},
    ]


def test_streams_keep_their_own_partial_line(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    w.write("stdout", b"out-", time_ns=T0)
    w.write("stderr", b"err-", time_ns=T0)
    w.write("stdout", b"end\n", time_ns=T0)
    w.end("stderr", time_ns=T0 + 5)  # stderr hit EOF: its rest is a partial entry, no "\n"
    w.write("stderr", b"ignored? no: a new line\n", time_ns=T0 + 6)
    w.close()
    assert [(e["stream"], e["log"]) for e in entries(p)] == [
        ("stdout", "out-end\n"), ("stderr", "err-"), ("stderr", "ignored? no: a new line\n")]


def test_close_writes_what_is_left_as_partial_entries(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    w.write("stdout", b"prompt> ", time_ns=T0)
    assert entries(p) == []  # moby holds a line back until its newline, 16 KiB, or EOF
    w.close()
    w.close()  # idempotent
    [e] = entries(p)
    assert (e["log"], e["stream"]) == ("prompt> ", "stdout")  # stamped at EOF, as moby's copier does
    assert abs(parse_time(e["time"]) - time.time_ns()) < 10**10
    with pytest.raises(ValueError):
        w.write("stdout", b"x\n")


def test_long_lines_are_written_in_16k_pieces_with_the_first_piece_time(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    line = bytes(range(97, 123)) * 1600  # 41,600 bytes, no newline
    w.write("stdout", line[:20000], time_ns=T0)  # one 16 KiB piece goes out now
    got = entries(p)
    assert [len(e["log"]) for e in got] == [PARTIAL_SIZE] and got[0]["time"] == "2023-11-14T22:13:20Z"
    w.write("stdout", line[20000:] + b"\n" + b"x" * PARTIAL_SIZE + b"\nshort\n", time_ns=T0 + 7)
    w.close()
    got = entries(p)
    assert [len(e["log"]) for e in got] == [PARTIAL_SIZE, PARTIAL_SIZE, 41600 - 2 * PARTIAL_SIZE + 1,
                                            PARTIAL_SIZE, 1, 6]
    assert "".join(e["log"] for e in got[:3]).encode() == line + b"\n"
    assert not got[0]["log"].endswith("\n") and not got[1]["log"].endswith("\n")
    # every piece of a line carries its first piece's time; a line of exactly 16 KiB is a piece and a "\n"
    assert [e["time"] for e in got] == ["2023-11-14T22:13:20Z"] * 3 + ["2023-11-14T22:13:20.000000007Z"] * 3
    assert got[4]["log"] == "\n"


def test_one_write_syscall_per_call(tmp_path, monkeypatch) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    calls = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append(len(data)) or real(fd, data))
    w.write("stdout", b"".join(b"line %d\n" % i for i in range(500)), time_ns=T0)
    assert len(calls) == 1 and calls[0] == os.path.getsize(p)
    w.close()


def test_appends_to_an_existing_log_and_counts_its_size(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p)
    w.write("stdout", b"first run\n", time_ns=T0)
    w.close()
    size = os.path.getsize(p)
    w = JSONFileWriter(p, max_size=size, max_file=2)  # already full: the first entry rotates
    w.write("stdout", b"second run\n", time_ns=T0 + 1)
    w.close()
    assert [e["log"] for e in entries(p + ".1")] == ["first run\n"]
    assert [e["log"] for e in entries(p)] == ["second run\n"]
    assert oct(os.stat(p).st_mode & 0o777) == "0o640"


def test_rotation_keeps_max_file_files_and_rotates_before_the_entry(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=250, max_file=3)
    for i in range(20):  # each entry is 63 bytes: 4 entries reach 250, the 5th opens a new file
        w.write("stdout", b"%02d\n" % i, time_ns=T0)
    w.close()
    assert len(b'{"log":"00\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n') == 63
    assert sorted(os.listdir(tmp_path)) == ["c.log", "c.log.1", "c.log.2"]
    assert [len(entries(p + s)) for s in (".2", ".1", "")] == [4, 4, 4]
    assert all(os.path.getsize(p + s) == 4 * 63 for s in (".2", ".1"))  # max-size is a threshold
    assert [e[1] for e in read_all(p)] == [b"%02d\n" % i for i in range(8, 20)]


@pytest.mark.parametrize(("max_size", "per_file"), [(251, 4), (252, 4), (253, 5)])
@pytest.mark.parametrize("one_call", [False, True])
def test_rotation_threshold_is_exact(tmp_path, max_size, per_file, one_call) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=max_size, max_file=10)
    lines = [b"%02d\n" % i for i in range(20)]  # 63-byte entries: 4 make 252
    for chunk in [b"".join(lines)] if one_call else lines:
        w.write("stdout", chunk, time_ns=T0)
    w.close()
    counts = [len(entries(p + s)) for s in sorted((n[5:] for n in os.listdir(tmp_path)), reverse=True)]
    assert counts[:-1] == [per_file] * (20 // per_file - (20 % per_file == 0)) and sum(counts) == 20


def test_max_file_one_truncates_by_replacing_the_file(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=100)
    held = os.open(p, os.O_RDONLY)  # a reader holding the old file still reads all of it
    for i in range(3):
        w.write("stdout", b"%d\n" % i, time_ns=T0)
    w.close()
    assert os.listdir(tmp_path) == ["c.log"]
    assert [e["log"] for e in entries(p)] == ["2\n"]
    assert os.read(held, 1000).count(b"\n") == 2
    os.close(held)


def test_compress_gzips_rotated_files_with_moby_header(tmp_path) -> None:
    p = str(tmp_path / "c.log")
    w = JSONFileWriter(p, max_size=200, max_file=4, compress=True)
    for i in range(16):  # 2 or 3 entries a file: the oldest ones are gone
        w.write("stderr" if i % 2 else "stdout", b"entry %02d \xff\n" % i, time_ns=T0 + i * 1_000_000)
    w.close()
    assert sorted(os.listdir(tmp_path)) == ["c.log", "c.log.1.gz", "c.log.2.gz", "c.log.3.gz"]
    for n in (1, 2, 3):
        with gzip.open(f"{p}.{n}.gz", "rb") as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        with open(f"{p}.{n}.gz", "rb") as f:
            head = f.read(200)
        assert head[3] & 0x04  # FEXTRA
        xlen = int.from_bytes(head[10:12], "little")
        assert json.loads(head[12:12 + xlen]) == {"lastTime": lines[-1]["time"]}
    r = subprocess.run(["gzip", "-t", f"{p}.3.gz"], capture_output=True)
    assert r.returncode == 0, r.stderr
    kept = sum(len(gzip.decompress((tmp_path / f"c.log.{n}.gz").read_bytes()).splitlines())
               for n in (1, 2, 3)) + len(entries(p))
    assert 9 <= kept < 16
    got = read_all(p)  # the newest `kept` entries, in order, from the compressed files and the current one
    assert [d for _, d, _ in got] == [b"entry %02d \xef\xbf\xbd\n" % i for i in range(16 - kept, 16)]
    assert [s for s, _, _ in got] == [2 if i % 2 else 1 for i in range(16 - kept, 16)]
    assert [t for _, _, t in got] == [T0 + i * 1_000_000 for i in range(16 - kept, 16)]


def test_a_full_disk_drops_entries_instead_of_raising(tmp_path) -> None:
    w = JSONFileWriter("/dev/full")
    w.write("stdout", b"a\nb\n", time_ns=T0)
    w.write("stdout", b"c\n", time_ns=T0)
    assert w.dropped == 3 and w.last_error is not None and w.last_error.errno == 28
    w.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_size": 0}, "max-size must be a positive number"),
    ({"max_file": 0}, "max-file cannot be less than 1"),
    ({"max_size": 10, "compress": True}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ({"max_file": 3, "compress": True}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
])
def test_options_are_checked_as_docker_does(tmp_path, kwargs, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        JSONFileWriter(str(tmp_path / "c.log"), **kwargs)
    assert not os.path.exists(tmp_path / "c.log")


@pytest.mark.parametrize(("opts", "expected"), [
    (None, {"max_size": None, "max_file": 1, "compress": False}),
    ({"max-size": "10m", "max-file": "3", "compress": "true"},
     {"max_size": 10_000_000, "max_file": 3, "compress": True}),
    ({"max-size": "1.5k"}, {"max_size": 1500, "max_file": 1, "compress": False}),
    ({"max-size": "2MiB", "labels": "a", "tag": "{{.Name}}", "mode": "blocking"},
     {"max_size": 2_000_000, "max_file": 1, "compress": False}),  # go-units: SI even for "MiB"
    ({"max-size": "100"}, {"max_size": 100, "max_file": 1, "compress": False}),
])
def test_log_opts(opts, expected) -> None:
    assert parse_log_opts(opts) == expected


@pytest.mark.parametrize(("opts", "message"), [
    ({"max-size": "10x"}, "invalid suffix: 'x'"),
    ({"max-size": "k"}, "invalid size: 'k'"),
    ({"max-size": "0"}, "max-size must be a positive number"),
    ({"max-file": "three"}, 'strconv.Atoi: parsing "three": invalid syntax'),
    ({"compress": "yes"}, 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ({"compress": "true", "max-size": "1k"}, "compress cannot be true"),
    ({"max-age": "1d"}, "unknown log opt 'max-age' for json-file log driver"),
])
def test_bad_log_opts(opts, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_log_opts(opts)


def test_the_writer_does_not_import_asyncio() -> None:
    code = ("import sys, berth.logs; "
            "print(sorted(m for m in ('asyncio', 'threading', 'ctypes', 'concurrent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def model(chunks: list[tuple[str, bytes, int]], piece: int, end_ns: int) -> list[bytes]:
    """moby's copier, written out plainly: the entry lines a sequence of reads should give."""
    out: list[bytes] = []
    state = {"stdout": [b"", None], "stderr": [b"", None]}
    for stream, data, ns in [*chunks, ("stdout", b"", end_ns), ("stderr", b"", end_ns)]:
        st = state[stream]
        st[0] += data
        while True:
            i = st[0].find(b"\n")
            if 0 <= i < piece:  # a newline within the buffer's first `piece` bytes: a line
                out.append(encode(stream.encode(), escape(st[0][:i]) + b"\\n", st[1] or ns))
                st[0], st[1] = st[0][i + 1:], None
            elif len(st[0]) >= piece:  # a full buffer without one: a piece, stamped like the first piece
                st[1] = st[1] or ns
                out.append(encode(stream.encode(), escape(st[0][:piece]), st[1]))
                st[0] = st[0][piece:]
            else:
                break
    for stream in ("stdout", "stderr"):  # EOF: what is left is a last piece
        st = state[stream]
        if st[0]:
            out.append(encode(stream.encode(), escape(st[0]), st[1] or end_ns))
    return out


# mostly plain text (the writer's fast path), now and then something to escape (its general path)
PARTS = [b"a"] * 8 + [b"bc"] * 4 + [b"\n"] * 5 + [b"0123456", b"<", b"\xff", b"\t", "é".encode()]
CHUNK = st.lists(st.sampled_from(PARTS), max_size=20).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), CHUNK), max_size=25),
       max_size=st.sampled_from([None, 60, 200]))
def test_writer_matches_a_plain_model_of_mobys_copier(tmp_path_factory, chunks, max_size) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer_mod, "PARTIAL_SIZE", 8)  # small pieces so that they happen
        check_against_model(tmp_path_factory.mktemp("w"), chunks, max_size)


def check_against_model(d, chunks, max_size) -> None:
    p = str(d / "c.log")
    w = JSONFileWriter(p, max_size=max_size, max_file=1000)
    timed = [(s, data, T0 + i) for i, (s, data) in enumerate(chunks)]
    for s, data, ns in timed:
        w.write(s, data, time_ns=ns)
    w.end("stdout", time_ns=T0 + 999)
    w.end("stderr", time_ns=T0 + 999)
    w.close()
    want = model(timed, 8, T0 + 999)
    files = sorted(os.listdir(d), key=lambda n: -int(n.rsplit(".", 1)[1]) if n != "c.log" else 0)
    got = b"".join((d / n).read_bytes() for n in files)
    assert got == b"".join(want)
    if max_size:  # a file is rotated out once it reaches max_size, and not one entry earlier
        for n in files[:-1]:
            data = (d / n).read_bytes()
            last = data[:-1].rfind(b"\n") + 1
            assert last < max_size <= len(data)


@pytest.mark.parametrize(("cut", "compress"), [
    *((cut, compress) for cut in ("after-first-rename", "mid-shift", "shifted") for compress in (False, True)),
    ("before-compress", True),
])
def test_a_new_writer_finishes_a_rotation_a_killed_one_left(tmp_path, compress, cut) -> None:
    p = str(tmp_path / "c.log")
    ext = ".gz" if compress else ""
    w = JSONFileWriter(p, max_size=120, max_file=4, compress=compress)
    for i in range(8):  # 2 entries a file: .3 .2 .1 and the current file hold 0-1, 2-3, 4-5, 6-7
        w.write("stdout", b"entry %d\n" % i, time_ns=T0 + i * 10**9)
    w.close()
    assert numbers_of(read_all(p)) == list(range(8))
    # The state a writer killed during its next rotation leaves behind:
    if cut == "before-compress":
        os.unlink(f"{p}.3.gz")
        os.rename(f"{p}.2.gz", f"{p}.3.gz")
        os.rename(f"{p}.1.gz", f"{p}.2.gz")
        os.rename(p, p + ".1")
    else:
        os.rename(p, p + ".rotating")
        if cut in ("mid-shift", "shifted"):
            os.unlink(f"{p}.3{ext}")
            os.rename(f"{p}.2{ext}", f"{p}.3{ext}")
        if cut == "shifted":
            os.rename(f"{p}.1{ext}", f"{p}.2{ext}")
    JSONFileWriter(p, max_size=120, max_file=4, compress=compress).close()
    assert not os.path.exists(p + ".rotating")
    assert sorted(os.listdir(tmp_path)) == ["c.log", *(f"c.log.{i}{ext}" for i in (1, 2, 3))]
    assert numbers_of(read_all(p)) == list(range(2, 8))  # only the oldest file went, as in a whole rotation
    if compress:
        with open(f"{p}.1.gz", "rb") as f:
            assert last_time(f.fileno()) == T0 + 7 * 10**9


def numbers_of(entries) -> list[int]:
    return [int(d.split()[1]) for _, d, _ in entries]
