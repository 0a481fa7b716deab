"""User resolution from a container's passwd/group text (runc's libcontainer/user rules), and reading
those files out of an untrusted root without ever leaving it."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from berth.errors import InvalidArgument
from berth.runtime import user as u

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false

  user:x:1000:1000:user:/home/user:/bin/sh
bad:x:notanumber:7::/bad:/bin/sh
short:x:1500
"""
GROUP = """root:x:0:
daemon:x:1:
users:x:100:user,daemon
user:x:1000:
extra:x:2000:user
 spaced:x:3000:user
"""


# --- parsing -----------------------------------------------------------------------------------

def test_parse_passwd_trims_lines_and_zeroes_bad_numbers() -> None:
    entries = u.parse_passwd(PASSWD)
    assert [e.name for e in entries] == ["root", "daemon", "user", "bad", "short"]
    assert entries[2] == u.PasswdEntry("user", 1000, 1000, "/home/user")
    assert entries[3].uid == 0  # runc's parseLine stores 0 for a field that does not parse
    assert entries[4] == u.PasswdEntry("short", 1500, 0, "")


def test_parse_group_members_and_untrimmed_names() -> None:
    groups = u.parse_group(GROUP)
    assert groups[2] == u.GroupEntry("users", 100, ("user", "daemon"))
    assert groups[0].members == ()
    assert groups[5].name == " spaced"  # group lines are not trimmed (runc)


def test_go_atoi() -> None:
    assert u.go_atoi("42") == 42
    assert u.go_atoi("+7") == 7
    assert u.go_atoi("-1") == -1
    for bad in ("", " 1", "1_0", "0x10", "1.0", "١"):
        assert u.go_atoi(bad) is None
    assert u.go_atoi("9" * 30) == (1 << 63) - 1


# --- resolution ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "uid", "gid", "sgids", "home"), [
    ("", 0, 0, [], "/root"),  # root lists in no group's members
    ("root", 0, 0, [], "/root"),
    ("user", 1000, 1000, [100, 2000, 3000], "/home/user"),
    ("1000", 1000, 1000, [100, 2000, 3000], "/home/user"),
    ("daemon", 1, 1, [100], "/usr/sbin"),
    ("user:users", 1000, 100, [], "/home/user"),  # a group given: no supplementary groups
    ("user:2000", 1000, 2000, [], "/home/user"),
    ("user:4242", 1000, 4242, [], "/home/user"),  # a number need not exist
    ("4242", 4242, 0, [], "/"),
    ("4242:4343", 4242, 4343, [], "/"),
    ("0:extra", 0, 2000, [], "/root"),
    ("user:users:ignored", 1000, 100, [], "/home/user"),
])
def test_resolve(spec: str, uid: int, gid: int, sgids: list[int], home: str) -> None:
    got = u.resolve(spec, PASSWD, GROUP)
    assert (got.uid, got.gid, got.sgids, got.home) == (uid, gid, sgids, home)


@pytest.mark.parametrize(("spec", "message"), [
    ("nobody", "unable to find user nobody: no matching entries in passwd file"),
    ("user:nogroup", "unable to find group nogroup: no matching entries in group file"),
    ("-1", "uids and gids must be in range 0-2147483647"),
    ("2147483648", "uids and gids must be in range 0-2147483647"),
    ("0:-5", "uids and gids must be in range 0-2147483647"),
])
def test_resolve_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        u.resolve(spec, PASSWD, GROUP)
    assert str(e.value) == message


def test_resolve_without_files() -> None:
    """An image without /etc/passwd: numbers work, names do not (no NSS fallback, ever)."""
    assert u.resolve("", None, None) == u.ExecUser(0, 0, [], "/")
    assert u.resolve("33:44", None, None) == u.ExecUser(33, 44, [], "/")
    with pytest.raises(InvalidArgument, match="unable to find user root: no matching entries in passwd file"):
        u.resolve("root", None, None)
    with pytest.raises(InvalidArgument, match="unable to find group wheel"):
        u.resolve("0:wheel", PASSWD, None)


def test_additional_groups() -> None:
    assert u.additional_groups(["users", "2000", "777", "users"], GROUP) == [100, 2000, 777]
    assert u.additional_groups(["5"], None) == [5]
    with pytest.raises(InvalidArgument, match=r"^Unable to find group wheel$"):
        u.additional_groups(["wheel"], GROUP)
    with pytest.raises(InvalidArgument, match="uids and gids must be in range"):
        u.additional_groups(["-3"], GROUP)


# --- reading from an untrusted root -------------------------------------------------------------

def _root(tmp_path: os.PathLike[str]) -> str:
    root = os.path.join(tmp_path, "root")
    os.makedirs(os.path.join(root, "etc"))
    return root


def test_lookup_reads_the_roots_files(tmp_path: os.PathLike[str]) -> None:
    root = _root(tmp_path)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write(GROUP)
    who, extra = u.lookup(root, "user", ["daemon", "9"])
    assert (who.uid, who.gid, who.sgids, who.home, extra) == (1000, 1000, [100, 2000, 3000], "/home/user", [1, 9])


def test_absolute_symlink_stays_inside_the_root(tmp_path: os.PathLike[str]) -> None:
    """etc/passwd -> /secret/passwd means <root>/secret/passwd, never the host's file."""
    root = _root(tmp_path)
    host_secret = os.path.join(tmp_path, "secret")
    os.makedirs(host_secret)
    with open(os.path.join(host_secret, "passwd"), "w") as f:
        f.write("hostonly:x:4242:4242::/:/bin/sh\n")
    os.symlink(host_secret + "/passwd", os.path.join(root, "etc/passwd"))
    assert u.read_root_file(root, "/etc/passwd") is None
    with pytest.raises(InvalidArgument, match="unable to find user hostonly"):
        u.lookup(root, "hostonly")
    # the same link target inside the root is followed
    os.makedirs(os.path.join(root, host_secret.lstrip("/")))
    with open(os.path.join(root, host_secret.lstrip("/"), "passwd"), "w") as f:
        f.write("inside:x:7:7::/in:/bin/sh\n")
    assert u.lookup(root, "inside")[0].uid == 7


def test_dotdot_symlink_cannot_climb_out(tmp_path: os.PathLike[str]) -> None:
    root = _root(tmp_path)
    with open(os.path.join(tmp_path, "passwd"), "w") as f:
        f.write("outside:x:5:5::/:/bin/sh\n")
    os.symlink("../../passwd", os.path.join(root, "etc/passwd"))
    assert u.read_root_file(root, "/etc/passwd") is None


def test_fifo_is_not_opened(tmp_path: os.PathLike[str]) -> None:
    """A FIFO planted as /etc/group would block a plain open(); it must be refused at once."""
    root = _root(tmp_path)
    os.mkfifo(os.path.join(root, "etc/group"))
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(u.read_root_file(root, "/etc/group")), daemon=True)
    t.start()
    t.join(5)
    assert result == [None]


@pytest.mark.root
def test_device_node_is_not_read(tmp_path: os.PathLike[str]) -> None:
    """A device node in an image (here /dev/zero's numbers) reads nothing: not a regular file."""
    root = _root(tmp_path)
    os.mknod(os.path.join(root, "etc/passwd"), 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    assert u.read_root_file(root, "/etc/passwd") is None


def test_directory_and_missing(tmp_path: os.PathLike[str]) -> None:
    root = _root(tmp_path)
    os.makedirs(os.path.join(root, "etc/passwd"))
    assert u.read_root_file(root, "/etc/passwd") is None
    assert u.read_root_file(root, "/etc/group") is None


def test_oversized_file_is_refused(tmp_path: os.PathLike[str]) -> None:
    root = _root(tmp_path)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("x" * 100)
    assert u.read_root_file(root, "/etc/passwd", limit=100) == "x" * 100
    with pytest.raises(InvalidArgument, match="larger than 99 bytes"):
        u.read_root_file(root, "/etc/passwd", limit=99)
