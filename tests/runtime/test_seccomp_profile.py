"""berth's default profile resolves to the same policy as Docker's, for every syscall and several cap sets.

The resolver for Docker's format below is written independently of berth's `to_oci` (from moby's
setupSeccomp semantics), so the equivalence test checks both berth's data and berth's logic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import pytest

from berth.errors import InvalidArgument
from berth.runtime import caps
from berth.runtime.seccomp import compact, default_oci, default_profile, to_oci
from berth.runtime.seccomp.profile import parse_kernel

DOCKER_FILE = "/work/shared/docker-api/seccomp-default.json"
BERTH_FILE = os.path.join(os.path.dirname(compact.__file__), "default.json")

CAP_SETS = {
    "docker14": list(caps.DOCKER_DEFAULT),
    "+sys_admin": [*caps.DOCKER_DEFAULT, "CAP_SYS_ADMIN"],
    "+sys_ptrace": [*caps.DOCKER_DEFAULT, "CAP_SYS_PTRACE"],
    "all": list(caps.CAPS),
    "none": [],
}


@pytest.fixture(scope="module")
def docker() -> dict[str, Any]:
    if not os.path.exists(DOCKER_FILE):
        pytest.skip(f"{DOCKER_FILE} (Docker's profile, shared research data) is not available")
    with open(DOCKER_FILE) as f:
        data: dict[str, Any] = json.load(f)
    return data


def docker_resolve(profile: dict[str, Any], bounding: Iterable[str], native: str, kernel: tuple[int, int]
                   ) -> dict[str, Any]:
    """moby's setupSeccomp, restated: returns defaultAction/ErrnoRet, architectures and name -> [rule]."""
    bset = set(bounding)
    oci_arch = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "s390x": "SCMP_ARCH_S390X"}[native]
    arches: list[str] = []
    for entry in profile["archMap"]:
        if entry["architecture"] == oci_arch:
            arches = [oci_arch, *(entry["subArchitectures"] or [])]

    def kernel_ok(v: str) -> bool:
        major, minor = (int(x) for x in v.split(".")[:2])
        return kernel >= (major, minor)

    by_name: dict[str, list[tuple[str, int | None, str]]] = {}
    for call in profile["syscalls"]:
        inc, exc = call.get("includes", {}), call.get("excludes", {})
        if native in exc.get("arches", []) or any(c in bset for c in exc.get("caps", [])):
            continue
        if "minKernel" in exc and kernel_ok(exc["minKernel"]):
            continue
        if inc.get("arches") and native not in inc["arches"]:
            continue
        if not all(c in bset for c in inc.get("caps", [])):
            continue
        if "minKernel" in inc and not kernel_ok(inc["minKernel"]):
            continue
        for name in call["names"]:
            by_name.setdefault(name, []).append(
                (call["action"], call.get("errnoRet"), json.dumps(_norm_args(call.get("args")), sort_keys=True)))
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile.get("defaultErrnoRet"),
            "architectures": arches, "rules": {k: sorted(v, key=repr) for k, v in by_name.items()}}


def _norm_args(args: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"index": a["index"], "op": a["op"], "value": a["value"], "valueTwo": a.get("valueTwo", 0)}
            for a in args or []]


def berth_view(oci: dict[str, Any]) -> dict[str, Any]:
    """The same shape, from an OCI object berth produced."""
    by_name: dict[str, list[tuple[str, int | None, str]]] = {}
    for rule in oci["syscalls"]:
        for name in rule["names"]:
            by_name.setdefault(name, []).append(
                (rule["action"], rule.get("errnoRet"), json.dumps(_norm_args(rule.get("args")), sort_keys=True)))
    return {"defaultAction": oci["defaultAction"], "defaultErrnoRet": oci.get("defaultErrnoRet"),
            "architectures": oci.get("architectures", []),
            "rules": {k: sorted(v, key=repr) for k, v in by_name.items()}}


@pytest.mark.parametrize("capset", sorted(CAP_SETS))
@pytest.mark.parametrize(("machine", "native"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("s390x", "s390x")])
@pytest.mark.parametrize("kernel", [(6, 18), (4, 7)])
def test_berth_default_resolves_like_docker(docker: dict[str, Any], capset: str, machine: str, native: str,
                                            kernel: tuple[int, int]) -> None:
    want = docker_resolve(docker, CAP_SETS[capset], native, kernel)
    got = berth_view(to_oci(default_profile(), CAP_SETS[capset], arch=machine, kernel=kernel))
    assert got["defaultAction"] == want["defaultAction"] == "SCMP_ACT_ERRNO"
    assert got["defaultErrnoRet"] == want["defaultErrnoRet"] == 1
    assert got["architectures"] == want["architectures"]
    every_name = {n for call in docker["syscalls"] for n in call["names"]}
    for name in sorted(every_name):
        assert got["rules"].get(name, []) == want["rules"].get(name, []), name
    assert set(got["rules"]) <= every_name


def test_every_single_capability_gate_like_docker(docker: dict[str, Any]) -> None:
    """Docker's 14 plus any one capability, and any one capability alone: the cap-gated rules all agree."""
    profile = default_profile()
    for cap in caps.CAPS:
        for bounding in ([*caps.DOCKER_DEFAULT, cap], [cap]):
            want = docker_resolve(docker, bounding, "amd64", (6, 18))
            assert berth_view(to_oci(profile, bounding, arch="x86_64", kernel=(6, 18))) == want, bounding


def test_to_oci_on_dockers_own_file_agrees(docker: dict[str, Any]) -> None:
    """berth's resolver applied to Docker's file gives what the independent resolver gives."""
    for bounding in CAP_SETS.values():
        want = docker_resolve(docker, bounding, "amd64", (6, 18))
        assert berth_view(to_oci(docker, bounding, arch="x86_64", kernel=(6, 18))) == want


def test_policy_facts_for_docker_default_caps() -> None:
    """Spot checks a reader can verify against runtime.md §1.6, independent of Docker's file."""
    oci = to_oci(default_profile(), caps.DOCKER_DEFAULT, arch="x86_64", kernel=(6, 18))
    allowed_plain = {n for r in oci["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
                     for n in r["names"]}
    for blocked in ("mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
                    "io_uring_setup", "perf_event_open", "kexec_load", "init_module", "reboot", "clone", "clone3"):
        assert blocked not in allowed_plain, blocked
    for ok in ("read", "write", "openat", "execve", "getpid", "arch_prctl", "modify_ldt", "chroot", "ptrace"):
        assert ok in allowed_plain, ok
    clone3 = [r for r in oci["syscalls"] if "clone3" in r["names"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    clone = [r for r in oci["syscalls"] if "clone" in r["names"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_caps_and_kernel_gates() -> None:
    def names(bounding: Iterable[str], kernel: tuple[int, int] = (6, 18)) -> set[str]:
        oci = to_oci(default_profile(), bounding, arch="x86_64", kernel=kernel)
        return {n for r in oci["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
                for n in r["names"]}

    base = names(caps.DOCKER_DEFAULT)
    admin = names([*caps.DOCKER_DEFAULT, "CAP_SYS_ADMIN"])
    assert {"mount", "unshare", "setns", "clone", "clone3", "bpf"} <= admin - base
    assert "kcmp" in names([*caps.DOCKER_DEFAULT, "CAP_SYS_PTRACE"]) - base
    assert "ptrace" in base and "ptrace" not in names(caps.DOCKER_DEFAULT, kernel=(4, 7))
    assert "ptrace" in names([*caps.DOCKER_DEFAULT, "CAP_SYS_PTRACE"], kernel=(4, 7))
    assert "chroot" not in names([])


def test_default_oci_is_for_this_host() -> None:
    oci = default_oci(caps.DOCKER_DEFAULT)
    assert oci == to_oci(default_profile(), caps.DOCKER_DEFAULT, arch=os.uname().machine,
                         kernel=parse_kernel(os.uname().release))


def test_default_profile_is_a_fresh_copy() -> None:
    a = default_profile()
    a["syscalls"][0]["names"].append("berth_mutated")
    a["archMap"].clear()
    assert "berth_mutated" not in default_profile()["syscalls"][0]["names"]
    oci = to_oci(default_profile(), [], arch="x86_64", kernel=(6, 18))
    oci["syscalls"][0]["names"].clear()
    assert default_profile()["syscalls"][0]["names"]


def test_berth_file_is_current_and_not_a_copy(docker: dict[str, Any]) -> None:
    """default.json is berth's compact rewrite of Docker's file (regenerable), with its origin noted."""
    with open(BERTH_FILE) as f:
        text = f.read()
    assert text == compact.dumps(compact.from_docker(docker))
    with open(DOCKER_FILE) as f:
        assert text != f.read()
    assert "Apache" in json.loads(text)["_origin"]
    assert os.path.exists(os.path.join(os.path.dirname(BERTH_FILE), "default.LICENSE"))


def test_compact_round_trip(docker: dict[str, Any]) -> None:
    back = compact.to_docker(compact.from_docker(docker))
    assert back["defaultAction"] == docker["defaultAction"]
    assert back["defaultErrnoRet"] == docker["defaultErrnoRet"]
    assert [(a["architecture"], a["subArchitectures"] or []) for a in docker["archMap"]] == \
        [(a["architecture"], a["subArchitectures"]) for a in back["archMap"]]
    assert len(back["syscalls"]) == len(docker["syscalls"])
    for mine, theirs in zip(back["syscalls"], docker["syscalls"], strict=True):
        for key in ("names", "action", "errnoRet", "comment", "includes", "excludes"):
            assert mine.get(key) == theirs.get(key), (key, theirs)
        assert _norm_args(mine.get("args")) == _norm_args(theirs.get("args"))


def test_compact_keeps_value_two_and_single_name() -> None:
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"name": "personality", "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 0xFF, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}]}
    back = compact.to_docker(compact.from_docker(prof))
    assert back["syscalls"] == [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                                 "args": [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0xFF, "valueTwo": 8}]}]


def test_profile_errors() -> None:
    with pytest.raises(InvalidArgument, match="both 'architectures' and 'archMap'"):
        to_oci({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, [])
    with pytest.raises(InvalidArgument, match="both 'name' and 'names'"):
        to_oci({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}, [])
    with pytest.raises(InvalidArgument, match="unsupported architecture"):
        to_oci(default_profile(), [], arch="vax")
    assert to_oci({}, []) == {}


def test_plain_architectures_and_passthrough() -> None:
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5, "architectures": ["SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW", "comment": "x"}]}
    assert to_oci(prof, []) == {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5,
                                "architectures": ["SCMP_ARCH_X86"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}


@pytest.mark.parametrize(("release", "want"), [("6.18.44-fc-v509", (6, 18)), ("3.12-1-amd64", (3, 12)),
                                               ("5.10rc1", (5, 10)), ("4.8", (4, 8))])
def test_parse_kernel(release: str, want: tuple[int, int]) -> None:
    assert parse_kernel(release) == want


def test_regenerate_command(docker: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert compact.main([DOCKER_FILE]) == 0
    with open(BERTH_FILE) as f:
        assert capsys.readouterr().out == f.read()
    assert compact.main([]) == 2
