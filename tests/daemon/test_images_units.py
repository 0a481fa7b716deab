"""Unit tests of the images backend's pure logic: registry settings (mirrors, insecure CIDRs and hosts,
the docker.io switch, daemon.json merging), moby's progress formatting, Go's path.Match for reference
filters, moby's timestamps and boolean filters, and pull references."""

from __future__ import annotations

import time

import pytest

from berth.daemon.distribution import credentials, human_size, progress, progress_bar, pull_reference
from berth.daemon.images import bool_filter, go_path_match, match_labels, reference_match, timestamp
from berth.daemon.registries import Endpoint, RegistrySettings, normalize_server
from berth.errors import Forbidden, InvalidArgument
from berth.oci import reference


def test_endpoints_for_docker_io_and_other_registries() -> None:
    s = RegistrySettings(mirrors=["http://127.0.0.1:5000/", "https://mirror.example"], insecure=["10.0.0.0/8",
                                                                                               "reg.lan:5000"])
    busybox = reference.parse("busybox")
    assert s.pull_endpoints(busybox) == [Endpoint("127.0.0.1:5000", True, True),
                                         Endpoint("mirror.example", False, True),
                                         Endpoint("registry-1.docker.io", False)]
    assert s.push_endpoint(busybox) == Endpoint("registry-1.docker.io", False)  # never a mirror
    assert s.pull_endpoints(reference.parse("reg.lan:5000/a/b")) == [Endpoint("reg.lan:5000", True)]
    assert s.pull_endpoints(reference.parse("10.1.2.3:80/x")) == [Endpoint("10.1.2.3:80", True)]
    assert s.pull_endpoints(reference.parse("quay.io/x")) == [Endpoint("quay.io", False)]
    assert s.is_insecure("127.0.0.1:9") and s.is_insecure("localhost:5000") and s.is_insecure("[::1]:5000")
    assert not s.is_insecure("reg.lan:5001") and not s.is_insecure("192.168.1.1:5000")
    # a name is never resolved to match a CIDR
    assert not RegistrySettings(insecure=["0.0.0.0/0"]).is_insecure("example.com:5000")


def test_docker_io_switch() -> None:
    off = RegistrySettings(default_registry="")
    with pytest.raises(Forbidden, match="no registry mirror is configured"):
        off.pull_endpoints(reference.parse("alpine"))
    with pytest.raises(Forbidden, match=r"docker\.io is disabled"):
        off.push_endpoint(reference.parse("me/app"))
    with pytest.raises(Forbidden):
        off.endpoint("index.docker.io")
    assert off.pull_endpoints(reference.parse("localhost:5000/a")) == [Endpoint("localhost:5000", True)]
    mirrored = RegistrySettings(mirrors=["http://127.0.0.1:1"], default_registry="")
    assert mirrored.pull_endpoints(reference.parse("alpine")) == [Endpoint("127.0.0.1:1", True, True)]
    assert mirrored.search_endpoints("docker.io") == [Endpoint("127.0.0.1:1", True, True)]
    moved = RegistrySettings(default_registry="registry.lan:5000")
    assert moved.pull_endpoints(reference.parse("alpine")) == [Endpoint("registry.lan:5000", False)]
    assert RegistrySettings(default_registry="docker.io").pull_endpoints(reference.parse("x")) == [
        Endpoint("registry-1.docker.io", False)]
    assert RegistrySettings().search_endpoints("docker.io") == [Endpoint("index.docker.io", False)]
    assert "docker.io" not in off.info()["IndexConfigs"]
    assert RegistrySettings(insecure=["reg.lan:5000"]).info()["IndexConfigs"]["reg.lan:5000"]["Secure"] is False


def test_settings_from_daemon_json_and_flags() -> None:
    s = RegistrySettings.load({"registry-mirrors": ["https://m.example"], "default-registry": ""},
                              insecure=["reg.lan:5000"])
    assert s.mirrors == ["https://m.example"] and s.docker_io_disabled and s.is_insecure("reg.lan:5000")
    with pytest.raises(InvalidArgument, match="specified both as a flag and in the configuration file: "
                                              r"registry-mirrors: \(from flag: \[https://a\], from file: \[https://b\]\)"):
        RegistrySettings.load({"registry-mirrors": ["https://b"]}, mirrors=["https://a"])
    for bad, msg in ((["ftp://x"], "unsupported scheme"), (["https://x/path"], "path, query, or fragment")):
        with pytest.raises(InvalidArgument, match=msg):
            RegistrySettings(mirrors=bad)
    with pytest.raises(InvalidArgument, match="should not contain '://'"):
        RegistrySettings(insecure=["http://x:5000"])
    with pytest.raises(InvalidArgument, match="default-registry must be a string"):
        RegistrySettings.load({"default-registry": 5})


def test_import_hosts() -> None:
    s = RegistrySettings(mirrors=["http://mirror.lan:5000"], insecure=["reg.lan:5000"], import_hosts=["files.lan"])
    for ok in ("127.0.0.1:8000", "localhost", "[::1]:80", "files.lan", "files.lan:8080", "mirror.lan:5000",
               "reg.lan:5000"):
        assert s.import_allowed(ok), ok
    for no in ("example.com", "10.0.0.1:80", "mirror.lan:5001"):
        assert not s.import_allowed(no), no


def test_login_server_names() -> None:
    assert normalize_server("https://index.docker.io/v1/") == "docker.io"
    assert normalize_server("") == "docker.io"
    assert normalize_server("registry-1.docker.io") == "docker.io"
    assert normalize_server("http://LOCALHOST:5000/v2/") == "localhost:5000"


def test_progress_lines_as_moby_formats_them() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 886160, 1_234_567, 10**9, 999_950)] == [
        "0B", "999B", "1kB", "886.2kB", "1.235MB", "1GB", "1000kB"]
    assert progress_bar(0, 100) == "[>                                                  ]       0B/100B"
    assert progress_bar(50, 100) == "[=========================>                         ]      50B/100B"
    assert progress_bar(100, 100) == "[==================================================>]     100B/100B"
    assert progress_bar(5, 0) == "      5B"
    assert progress("Downloading", "abc", 1, 2) == {"status": "Downloading", "id": "abc",
                                                    "progressDetail": {"current": 1, "total": 2},
                                                    "progress": progress_bar(1, 2)}


def test_go_path_match() -> None:
    cases = [("*", "busybox", True), ("*", "a/b", False), ("a/*", "a/b", True), ("b?sybox", "busybox", True),
             ("[a-c]*", "busybox", True), ("[^a-c]*", "busybox", False), ("[]a]", "]", True), ("a\\*b", "a*b", True),
             ("a\\*b", "axb", False), ("local*:5000/*/c:1", "localhost:5000/team/c:1", True)]
    for pattern, name, want in cases:
        assert go_path_match(pattern, name) is want, (pattern, name)
    for bad in ("[", "a\\", "[z-a]"):
        with pytest.raises(InvalidArgument):
            go_path_match(bad, "x")
    assert reference_match(["busybox"], "busybox:latest")  # the name without its tag matches too
    assert reference_match(["localhost:5000/app"], "localhost:5000/app:1")
    assert not reference_match(["busy"], "busybox:latest")


def test_filters_and_timestamps() -> None:
    assert bool_filter({}, "dangling") is None
    assert bool_filter({"dangling": ["true"]}, "dangling") is True
    assert bool_filter({"dangling": ["0"]}, "dangling") is False
    for bad in (["maybe"], ["true", "false"]):
        with pytest.raises(InvalidArgument, match="invalid filter 'dangling="):
            bool_filter({"dangling": bad}, "dangling")
    assert match_labels({"a": "1", "b": ""}, ["a", "a=1", "b="]) and not match_labels({"a": "1"}, ["a=2"])
    assert timestamp("1700000000.5", "until") == 1700000000.5
    assert timestamp("2024-01-01T00:00:00Z", "until") == 1704067200
    assert abs(timestamp("1h30m", "until") - (time.time() - 5400)) < 5
    with pytest.raises(InvalidArgument, match='failed to parse value as time or duration: "soon"'):
        timestamp("soon", "until")


def test_pull_references_and_credentials() -> None:
    assert str(pull_reference("busybox", "1.36")) == "docker.io/library/busybox:1.36"
    d = "sha256:" + "a" * 64
    assert str(pull_reference("docker.io/library/busybox", d)) == f"docker.io/library/busybox@{d}"
    assert pull_reference("busybox", None).tag is None  # every tag
    with pytest.raises(InvalidArgument):
        pull_reference("busybox", "sha256:nothex")
    assert credentials(None) is None and credentials({}) is None
    assert credentials({"auth": "dTpw"}) == credentials({"username": "u", "password": "p"})
    assert credentials({"identitytoken": "t"}).identity_token == "t"  # type: ignore[union-attr]
