"""berth's json-file logs against Debian's dockerd (20.10) itself, on a private daemon (its own data root,
exec root, pidfile and socket under tmp_path; `--network none` containers of a `docker import`ed busybox):

- the same container output gives the same log lines, byte for byte but for the times (escaping, invalid
  UTF-8, 16 KiB partial pieces, the partial line at exit), and Docker's times are what we would write;
- berth reads Docker's rotated, compressed logs as `docker logs` does;
- `docker logs` reads berth's rotated, compressed logs as berth does."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from berth.logs import JSONFileWriter
from berth.logs.jsonline import format_time, parse_time
from berth.logs.reader import read_all
from tests.dockerd import Dockerd, available

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("dockerd") is None, reason="docker.io is not installed")]

BUSYBOX = "/work/shared/fixtures/busybox/latest-musl/rootfs.tar.gz"

STDOUT = b"".join([
    b'tab\t <&> "quoted" back\\slash\r\n',
    b"\x00\x01\x1b[31mred\x1b[0m \x7f\n",
    "é ü 日本 😀 \u2028 \u2029 \ufffd\n".encode(),
    b"bad: \xff \xe2\x82A \xed\xa0\x80 \xc0\x80 \xf0\x9f\x98\n",
    b"\n",
    b"x" * 40000 + b"\n",  # pieces of 16384, 16384 and the rest with its "\n"
    b"y" * 16384 + b"\n",  # exactly 16 KiB: a piece, then an entry that is just "\n"
    b"".join(b"line %d\n" % i for i in range(50)),
    b"no newline at exit",
])
STDERR = b"error one\nerror \xfe two\nlast error without newline"

TIME = re.compile(rb'"time":"[^"]*"')


@pytest.fixture
def docker(tmp_path) -> Iterator[tuple[str, str]]:
    """(docker CLI socket, data root) of a private dockerd with busybox imported as bb:1."""
    why = available()
    if why:
        pytest.skip(why)
    d = Dockerd(str(tmp_path / "d"))
    os.makedirs(d.base, exist_ok=True)
    try:
        d.start()
        run(d.sock, "import", BUSYBOX, "bb:1")
        yield d.sock, d.data_root
    finally:
        d.stop()


def run(sock: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run(["/usr/bin/docker", "-H", f"unix://{sock}", *args], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return r


def log_path(sock: str, name: str) -> str:
    return run(sock, "inspect", "-f", "{{.LogPath}}", name).stdout.decode().strip()


def lines_of(path: str, stream: bytes) -> list[bytes]:
    with open(path, "rb") as f:
        return [line for line in f if b'"stream":"%s"' % stream in line]


def test_same_lines_as_dockerd(docker, tmp_path) -> None:
    sock, _ = docker
    data = tmp_path / "data"
    data.mkdir()
    (data / "out").write_bytes(STDOUT)
    (data / "err").write_bytes(STDERR)
    run(sock, "run", "--network", "none", "--name", "c1", "-v", f"{data}:/data:ro", "bb:1",
        "sh", "-c", "cat /data/out; cat /data/err >&2")
    theirs = log_path(sock, "c1")

    ours = str(tmp_path / "ours.log")
    w = JSONFileWriter(ours)
    w.write("stdout", STDOUT)
    w.write("stderr", STDERR)
    w.close()
    for stream in (b"stdout", b"stderr"):
        want = [TIME.sub(b'"time":""', line) for line in lines_of(theirs, stream)]
        got = [TIME.sub(b'"time":""', line) for line in lines_of(ours, stream)]
        assert got == want

    with open(theirs, "rb") as f:
        entries = [json.loads(line) for line in f]
    for e in entries:  # Docker's times are Go's RFC3339Nano: what format_time writes for that instant
        assert format_time(parse_time(e["time"])).decode() == e["time"]
    pieces = [e for e in entries if e["log"].startswith("x")]
    assert [len(e["log"]) for e in pieces] == [16384, 16384, 40000 - 2 * 16384 + 1]
    assert len({e["time"] for e in pieces}) == 1  # Docker too stamps every piece with the first one's time
    # and reading both gives the same data, stream by stream
    for stream in (1, 2):
        assert [d for s, d, _ in read_all(theirs) if s == stream] == [d for s, d, _ in read_all(ours) if s == stream]


def docker_logs(sock: str, name: str, *args: str) -> tuple[bytes, bytes]:
    r = run(sock, "logs", *args, name)
    return r.stdout, r.stderr


def test_berth_reads_dockers_rotated_compressed_logs(docker) -> None:
    sock, _ = docker
    script = ('i=0; while [ $i -lt 300 ]; do echo "line $i"; [ $((i % 7)) = 0 ] && echo "err $i" >&2; '
              'i=$((i+1)); done; printf "%20000s" | tr " " z; echo; printf "tail without newline"')
    run(sock, "run", "--network", "none", "--name", "c2", "--log-opt", "max-size=2k", "--log-opt", "max-file=4",
        "--log-opt", "compress=true", "bb:1", "sh", "-c", script)
    path = log_path(sock, "c2")
    deadline = time.monotonic() + 10
    while os.path.exists(path + ".1") and time.monotonic() < deadline:  # dockerd compresses in the background
        time.sleep(0.05)
    names = sorted(os.listdir(os.path.dirname(path)))
    assert any(n.endswith(".log.3.gz") for n in names)

    out, err = docker_logs(sock, "c2")
    ours = read_all(path)
    assert b"".join(d for s, d, _ in ours if s == 1) == out
    assert b"".join(d for s, d, _ in ours if s == 2) == err
    for n in (1, 3, 10, 25):
        out, err = docker_logs(sock, "c2", "--tail", str(n))
        tail = read_all(path, tail=n)
        assert (b"".join(d for s, d, _ in tail if s == 1), b"".join(d for s, d, _ in tail if s == 2)) == (out, err)


def test_dockerd_reads_berths_rotated_compressed_logs(docker) -> None:
    sock, _ = docker
    run(sock, "run", "--network", "none", "--name", "c3", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
        "--log-opt", "compress=true", "bb:1", "true")
    path = log_path(sock, "c3")
    for name in os.listdir(os.path.dirname(path)):
        if name.startswith(os.path.basename(path)):
            os.unlink(os.path.join(os.path.dirname(path), name))
    t0 = 1_700_000_000_000_000_000
    w = JSONFileWriter(path, max_size=1000, max_file=3, compress=True)
    for i in range(100):
        w.write("stderr" if i % 5 == 0 else "stdout", b"line %d \xff\t<x>\n" % i, time_ns=t0 + i * 1_000_000_007)
    w.write("stdout", b"z" * 20000, time_ns=t0 + 10**12)
    w.close()
    assert os.path.exists(path + ".2.gz")

    ours = read_all(path)
    out, err = docker_logs(sock, "c3")
    assert (out, err) == (b"".join(d for s, d, _ in ours if s == 1), b"".join(d for s, d, _ in ours if s == 2))
    out, _ = docker_logs(sock, "c3", "--tail", "4", "--timestamps")
    # (the API's timestamps are RFC3339Nano with all nine digits: moby's rfc3339NanoFixed)
    fixed = [(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z").encode()
             for _, _, t in read_all(path, tail=4)]
    want = b"".join(ts + b" " + d for ts, (s, d, _) in zip(fixed, read_all(path, tail=4), strict=True) if s == 1)
    assert out == want
