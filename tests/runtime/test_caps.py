"""Capabilities: names and masks (unit), and the real sets the kernel reports after apply + execve (root)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from berth.errors import InvalidArgument
from berth.runtime import caps

DOCKER_MASK = 0xA80425FB
BUSYBOX = "/bin/busybox"


# --- unit: names and masks -------------------------------------------------------------------

def test_table_matches_kernel_numbering() -> None:
    assert caps.CAPS["CAP_CHOWN"] == 0
    assert caps.CAPS["CAP_SYS_ADMIN"] == 21
    assert caps.CAPS["CAP_SYS_RESOURCE"] == 24
    assert caps.CAPS["CAP_CHECKPOINT_RESTORE"] == 40
    assert sorted(caps.CAPS.values()) == list(range(41))


def test_docker_default_mask() -> None:
    assert len(caps.DOCKER_DEFAULT) == 14
    assert caps.to_mask(caps.DOCKER_DEFAULT) == DOCKER_MASK
    assert sorted(caps.from_mask(DOCKER_MASK)) == sorted(caps.DOCKER_DEFAULT)


def test_mask_round_trip() -> None:
    everything = (1 << 41) - 1
    assert caps.to_mask(caps.from_mask(everything)) == everything
    assert caps.from_mask(0) == []
    assert caps.from_mask(1 << 21 | 1) == ["CAP_CHOWN", "CAP_SYS_ADMIN"]


def test_unknown_name_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match='unknown capability "CAP_FOO"'):
        caps.to_mask(["CAP_CHOWN", "CAP_FOO"])
    with pytest.raises(InvalidArgument, match="unknown capability"):
        caps.to_mask(["chown"])  # the OCI spec wants the CAP_ prefix; the daemon normalises


def test_unknown_bits_are_an_error() -> None:
    with pytest.raises(ValueError):
        caps.from_mask(1 << 41)


def test_last_cap_and_host_bounding() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert caps.last_cap() == int(f.read())
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert caps.to_mask(caps.host_bounding()) == bnd


# --- real kernel: apply in a forked child, then execve busybox and read its sets ---------------

def _status_caps(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Cap"):
            out[key] = int(value, 16)
    return out


def _exec_with(setup: Callable[[], None]) -> dict[str, int]:
    """Fork; the child runs `setup`, then execs `busybox grep Cap /proc/self/status`. Returns its Cap* lines."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            setup()
            os.execv(BUSYBOX, ["busybox", "grep", "Cap", "/proc/self/status"])
        except BaseException as e:
            os.write(2, f"setup failed: {type(e).__name__}: {e}\n".encode())
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return _status_caps(text)


def _in_child(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a forked child and return its result (or re-raise its exception) in the parent."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                data = pickle.dumps((True, fn()))
            except BaseException as e:
                data = pickle.dumps((False, e))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def _docker(**extra: list[str]) -> dict[str, list[str]]:
    d = list(caps.DOCKER_DEFAULT)
    spec: dict[str, list[str]] = {"bounding": d, "effective": d, "permitted": d, "inheritable": [], "ambient": []}
    spec.update(extra)
    return spec


def _switch_to(uid: int) -> None:
    caps.prepare_user_switch()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    caps.finish_user_switch()


@pytest.mark.root
def test_root_gets_docker_default_sets() -> None:
    got = _exec_with(lambda: caps.apply(_docker()))
    assert got == {"CapInh": 0, "CapPrm": DOCKER_MASK, "CapEff": DOCKER_MASK, "CapBnd": DOCKER_MASK, "CapAmb": 0}


@pytest.mark.root
def test_without_apply_root_keeps_host_sets() -> None:
    """Control for the test above: the child really starts with more than Docker's set."""
    got = _exec_with(lambda: None)
    assert got["CapBnd"] == caps.to_mask(caps.host_bounding()) != DOCKER_MASK
    assert got["CapEff"] != DOCKER_MASK


@pytest.mark.root
def test_non_root_loses_permitted_on_execve() -> None:
    def setup() -> None:
        _switch_to(1000)
        caps.apply(_docker())

    got = _exec_with(setup)
    assert got == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": DOCKER_MASK, "CapAmb": 0}


@pytest.mark.root
def test_keepcaps_keeps_permitted_until_execve() -> None:
    """Between the uid switch and execve the init still holds the permitted set (that is what keep-caps is for)."""
    def probe() -> dict[str, int]:
        _switch_to(1000)
        before = caps.current()
        caps.apply(_docker(inheritable=["CAP_NET_BIND_SERVICE"], ambient=["CAP_NET_BIND_SERVICE"]))
        return {"before_prm": before["permitted"], "before_eff": before["effective"], **caps.current()}

    got = _in_child(probe)
    assert got["before_prm"] == caps.to_mask(caps.host_bounding())
    assert got["before_eff"] == 0  # setresuid cleared it; apply must cope
    assert got["bounding"] == got["permitted"] == got["effective"] == DOCKER_MASK
    assert got["ambient"] == got["inheritable"] == 1 << 10


@pytest.mark.root
def test_non_root_ambient_survives_execve() -> None:
    amb = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    mask = caps.to_mask(amb)

    def setup() -> None:
        _switch_to(1000)
        caps.apply(_docker(inheritable=amb, ambient=amb))

    got = _exec_with(setup)
    assert got == {"CapInh": mask, "CapPrm": mask, "CapEff": mask, "CapBnd": DOCKER_MASK, "CapAmb": mask}


@pytest.mark.root
def test_root_ambient_and_inheritable() -> None:
    amb = ["CAP_KILL"]
    got = _exec_with(lambda: caps.apply(_docker(inheritable=amb, ambient=amb)))
    assert got["CapAmb"] == got["CapInh"] == 1 << 5
    assert got["CapPrm"] == got["CapEff"] == got["CapBnd"] == DOCKER_MASK


@pytest.mark.root
def test_without_keepcaps_apply_fails_clearly() -> None:
    def probe() -> None:
        os.setresuid(1000, 1000, 1000)  # no keep-caps: permitted is gone
        caps.apply(_docker())

    with pytest.raises(InvalidArgument, match="can't apply capabilities: not in the runtime's permitted set"):
        _in_child(probe)


@pytest.mark.root
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_docker(bounding=[*caps.DOCKER_DEFAULT, "CAP_FOO"]), 'unknown capability "CAP_FOO"'),
        ({"ambient": ["CAP_NOPE"]}, 'unknown capability "CAP_NOPE"'),
        (_docker(ambient=["CAP_KILL"]), "ambient capabilities must also be permitted and inheritable: CAP_KILL"),
        (_docker(effective=["CAP_SYS_ADMIN"]), "effective capabilities must also be permitted: CAP_SYS_ADMIN"),
        (_docker(inheritable=["CAP_SYS_ADMIN"]), "inheritable capabilities must also be in the bounding set"),
    ],
)
def test_bad_request_fails_and_changes_nothing(spec: dict[str, list[str]], message: str) -> None:
    def probe() -> tuple[dict[str, int], str, dict[str, int]]:
        before = caps.current()
        try:
            caps.apply(spec)
            err = ""
        except InvalidArgument as e:
            err = str(e)
        return before, err, caps.current()

    before, err, after = _in_child(probe)
    assert message in err
    assert after == before


@pytest.mark.root
def test_cap_outside_host_bounding_fails_clearly() -> None:
    """This machine's bounding set lacks CAP_SYS_RESOURCE; asking for it must fail, naming it."""
    missing = sorted(set(caps.CAPS) - set(caps.host_bounding()))
    if not missing:
        pytest.skip("this host's bounding set has every capability")
    cap = "CAP_SYS_RESOURCE" if "CAP_SYS_RESOURCE" in missing else missing[0]

    def probe() -> tuple[dict[str, int], str, dict[str, int]]:
        before = caps.current()
        try:
            caps.apply(_docker(bounding=[*caps.DOCKER_DEFAULT, cap]))
            err = ""
        except InvalidArgument as e:
            err = str(e)
        return before, err, caps.current()

    before, err, after = _in_child(probe)
    assert err == f"can't apply capabilities: not in the runtime's bounding set: {cap}"
    assert after == before


@pytest.mark.root
def test_none_changes_nothing() -> None:
    def probe() -> tuple[dict[str, int], dict[str, int]]:
        before = caps.current()
        caps.apply(None)
        return before, caps.current()

    before, after = _in_child(probe)
    assert before == after


@pytest.mark.root
def test_empty_sets_drop_everything() -> None:
    got = _exec_with(lambda: caps.apply({}))
    assert got == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}
