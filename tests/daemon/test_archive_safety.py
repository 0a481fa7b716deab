"""docker cp against a hostile container and a hostile client: nothing outside the container's root
is ever read, written, linked or chmod-ed. A host "sentinel" directory stands for the host: every
attack here names it, so a broken implementation would change it (not /etc), and it must stay
byte-identical. Each test runs with the kernel's RESOLVE_IN_ROOT and with the fallback walk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from berth.daemon import archive
from berth.errors import BerthError, InvalidArgument, NotFound
from tests.daemon.test_archive_env import build, croot, entry, exchange, resolver, sentinel, snapshot

__all__ = ["croot", "resolver", "sentinel"]  # fixtures used here
pytestmark = pytest.mark.root


def _rel_up(target: Path) -> str:
    """A relative link from deep in the container that climbs far above it, then down to `target`."""
    return "../" * 40 + str(target).lstrip("/")


def _hostile_tars(s: Path) -> dict[str, bytes]:
    S = str(s)
    return {
        "dotdot name": build([entry("../../../../../../../.." + S + "/pwned", data=b"x")]),
        "dotdot inside name": build([entry("a/../../" + S.lstrip("/") + "/pwned", data=b"x")]),
        "pax path climbs": build([entry("ok", data=b"x", pax={"path": "../../../../../" + S + "/pwned"})]),
        "long gnu name climbs": _gnu_long("../" * 60 + S.lstrip("/") + "/pwned"),
        "hard link climbs": build([entry("h", tarfile.LNKTYPE, link="../../../../../../.." + S + "/secret")]),
        "absolute hard link": build([entry("h", tarfile.LNKTYPE, link=S + "/secret")]),
        "link to host then write through it": build([entry("evil", tarfile.SYMTYPE, link=S),
                                                     entry("evil/pwned", data=b"x"),
                                                     entry("evil/secret", data=b"overwritten")]),
        "relative link to host then write": build([entry("evil", tarfile.SYMTYPE, link=_rel_up(s)),
                                                   entry("evil/pwned", data=b"x"),
                                                   entry("evil/inner/", tarfile.DIRTYPE, mode=0o777)]),
        "link to / then the host path": build([entry("evil", tarfile.SYMTYPE, link="/"),
                                               entry("evil/" + S.lstrip("/") + "/secret", data=b"overwritten")]),
        "hard link through a link": build([entry("evil", tarfile.SYMTYPE, link=S),
                                           entry("h", tarfile.LNKTYPE, link="evil/secret", mode=0o777)]),
        "chmod through a link": build([entry("evil", tarfile.SYMTYPE, link=S + "/secret"),
                                       entry("h", tarfile.LNKTYPE, link="evil", mode=0o777, uid=4242)]),
        "replace a link to host": build([entry("evil", tarfile.SYMTYPE, link=S + "/secret"),
                                         entry("evil", data=b"overwritten", mode=0o777),
                                         entry("evil2", tarfile.SYMTYPE, link=S),
                                         entry("evil2/", tarfile.DIRTYPE, mode=0o777),
                                         entry("evil3", tarfile.SYMTYPE, link=S + "/secret"),
                                         entry("evil3", tarfile.FIFOTYPE, mode=0o777)]),
        "device through a link": build([entry("evil", tarfile.SYMTYPE, link=S),
                                        entry("evil/null", tarfile.CHRTYPE, dev=(1, 3))]),
    }


def _gnu_long(name: str) -> bytes:
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo(name)
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("case", list(_hostile_tars(Path("/x"))))
def test_hostile_tars_never_leave_the_root(case: str, croot: Path, sentinel: Path, resolver: str) -> None:
    before = snapshot(sentinel)
    data = _hostile_tars(sentinel)[case]
    for dest in ("/tmp", "/data/sub"):
        try:
            archive.put(str(croot), dest, [data])
        except (InvalidArgument, BerthError):
            pass  # refusing is fine; escaping is not
    assert snapshot(sentinel) == before
    assert os.stat(sentinel / "secret").st_nlink == 1  # never hard-linked from inside
    assert not list(Path("/").glob("pwned")) and not (sentinel.parent / "pwned").exists()


def test_hostile_tars_that_must_be_refused(croot: Path, sentinel: Path, resolver: str) -> None:
    tars = _hostile_tars(sentinel)
    for case, msg in (("dotdot name", "invalid entry name"), ("pax path climbs", "invalid entry name"),
                      ("long gnu name climbs", "invalid entry name"), ("hard link climbs", "invalid hardlink target")):
        with pytest.raises(InvalidArgument, match=msg):
            archive.put(str(croot), "/tmp", [tars[case]])
    with pytest.raises(BerthError, match="no such file"):  # re-rooted under the destination, where it isn't
        archive.put(str(croot), "/tmp", [tars["absolute hard link"]])


def test_links_written_by_the_tar_resolve_inside_the_container(croot: Path, sentinel: Path, resolver: str) -> None:
    tars = _hostile_tars(sentinel)
    archive.put(str(croot), "/tmp", [tars["link to host then write through it"]])
    inside = croot / str(sentinel).lstrip("/")
    assert (inside / "pwned").read_bytes() == b"x"  # the same path, but inside the container
    archive.put(str(croot), "/tmp", [tars["link to / then the host path"]])
    assert (inside / "secret").read_bytes() == b"overwritten"
    archive.put(str(croot), "/tmp", [tars["replace a link to host"]])
    assert (croot / "tmp/evil").read_bytes() == b"overwritten" and (croot / "tmp/evil2").is_dir()


def test_container_links_to_the_host_lead_nowhere(croot: Path, sentinel: Path, resolver: str) -> None:
    """The container plants links to host paths: stat, get and put resolve them inside its root."""
    os.symlink(str(sentinel), croot / "hostdir")
    os.symlink(_rel_up(sentinel), croot / "data/hostdir-rel")
    os.symlink(str(sentinel / "secret"), croot / "secret-link")
    before = snapshot(sentinel)
    for path in ("/hostdir/secret", "/data/hostdir-rel/secret", "/secret-link/", "/hostdir/"):
        with pytest.raises(NotFound):
            archive.stat(str(croot), path)
        with pytest.raises(NotFound):
            archive.get(str(croot), path)
    with pytest.raises(NotFound):
        archive.put(str(croot), "/hostdir", [build([entry("pwned", data=b"x")])])
    # the link itself can be archived: as a link, never its target's content
    st, chunks = archive.get(str(croot), "/secret-link")
    data = b"".join(chunks)
    assert st["linkTarget"] == str(sentinel / "secret") and b"HOST-SECRET" not in data
    st, chunks = archive.get(str(croot), "/")
    assert b"HOST-SECRET" not in b"".join(chunks)
    # replacing a directory removes it without following the links inside it
    victim = croot / "tmp/victim"
    (victim / "sub/deeper").mkdir(parents=True)
    os.symlink(str(sentinel), victim / "abs")
    os.symlink(_rel_up(sentinel), victim / "sub/rel")
    archive.put(str(croot), "/tmp", [build([entry("victim", data=b"a file now")])])
    assert (croot / "tmp/victim").read_bytes() == b"a file now"
    assert snapshot(sentinel) == before


def _race(swap: Callable[[], None], work: Callable[[], None], seconds: float) -> int:
    """Run `swap` in a tight loop in a thread while `work` runs repeatedly; returns work's rounds."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                swap()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=loop)
    t.start()
    rounds = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            work()
            rounds += 1
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    return rounds


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_cve_2018_15664_swap_loop_racing_put_and_get(croot: Path, sentinel: Path, resolver: str, link: str) -> None:
    """The container swaps a directory on the copy's path with a link to the host, over and over
    (renameat2 RENAME_EXCHANGE, as the published exploit), while the daemon copies in and out."""
    w = croot / "w"
    (w / "sub").mkdir(parents=True)
    (w / "secret").write_bytes(b"container's own secret")
    swap_link = croot / "w-swap"
    os.symlink(str(sentinel) if link == "absolute" else _rel_up(sentinel), swap_link)
    before = snapshot(sentinel)
    tar_in = build([entry("pwned", data=b"x"), entry("sub/pwned", data=b"y"), entry("secret", data=b"new secret")])
    outcomes = {"put ok": 0, "put refused": 0, "get ok": 0, "get refused": 0}

    def work() -> None:
        for dest in ("/w", "/w/sub"):
            try:
                archive.put(str(croot), dest, [tar_in])
                outcomes["put ok"] += 1
            except (NotFound, InvalidArgument, BerthError):
                outcomes["put refused"] += 1
        try:
            _, chunks = archive.get(str(croot), "/w/secret")
            data = b"".join(chunks)
            assert b"HOST-SECRET" not in data
            outcomes["get ok"] += 1
        except NotFound:
            outcomes["get refused"] += 1

    rounds = _race(lambda: exchange(str(w), str(swap_link)), work, 1.0)
    assert snapshot(sentinel) == before
    assert rounds > 20 and outcomes["put ok"] and outcomes["get ok"], outcomes


def test_swapped_in_fifos_are_never_opened(croot: Path, resolver: str) -> None:
    """A regular file swapped for a fifo between listing and reading: the archive must not block."""
    d = croot / "data/race"
    d.mkdir()
    (d / "f").write_bytes(b"regular")
    os.mkfifo(croot / "data/f-fifo")
    done: list[int] = []

    def work() -> None:
        result: list[bytes] = []
        t = threading.Thread(target=lambda: result.append(b"".join(archive.get(str(croot), "/data")[1])), daemon=True)
        t.start()
        t.join(5)
        assert not t.is_alive(), "get blocked on a fifo"
        done.append(len(result[0]))

    _race(lambda: exchange(str(d / "f"), str(croot / "data/f-fifo")), work, 1.0)
    assert done


def test_container_passwd_is_parsed_safely(croot: Path, sentinel: Path, resolver: str) -> None:
    data = build([entry("f", data=b"x")])
    (sentinel / "passwd").write_text("hostonly:x:4242:4242::/:/bin/sh\n")
    os.unlink(croot / "etc/passwd")
    os.symlink(str(sentinel / "passwd"), croot / "etc/passwd")  # a link to the host's file
    with pytest.raises(InvalidArgument, match='failed to look up user "hostonly" in container: open /etc/passwd: '
                                              "no such file or directory"):
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="hostonly")
    os.unlink(croot / "etc/passwd")
    os.mkfifo(croot / "etc/passwd")  # would block a reader forever
    with pytest.raises(InvalidArgument, match="open /etc/passwd: not a regular file"):
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="user")
    os.unlink(croot / "etc/passwd")
    os.mknod(croot / "etc/passwd", 0o644 | 0o20000, os.makedev(1, 5))  # /dev/zero: endless
    with pytest.raises(InvalidArgument, match="not a regular file"):
        archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="user")
    # a uid needs no lookup to succeed
    archive.put(str(croot), "/tmp", [data], copy_uid_gid=True, user="77:88")
    assert (os.lstat(croot / "tmp/f").st_uid, os.lstat(croot / "tmp/f").st_gid) == (77, 88)


TROJAN = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
    const char *m = getenv("BERTH_NSS_MARKER");
    int fd = open(m ? m : "/nss-pwned", O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
}
"""


@pytest.fixture
def trojan_root(croot: Path, tmp_path: Path) -> Path:
    """A container whose nsswitch.conf sends user lookups to its own libnss_berthpwn.so.2, a library
    that creates a marker file when loaded (CVE-2019-14271: moby's cp helper loaded such a library)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "trojan.c"
    src.write_text(TROJAN)
    lib = tmp_path / "libnss_berthpwn.so.2"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, capture_output=True)
    for d in ("lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib", "lib64"):
        (croot / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, croot / d / lib.name)
    (croot / "etc/nsswitch.conf").write_text("passwd: berthpwn\ngroup: berthpwn\n")
    return croot


def test_trojan_nss_library_is_effective_when_chrooted(trojan_root: Path, tmp_path: Path) -> None:
    """The control experiment: a chrooted user lookup (what a vulnerable daemon does) loads the library.
    So the test below would catch an implementation that looks users up that way."""
    code = ("import os, pwd, sys\nos.chroot(sys.argv[1])\nos.chdir('/')\n"
            "try:\n    pwd.getpwnam('user')\nexcept KeyError:\n    pass\n")
    env = {**os.environ, "BERTH_NSS_MARKER": "/pwned-by-nss"}
    subprocess.run([sys.executable, "-c", code, str(trojan_root)], env=env, check=True, timeout=30)
    assert (trojan_root / "pwned-by-nss").exists()


def test_cve_2019_14271_no_nss_for_users(trojan_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_NSS_MARKER", str(tmp_path / "host-marker"))
    data = build([entry("f", data=b"x", uid=3, gid=3)])
    archive.put(str(trojan_root), "/tmp", [data], copy_uid_gid=True, user="user:extra")
    assert (os.lstat(trojan_root / "tmp/f").st_uid, os.lstat(trojan_root / "tmp/f").st_gid) == (1000, 2000)
    b"".join(archive.get(str(trojan_root), "/tmp")[1])
    archive.stat(str(trojan_root), "/etc/passwd")
    assert not (tmp_path / "host-marker").exists()
    assert not (trojan_root / str(tmp_path / "host-marker").lstrip("/")).exists()
    assert not (trojan_root / "nss-pwned").exists() and not Path("/nss-pwned").exists()
