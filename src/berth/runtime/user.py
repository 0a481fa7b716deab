"""Resolve a container's `User` ("name", "uid", "name:group", "uid:gid") from its own passwd/group TEXT.

Never through the host's NSS: `pwd.getpwnam` inside a container root would load the image's
libnss_* into the daemon (CVE-2019-14271, `docker cp`). The rules and messages are runc's
libcontainer/user (`GetExecUser`, `GetAdditionalGroups`), which moby calls at container start:
a name must be in passwd (group) or it is an error, a number need not be; with no group given,
the user's supplementary groups are those listing the user's name as a member.

The files come from an untrusted root: `read_root_file` resolves the path inside the root
(symlinks cannot point out of it) and reads only a regular file, so `/etc/passwd -> /etc/shadow`
or a device node planted in an image reads nothing of the host.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from berth.errors import InvalidArgument
from berth.runtime.linux.securejoin import secure_join, within

MAX_ID = (1 << 31) - 1  # runc: "for 32-bit systems compatibility"
MAX_FILE = 16 << 20  # a passwd or group file bigger than this is not one
_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 1 << 63

ERR_RANGE = f"uids and gids must be in range 0-{MAX_ID}"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass
class ExecUser:
    """What the process runs as. `home` is the passwd home ("/" when the user has no entry)."""

    uid: int = 0
    gid: int = 0
    sgids: list[int] = field(default_factory=list)
    home: str = "/"


def go_atoi(s: str) -> int | None:
    """Go's strconv.Atoi: optional sign, ASCII digits only (no spaces, no `_`); out of range clamps."""
    if not _INT.fullmatch(s):
        return None
    return max(-_INT64, min(_INT64 - 1, int(s)))


def _field_int(s: str) -> int:
    """runc's parseLine stores 0 for a numeric field that does not parse."""
    n = go_atoi(s)
    return 0 if n is None else n


def parse_passwd(text: str) -> list[PasswdEntry]:
    """name:pass:uid:gid:gecos:home:shell lines; blank lines skipped, missing fields empty."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = line.split(":")
        parts += [""] * (7 - len(parts))
        out.append(PasswdEntry(parts[0], _field_int(parts[2]), _field_int(parts[3]), parts[5]))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """name:pass:gid:member,member lines (runc trims nothing here but skips empty lines)."""
    out = []
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":")
        parts += [""] * (4 - len(parts))
        members = tuple(parts[3].split(",")) if parts[3] else ()
        out.append(GroupEntry(parts[0], _field_int(parts[2]), members))
    return out


def resolve(spec: str, passwd: str | None, group: str | None) -> ExecUser:
    """The uid, gid, supplementary gids and home for `spec` ("" means root).

    `passwd` / `group` are the files' text, None when the container has no such file (then only
    numeric ids work). Raises InvalidArgument in runc's words, e.g.
    "unable to find user x: no matching entries in passwd file".
    """
    parts = spec.split(":")
    user_arg = parts[0]
    group_arg = parts[1] if len(parts) > 1 else ""
    uid_arg = go_atoi(user_arg)
    gid_arg = go_atoi(group_arg)
    out = ExecUser()

    users = parse_passwd(passwd) if passwd is not None else []
    if user_arg == "":
        matches = [u for u in users if u.uid == out.uid]
    elif uid_arg is not None:
        matches = [u for u in users if u.uid == uid_arg]
    else:
        matches = [u for u in users if u.name == user_arg]

    matched_name = ""
    if matches:
        matched_name = matches[0].name
        out.uid, out.gid, out.home = matches[0].uid, matches[0].gid, matches[0].home
    elif user_arg != "":
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        if not 0 <= uid_arg <= MAX_ID:
            raise InvalidArgument(ERR_RANGE)
        out.uid = uid_arg

    if group_arg or matched_name:
        groups = parse_group(group) if group is not None else []
        if group_arg == "":
            found = [g for g in groups if matched_name in g.members]
        elif gid_arg is not None:
            found = [g for g in groups if g.gid == gid_arg]
        else:
            found = [g for g in groups if g.name == group_arg]
        if group_arg:
            if found:
                out.gid = found[0].gid
            else:
                if gid_arg is None:
                    raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
                if not 0 <= gid_arg <= MAX_ID:
                    raise InvalidArgument(ERR_RANGE)
                out.gid = gid_arg
        else:
            out.sgids = [g.gid for g in found]
    return out


def additional_groups(wanted: list[str], group: str | None) -> list[int]:
    """`--group-add` entries (names or numbers) as gids, in request order, each gid once."""
    groups = parse_group(group) if group is not None else []
    out: list[int] = []
    for want in wanted:
        gid = next((g.gid for g in groups if g.name == want or str(g.gid) == want), None)
        if gid is None:
            gid = go_atoi(want)
            if gid is None:
                raise InvalidArgument(f"Unable to find group {want}")
            if not 0 <= gid <= MAX_ID:
                raise InvalidArgument(ERR_RANGE)
        if gid not in out:
            out.append(gid)
    return out


def read_root_file(root: str, path: str, limit: int = MAX_FILE) -> str | None:
    """The text of `path` inside the untrusted `root`, or None if it is missing or not a regular file.

    The path is resolved as if `root` were `/`; the final open is O_PATH|O_NOFOLLOW and checked
    through /proc/self/fd before any read, so a symlink or device node cannot make the daemon
    read (or open) something outside the root.
    """
    try:
        resolved = secure_join(root, path)
        fd = os.open(resolved, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if not within(os.path.realpath(root), os.readlink(f"/proc/self/fd/{fd}")):
            return None
        rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    finally:
        os.close(fd)
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = os.read(rfd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(rfd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise InvalidArgument(f"{path} in the container is larger than {limit} bytes")
    return data.decode("utf-8", errors="surrogateescape")


def lookup(root: str, spec: str, group_add: list[str] | None = None) -> tuple[ExecUser, list[int]]:
    """Resolve `spec` and `group_add` against `root`'s /etc/passwd and /etc/group (read as text)."""
    passwd = read_root_file(root, "/etc/passwd")
    group = read_root_file(root, "/etc/group")
    user = resolve(spec, passwd, group)
    extra = additional_groups(group_add, group) if group_add else []
    return user, extra
