"""normalize(): Docker's create body -> Config and HostConfig as `docker inspect` shows them (pure, fast).

The bodies are what the docker CLI 28 really sends (captured through a logging proxy in front of a
private dockerd; see test_spec_docker.py, which also compares the results with Docker's own)."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from berth.daemon.createconfig import (
    DaemonOptions,
    HostFeatures,
    merge_tmpfs_options,
    normalize,
    parse_bind,
    parse_cpuset,
    parse_device_cgroup_rule,
    parse_security_opts,
    parse_signal,
    tmpfs_data,
    tweak_capabilities,
)
from berth.errors import InvalidArgument, NotFound
from berth.runtime import caps

CID = "0123456789abcdef" * 4
MASKED = ["/proc/kcore", "/sys/firmware"]
READONLY = ["/proc/sys"]

# `docker create busybox` from the docker CLI 28.2.2 (API 1.41 against dockerd 20.10)
CLI_BODY: dict[str, Any] = json.loads("""{"Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
"AttachStdout": true, "AttachStderr": true, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
"Cmd": null, "Image": "busybox", "Volumes": {}, "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": {},
"HostConfig": {"Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
"PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": false, "VolumeDriver": "",
"VolumesFrom": null, "ConsoleSize": [0, 0], "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": [],
"DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null,
"OomScoreAdj": 0, "PidMode": "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
"SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0,
"NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
"BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
"CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
"DeviceCgroupRules": null, "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": -1,
"OomKillDisable": false, "PidsLimit": 0, "Ulimits": [], "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
"IOMaximumBandwidth": 0, "MaskedPaths": null, "ReadonlyPaths": null},
"NetworkingConfig": {"EndpointsConfig": {"default": {}}}}""")

IMAGE = {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin", "IMG=1"], "Labels": {"img": "yes", "both": "image"},
         "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "WorkingDir": "/srv", "User": "daemon",
         "StopSignal": "SIGQUIT", "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3}}


def opts(**kw: Any) -> DaemonOptions:
    features = kw.pop("features", HostFeatures(cpus="0-1", mems="0"))
    base: dict[str, Any] = {
        "host_caps": tuple(c for c in caps.CAPS if c != "CAP_SYS_RESOURCE"), "daemon_hard_rlimits": {"nofile": 20000},
        "oom_score_adj_min": 0, "host_hostname": "hosty", "ncpu": 2, "masked_paths": MASKED,
        "readonly_paths": READONLY, "features": features, "runtime_name": "runc",
    }
    base.update(kw)
    return DaemonOptions(**base)


def body(config: dict[str, Any] | None = None, **host: Any) -> dict[str, Any]:
    b = copy.deepcopy(CLI_BODY)
    b.update(config or {})
    b["HostConfig"].update(host)
    return b


def run(b: dict[str, Any], image: dict[str, Any] | None = None, **kw: Any) -> tuple[dict, dict, list[str]]:
    return normalize(b, IMAGE if image is None else image, name="n", cid=CID, daemon=opts(**kw))


def fails(b: dict[str, Any], message: str, image: dict[str, Any] | None = None, **kw: Any) -> None:
    with pytest.raises(InvalidArgument) as e:
        run(b, image, **kw)
    assert str(e.value) == message


# --- what inspect shows for the plain CLI body -----------------------------------------------------

def test_cli_defaults_as_inspect_shows_them() -> None:
    config, hc, warnings = run(body(), image={"Cmd": ["sh"]})
    assert warnings == []
    assert config == {
        "Hostname": CID[:12], "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": True,
        "AttachStderr": True, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": ["sh"],
        "Image": "busybox", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "Labels": {},
    }
    assert list(config) == ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
                            "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
                            "Labels"]
    expected = {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
        "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
        "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
        "UsernsMode": "", "ShmSize": 64 << 20, "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0,
        "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
        "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
        "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": MASKED,
        "ReadonlyPaths": READONLY,
    }
    assert hc == expected


def test_a_minimal_api_body_gets_go_zero_values() -> None:
    """docker-py style: only what the caller set. Missing fields are Go's zero values."""
    config, hc, _ = run({"Image": "busybox", "Cmd": "echo hi"}, image=None)
    assert config["Cmd"] == ["echo hi"]  # StrSlice also takes a string
    assert config["Env"] == ["PATH=/usr/bin:/bin", "IMG=1"]
    assert config["AttachStdout"] is False
    assert hc["Binds"] is None and hc["Dns"] is None and hc["Devices"] is None
    assert hc["OomKillDisable"] is False and hc["MemorySwappiness"] is None
    assert hc["ConsoleSize"] == [0, 0]


def test_json_keys_match_case_insensitively_like_go() -> None:
    config, hc, _ = run({"image": "x", "cmd": ["a"], "hostconfig": {"memory": 10 << 20}}, image={})
    assert config["Image"] == "x" and config["Cmd"] == ["a"]
    # "hostconfig" is not read by normalize's caller contract; only HostConfig is
    assert hc["Memory"] == 0


def test_runtime_is_filled_not_judged() -> None:
    """Which runtimes exist is the daemon's registry's business; normalize only fills the default."""
    assert run(body(Runtime="crun"))[1]["Runtime"] == "crun"
    assert "Runtime" not in run(body(), runtime_name="")[1]


def test_cgroup_v2_defaults() -> None:
    _, hc, _ = run(body(), cgroup_version=2)
    assert hc["CgroupnsMode"] == "private"
    _, hc, _ = run(body(Privileged=True), cgroup_version=2)
    assert hc["CgroupnsMode"] == "private"  # v2 unshares even for privileged
    _, hc, _ = run(body(Privileged=True))
    assert hc["CgroupnsMode"] == "host"


# --- merge with the image ---------------------------------------------------------------------

def test_image_fills_what_the_request_left_out() -> None:
    config, _, _ = run(body({"Labels": {"both": "user", "mine": "1"}, "Env": ["IMG=2", "A=b"]}))
    assert config["Cmd"] == ["sh"] and config["Entrypoint"] is None
    assert config["Env"] == ["IMG=2", "A=b", "PATH=/usr/bin:/bin"]  # request first, image keys not overridden
    assert config["Labels"] == {"both": "user", "mine": "1", "img": "yes"}
    assert config["ExposedPorts"] == {"80/tcp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["WorkingDir"] == "/srv" and config["User"] == "daemon" and config["StopSignal"] == "SIGQUIT"
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3}


def test_request_values_win_and_sets_union() -> None:
    config, _, _ = run(body({"ExposedPorts": {"53/udp": {}}, "Volumes": {"/v": {}}, "WorkingDir": "/w",
                             "User": "1000", "StopSignal": "TERM"}))
    assert config["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert config["Volumes"] == {"/v": {}, "/data": {}}
    assert (config["WorkingDir"], config["User"], config["StopSignal"]) == ("/w", "1000", "TERM")


def test_env_without_value_still_overrides_the_image_key() -> None:
    config, _, _ = run(body({"Env": ["IMG"]}))
    assert config["Env"] == ["IMG", "PATH=/usr/bin:/bin"]


def test_entrypoint_resets_image_cmd() -> None:
    image = {"Entrypoint": ["/init"], "Cmd": ["--default"]}
    config, _, _ = run(body({"Entrypoint": ["sh"]}), image=image)
    assert (config["Entrypoint"], config["Cmd"]) == (["sh"], None)
    config, _, _ = run(body({"Entrypoint": ["sh"], "Cmd": ["-c", "x"]}), image=image)
    assert (config["Entrypoint"], config["Cmd"]) == (["sh"], ["-c", "x"])
    config, _, _ = run(body({"Cmd": ["--mine"]}), image=image)
    assert (config["Entrypoint"], config["Cmd"]) == (["/init"], ["--mine"])
    # an explicit empty list keeps the image's entrypoint out but lets its Cmd in (moby's merge)
    config, _, _ = run(body({"Entrypoint": []}), image=image)
    assert (config["Entrypoint"], config["Cmd"]) == ([], ["--default"])
    # --entrypoint "" with arguments: the arguments alone
    config, _, _ = run(body({"Entrypoint": [""], "Cmd": ["echo"]}), image=image)
    assert (config["Entrypoint"], config["Cmd"]) == (None, ["echo"])


def test_no_command() -> None:
    fails(body(), "No command specified", image={})
    fails(body({"Entrypoint": [""]}), "No command specified", image={"Cmd": ["sh"]})


def test_healthcheck_fields_inherit_and_none_disables() -> None:
    config, _, _ = run(body({"Healthcheck": {"Test": [], "Timeout": 2_000_000_000}}))
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000,
                                     "Timeout": 2_000_000_000, "Retries": 3}
    config, _, _ = run(body({"Healthcheck": {"Test": ["NONE"]}}))
    assert config["Healthcheck"]["Test"] == ["NONE"]


def test_whole_image_document_is_accepted() -> None:
    doc = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
           "config": {"Cmd": ["from-doc"]}}
    config, _, _ = run(body(), image=doc)
    assert config["Cmd"] == ["from-doc"]


def test_hostname() -> None:
    config, _, _ = run(body({"Hostname": "h1", "Domainname": "example.org"}))
    assert (config["Hostname"], config["Domainname"]) == ("h1", "example.org")
    config, _, _ = run(body(NetworkMode="host"))
    assert config["Hostname"] == "hosty"
    fails(body({"Hostname": "h" * 65}), f'hostname "{"h" * 65}" is too long (maximum 64 bytes)')


# --- HostConfig defaults and adaptations -----------------------------------------------------------

def test_memory_swap_defaults_to_twice_memory() -> None:
    _, hc, _ = run(body(Memory=64 << 20))
    assert hc["MemorySwap"] == 128 << 20
    _, hc, _ = run(body(Memory=64 << 20, MemorySwap=-1))
    assert hc["MemorySwap"] == -1


def test_pids_limit_zero_or_negative_means_unset() -> None:
    for v in (0, -1, -5):
        assert run(body(PidsLimit=v))[1]["PidsLimit"] is None
    assert run(body(PidsLimit=100))[1]["PidsLimit"] == 100


def test_privileged_and_host_namespaces_get_label_disable() -> None:
    _, hc, _ = run(body(Privileged=True))
    assert hc["SecurityOpt"] == ["label=disable"]
    assert hc["MaskedPaths"] is None and hc["ReadonlyPaths"] is None
    _, hc, _ = run(body(IpcMode="host", SecurityOpt=["no-new-privileges"]))
    assert hc["SecurityOpt"] == ["no-new-privileges", "label=disable"]
    _, hc, _ = run(body(PidMode="host", SecurityOpt=["label=type:x"]))
    assert hc["SecurityOpt"] == ["label=type:x"]  # the caller set labels itself


def test_explicit_masked_paths_are_kept() -> None:
    _, hc, _ = run(body(MaskedPaths=[], ReadonlyPaths=[]))  # --security-opt systempaths=unconfined
    assert (hc["MaskedPaths"], hc["ReadonlyPaths"]) == ([], [])


def test_log_config_from_the_daemon() -> None:
    _, hc, _ = run(body(), log_opts={"max-size": "10m"})
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}
    _, hc, _ = run(body(LogConfig={"Type": "none", "Config": {}}), log_opts={"max-size": "10m"})
    assert hc["LogConfig"] == {"Type": "none", "Config": {}}
    fails(body(LogConfig={"Type": "syslog"}), "failed to create logger: logger: no log driver named 'syslog' "
          "is registered")
    fails(body(LogConfig={"Type": "json-file", "Config": {"bogus": "1"}}),
          "unknown log opt 'bogus' for json-file log driver")


def test_omitempty_fields() -> None:
    _, hc, _ = run(body(Tmpfs={"/run": ""}, Sysctls={"net.core.somaxconn": "1"}, Init=True,
                        Annotations={"a": "b"}))
    assert hc["Tmpfs"] == {"/run": ""} and hc["Sysctls"] == {"net.core.somaxconn": "1"}
    assert hc["Init"] is True and hc["Annotations"] == {"a": "b"}
    _, hc, _ = run(body(Tmpfs={}, Sysctls={}))
    for key in ("Tmpfs", "Sysctls", "Init", "Annotations", "Mounts", "StorageOpt"):
        assert key not in hc
    # a pointer is omitted only when nil: Init=false and StopTimeout=0 are kept
    config, hc, _ = run(body({"StopTimeout": 0, "ArgsEscaped": False}, Init=False))
    assert hc["Init"] is False and config["StopTimeout"] == 0 and "ArgsEscaped" not in config


def test_mounts_are_kept_as_go_encodes_them(tmp_path: os.PathLike[str]) -> None:
    mounts = [{"Type": "bind", "Source": str(tmp_path), "Target": "/b", "ReadOnly": True,
               "BindOptions": {"Propagation": "rslave"}},
              {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}]
    _, hc, _ = run(body(Mounts=mounts))
    assert hc["Mounts"] == mounts


# --- warnings: what this host cannot grant is discarded or clamped --------------------------------

def test_blkio_weight_discarded_without_kernel_support() -> None:
    _, hc, w = run(body(BlkioWeight=300), features=HostFeatures(blkio_weight=False))
    assert w == ["Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
    assert hc["BlkioWeight"] == 0
    _, hc, w = run(body(BlkioWeight=300))
    assert (hc["BlkioWeight"], w) == (300, [])


def test_swap_limit_discarded_without_kernel_support() -> None:
    _, hc, w = run(body(Memory=64 << 20), features=HostFeatures(swap_limit=False))
    assert w == ["Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                 "Memory limited without swap."]
    assert hc["MemorySwap"] == -1


@pytest.mark.parametrize(("feature", "host", "field", "value", "warning"), [
    ("memory_reservation", {"MemoryReservation": 10 << 20}, "MemoryReservation", 0,
     "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
     "Limitation discarded."),
    ("memory_swappiness", {"MemorySwappiness": 10}, "MemorySwappiness", None,
     "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
     "Memory swappiness discarded."),
    ("pids_limit", {"PidsLimit": 10}, "PidsLimit", None,
     "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded."),
    ("cpu_shares", {"CpuShares": 512}, "CpuShares", 0,
     "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."),
    ("cpuset", {"CpusetCpus": "0"}, "CpusetCpus", "",
     "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."),
    ("blkio_read_bps", {"BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1}]}, "BlkioDeviceReadBps", [],
     "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read "
     "limit discarded."),
])
def test_unsupported_features_are_discarded(feature: str, host: dict, field: str, value: Any, warning: str) -> None:
    features: dict[str, Any] = {feature: False}
    _, hc, w = run(body(**host), features=HostFeatures(**features))
    assert w == [warning]
    assert hc[field] == value


def test_oom_kill_disable_without_memory_warns() -> None:
    _, hc, w = run(body(OomKillDisable=True))
    assert w == ["OOM killer is disabled for the container, but no memory limit is set, this can result in the "
                 "system running out of resources."]
    _, hc, w = run(body(OomKillDisable=True), features=HostFeatures(oom_kill_disable=False))
    assert w == ["Your kernel does not support OomKillDisable. OomKillDisable discarded."]
    assert hc["OomKillDisable"] is False  # discarded, then moby's default


def test_cpu_percent_is_discarded() -> None:
    _, hc, w = run(body(CpuPercent=50))
    assert (hc["CpuPercent"], w) == (0, ["linux does not support CPU percent. Percent discarded."])


def test_ulimit_above_the_daemons_hard_limit_is_clamped() -> None:
    _, hc, w = run(body(Ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 1048576},
                                 {"Name": "nproc", "Soft": 10, "Hard": 20}]))
    assert hc["Ulimits"] == [{"Name": "nofile", "Hard": 20000, "Soft": 1024}, {"Name": "nproc", "Hard": 20, "Soft": 10}]
    assert w == ["Ulimit nofile: the hard limit 1048576 is above the daemon's own hard limit (20000), which it "
                 "cannot raise without CAP_SYS_RESOURCE. Limited to 20000."]
    _, hc, w = run(body(Ulimits=[{"Name": "nofile", "Soft": -1, "Hard": -1}]))
    assert hc["Ulimits"] == [{"Name": "nofile", "Hard": 20000, "Soft": 20000}]
    assert "hard limit unlimited is above" in w[0]
    _, hc, w = run(body(Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": 2}]), daemon_hard_rlimits={})
    assert w == []


def test_negative_oom_score_adj_is_clamped_to_the_daemons() -> None:
    _, hc, w = run(body(OomScoreAdj=-500), oom_score_adj_min=-100)
    assert hc["OomScoreAdj"] == -100
    assert w == ["OomScoreAdj -500 is below the daemon's own OOM score adjustment, which it cannot lower without "
                 "CAP_SYS_RESOURCE. Set to -100."]
    _, hc, w = run(body(OomScoreAdj=-500), oom_score_adj_min=-1000)
    assert (hc["OomScoreAdj"], w) == (-500, [])


def test_host_network_drops_published_ports_with_moby_warning() -> None:
    _, hc, w = run(body(NetworkMode="host", PortBindings={"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}))
    assert hc["PortBindings"] == {}
    assert w == ["Published ports are discarded when using host network mode"]


# --- errors: moby's words ---------------------------------------------------------------------

ERRORS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({}, {"Memory": 4 << 20}, "Minimum memory limit allowed is 6MB"),
    ({}, {"Memory": 64 << 20, "MemorySwap": 32 << 20},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({}, {"MemorySwap": 32 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({}, {"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({}, {"MemoryReservation": 1 << 20}, "Minimum memory reservation allowed is 6MB"),
    ({}, {"Memory": 10 << 20, "MemoryReservation": 20 << 20},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({}, {"NanoCpus": 10**9, "CpuPeriod": 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({}, {"NanoCpus": 10**9, "CpuQuota": 50000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({}, {"NanoCpus": 3 * 10**9}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({}, {"CpuPeriod": 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({}, {"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({}, {"CpuShares": -1}, "invalid CPU shares (-1): value must be a positive integer"),
    ({}, {"CpusetCpus": "0-3"}, "Requested CPUs are not available - requested 0-3, available: 0-1"),
    ({}, {"CpusetMems": "1"}, "Requested memory nodes are not available - requested 1, available: 0"),
    ({}, {"CpusetCpus": "1-0"}, "Invalid value 1-0 for cpuset cpus: invalid range format: 1-0"),
    ({}, {"CpusetCpus": "a"}, "Invalid value a for cpuset cpus: invalid format: a"),
    ({}, {"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({}, {"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 2000},
     "cpu real-time runtime cannot be higher than cpu real-time period"),
    ({}, {"IOMaximumBandwidth": 1},
     "invalid option: QoS maximum bandwidth configuration is not supported on linux"),
    ({}, {"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({}, {"ShmSize": -1}, "SHM size can not be less than 0"),
    ({}, {"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({}, {"IpcMode": "container:"}, "invalid IPC mode: container:"),
    ({}, {"PidMode": "private"}, "invalid PID mode: private"),
    ({}, {"UTSMode": "private"}, "invalid UTS mode: private"),
    ({}, {"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
    ({}, {"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
    ({}, {"RestartPolicy": {"Name": "sometimes"}},
     "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or "
     "'unless-stopped'"),
    ({}, {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ({}, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}},
     "invalid restart policy: maximum retry count cannot be negative"),
    ({}, {"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
     "can't create 'AutoRemove' container with restart policy"),
    ({}, {"CapAdd": ["FOO"]}, 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    ({}, {"CapDrop": ["sys_resource"]}, 'invalid CapDrop: capability not supported by your kernel or not available '
     'in the current environment: "CAP_SYS_RESOURCE"'),
    ({}, {"SecurityOpt": ["bogus"]}, 'invalid --security-opt 1: "bogus"'),
    ({}, {"SecurityOpt": ["no-new-privileges=maybe"]}, 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ({}, {"SecurityOpt": ["profile=x"]}, 'invalid --security-opt 2: "profile=x"'),
    ({}, {"SecurityOpt": ["seccomp={not json"]},
     "Decoding seccomp profile failed: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ({}, {"Binds": ["myvol:/data"]}, "invalid volume specification: 'myvol:/data': named volume 'myvol': named "
     "volumes are not supported yet, bind an absolute host path instead"),
    ({}, {"Binds": ["/src:data"]}, "invalid volume specification: '/src:data': invalid mount config for type "
     "\"bind\": invalid mount path: 'data' mount path must be absolute"),
    ({}, {"Binds": ["/src:/"]}, "invalid volume specification: '/src:/': invalid mount config for type \"bind\": "
     "invalid specification: destination can't be '/'"),
    ({}, {"Binds": ["/src:/d:rx"]}, "invalid mode: rx"),
    ({}, {"Binds": ["/src:ro"]}, "invalid volume specification: '/src:ro'"),
    ({}, {"Binds": ["/a:/d", "/b:/d"]}, "Duplicate mount point: /d"),
    ({}, {"Binds": ["/a:/run"], "Tmpfs": {"/run": ""}}, "Duplicate mount point: /run"),
    ({}, {"Mounts": [{"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x"}]},
     'invalid mount config for type "bind": bind source path does not exist: /nonexistent-berth'),
    ({}, {"Mounts": [{"Type": "volume", "Source": "v", "Target": "/x"}]},
     'invalid mount config for type "volume": volume mounts are not supported yet'),
    ({}, {"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/x"}]},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({}, {"Mounts": [{"Type": "tmpfs", "Target": "/x", "BindOptions": {"Propagation": "shared"}}]},
     'invalid mount config for type "tmpfs": field BindOptions must not be specified'),
    ({}, {"Mounts": [{"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["uid", "0"]]}}]},
     'invalid mount config for type "tmpfs": invalid option: uid'),
    ({}, {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "up"}}]},
     'invalid mount config for type "bind": invalid propagation mode: up'),
    ({}, {"Mounts": [{"Type": "nfs", "Target": "/x"}]}, 'invalid mount config for type "nfs": mount type unknown'),
    ({}, {"Mounts": [{"Type": "bind", "Source": "/"}]},
     'invalid mount config for type "bind": field Target must not be empty'),
    ({}, {"Tmpfs": {"run": ""}}, "invalid mount path: 'run' mount path must be absolute"),
    ({}, {"Tmpfs": {"/run": "bogus"}}, 'Invalid tmpfs option ["bogus"]'),
    ({}, {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}, "port publishing is not supported yet"),
    ({}, {"PublishAllPorts": True}, "port publishing is not supported yet"),  # the image exposes 80/tcp
    ({}, {"Sysctls": {"kernel.panic": "1"}}, "sysctl 'kernel.panic=1' is not allowed"),
    ({}, {"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"},
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ({}, {"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({}, {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    ({}, {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
    ({}, {"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": 5}]},
     "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 5"),
    ({}, {"ExtraHosts": ["nohost"]}, 'bad format for add-host: "nohost"'),
    ({}, {"ExtraHosts": ["h:1.2.3"]}, 'invalid IP address in add-host: "1.2.3"'),
    ({}, {"DeviceCgroupRules": ["x 1:2 rwm"]}, "invalid device cgroup rule format: 'x 1:2 rwm'"),
    ({}, {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwx"}]},
     "invalid device mode: rwx"),
    ({}, {"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]},
     'could not select device driver "" with capabilities: [[gpu]]'),
    ({}, {"VolumesFrom": ["other"]}, "--volumes-from is not supported yet"),
    ({}, {"Links": ["other:alias"]}, "links are not supported yet"),
    ({}, {"Annotations": {"": "x"}}, "invalid Annotations: the empty string is not permitted as an annotation key"),
    ({"WorkingDir": "tmp"}, {}, "the working directory 'tmp' is invalid, it needs to be an absolute path"),
    ({"StopSignal": "SIGNOPE"}, {}, "Invalid signal: SIGNOPE"),
    ({"StopSignal": "0"}, {}, "Invalid signal: 0"),
    ({"Env": ["=x"]}, {}, "invalid environment variable: =x"),
    ({"Healthcheck": {"Test": ["CMD", "x"], "Interval": 10}}, {}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Test": ["CMD", "x"], "Retries": -1}}, {}, "Retries in Healthcheck cannot be negative"),
    ({"Hostname": "h"}, {"NetworkMode": "container:other"}, "conflicting options: hostname and the network mode"),
    ({}, {"NetworkMode": "container:"}, "invalid network mode: invalid container format container:<name|id>"),
    ({}, {"NetworkMode": "container:x", "Dns": ["1.1.1.1"]}, "conflicting options: dns and the network mode"),
    ({"Hostname": "h"}, {"UTSMode": "host"}, "conflicting options: hostname and the UTS mode"),
    ({}, {"Memory": "1g"}, "json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64"),
    ({}, {"Memory": 1.5}, "json: cannot unmarshal number 1.5 into Go struct field HostConfig.Memory of type int64"),
    ({}, {"BlkioWeight": 70000}, "json: cannot unmarshal number 70000 into Go struct field HostConfig.BlkioWeight "
     "of type uint16"),
    ({"Tty": "yes"}, {}, "json: cannot unmarshal string into Go struct field Config.Tty of type bool"),
    ({"Env": "A=b"}, {}, "json: cannot unmarshal string into Go struct field Config.Env of type []string"),
    ({}, {"Ulimits": [{"Name": "nofile", "Soft": "1"}]},
     "json: cannot unmarshal string into Go struct field HostConfig.Ulimits.Soft of type int64"),
]


@pytest.mark.parametrize(("config", "host", "message"), ERRORS, ids=[e[2][:60] for e in ERRORS])
def test_errors(config: dict[str, Any], host: dict[str, Any], message: str) -> None:
    fails(body(config, **host), message)


def test_unknown_network_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"^network mynet not found$"):
        run(body(NetworkMode="mynet"))
    _, hc, _ = run(body(NetworkMode="mynet"), network_exists=lambda n: n == "mynet")
    assert hc["NetworkMode"] == "mynet"


def test_empty_body() -> None:
    with pytest.raises(InvalidArgument, match="config cannot be empty in order to create a container"):
        normalize({}, {}, name="n", cid=CID, daemon=opts())


def test_custom_seccomp_needs_kernel_support() -> None:
    fails(body(SecurityOpt=['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']),
          "seccomp is not enabled in your kernel, cannot run a custom seccomp profile",
          features=HostFeatures(seccomp=False))
    run(body(SecurityOpt=["seccomp=unconfined"]), features=HostFeatures(seccomp=False))


def test_daemon_root_binds_must_propagate(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "data")
    fails(body(Mounts=[{"Type": "bind", "Source": str(tmp_path), "Target": "/x",
                        "BindOptions": {"Propagation": "private"}}]),
          'invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is '
          f'within the daemon root, daemon root: "{root}", bind mount source: "{tmp_path}", propagation: "private"',
          data_root=root)
    run(body(Binds=[f"{tmp_path}:/x"]), data_root=root)  # no propagation given: rslave at start


def test_request_is_not_modified() -> None:
    b = body(Memory=64 << 20, Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": 1 << 30}])
    before = copy.deepcopy(b)
    run(b)
    assert b == before


# --- the parsers build shares ----------------------------------------------------------------------

def test_parse_bind() -> None:
    b = parse_bind("/src/../src:/dst/:ro,rslave,z")
    assert (b.source, b.destination, b.writable, b.propagation, b.mode) == ("/src", "/dst", False, "rslave",
                                                                            "ro,rslave,z")
    assert parse_bind("/a:/b").writable and parse_bind("/a:/b").propagation == ""
    with pytest.raises(InvalidArgument, match="anonymous volume"):
        parse_bind("/only-target")
    with pytest.raises(InvalidArgument, match="invalid mode: ro,rw"):
        parse_bind("/a:/b:ro,rw")


def test_tmpfs_options_merge_like_moby() -> None:
    assert merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "size=2m"]) == \
        ["nosuid", "nodev", "rprivate", "exec", "size=2m"]
    assert tmpfs_data({"SizeBytes": 3 << 30, "Mode": 0o1777}, True) == "ro,mode=1777,size=3g"
    assert tmpfs_data({"SizeBytes": 1536}, False) == "size=1536"
    assert tmpfs_data({"SizeBytes": 2048, "Options": [["exec"]]}, False) == "size=2k,exec"


def test_capabilities() -> None:
    avail = tuple(c for c in caps.CAPS if c != "CAP_SYS_RESOURCE")
    assert tweak_capabilities(None, None, False, avail) == list(caps.DOCKER_DEFAULT)
    got = tweak_capabilities(["net_admin", "CAP_SYS_TIME"], ["CHOWN"], False, avail)
    assert got == [c for c in caps.DOCKER_DEFAULT if c != "CAP_CHOWN"] + ["CAP_NET_ADMIN", "CAP_SYS_TIME"]
    assert tweak_capabilities(["ALL"], ["MKNOD"], False, avail) == [c for c in avail if c != "CAP_MKNOD"]
    assert tweak_capabilities(["KILL"], ["ALL"], False, avail) == ["CAP_KILL"]
    assert tweak_capabilities(None, ["all"], False, avail) == []
    assert tweak_capabilities(["KILL"], None, True, avail) == list(avail)


def test_security_opts() -> None:
    s = parse_security_opts(["no-new-privileges", "seccomp=unconfined", "apparmor=x", "label=disable"])
    assert (s.no_new_privileges, s.seccomp, s.apparmor, s.labels) == (True, "unconfined", "x", ["disable"])
    assert not parse_security_opts(["no-new-privileges:false"], daemon_nnp=True).no_new_privileges
    assert parse_security_opts([], daemon_nnp=True).no_new_privileges
    assert parse_security_opts(["writable-cgroups=true"]).writable_cgroups is True


def test_signals_cpusets_and_device_rules() -> None:
    assert parse_signal("SIGTERM") == 15 and parse_signal("kill") == 9 and parse_signal("10") == 10
    assert parse_signal("RTMIN+3") == parse_signal("SIGRTMIN") + 3
    assert parse_cpuset("0-2,5", "cpus") == {0, 1, 2, 5}
    assert parse_device_cgroup_rule("c 1:* rw") == {"allow": True, "type": "c", "major": 1, "minor": -1,
                                                     "access": "rw"}


def test_detect_describes_this_host() -> None:
    """DaemonOptions.detect() reads the real host: its cgroup version, capabilities, rlimits."""
    o = DaemonOptions.detect()
    assert o.cgroup_version in (1, 2)
    assert set(o.host_caps) == set(caps.host_bounding())
    assert DaemonOptions(cgroup_parent="x").host_caps == o.host_caps  # the plain constructor probes too
    if "CAP_SYS_RESOURCE" not in caps.from_mask(caps.current()["effective"]):
        import resource

        assert o.daemon_hard_rlimits["nofile"] == resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert o.features.cpus  # every host has a cpuset
