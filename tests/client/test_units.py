"""Daemon selection, host parsing and the stream demultiplexer."""

from __future__ import annotations

import pytest

from berth.client.hosts import DEFAULT_HOST, parse_host, select_host, tls_config
from berth.client.stdcopy import Demuxer, StreamError, frame
from berth.errors import InvalidArgument


def test_daemon_selection_order() -> None:
    env = {"BERTH_HOST": "unix:///b", "DOCKER_HOST": "unix:///d"}
    assert select_host(["tcp://h:1"], env) == "tcp://h:1"
    assert select_host(None, env) == "unix:///b"
    assert select_host(None, {"DOCKER_HOST": "unix:///d"}) == "unix:///d"
    assert select_host(None, {}) == DEFAULT_HOST == "unix:///run/berth/berth.sock"
    with pytest.raises(InvalidArgument):
        select_host(["a", "b"], {})


@pytest.mark.parametrize(("host", "tls", "scheme", "address"), [
    ("unix:///run/x.sock", False, "unix", "/run/x.sock"),
    ("/run/x.sock", False, "unix", "/run/x.sock"),
    ("tcp://10.0.0.1:2376", False, "tcp", ("10.0.0.1", 2376)),
    ("tcp://example", False, "tcp", ("example", 2375)),
    ("tcp://example", True, "tcp", ("example", 2376)),
    ("tcp://[::1]:99", False, "tcp", ("::1", 99)),
    ("tcp://:2375", False, "tcp", ("127.0.0.1", 2375)),
    ("localhost:1234", False, "tcp", ("localhost", 1234)),
])
def test_parse_host(host: str, tls: bool, scheme: str, address: object) -> None:
    e = parse_host(host, tls)
    assert (e.scheme, e.address) == (scheme, address)


def test_parse_host_errors() -> None:
    with pytest.raises(InvalidArgument):
        parse_host("ssh://user@host")
    with pytest.raises(InvalidArgument):
        parse_host("tcp://h:port")


def test_tls_config_from_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    assert tls_config(env={}) is None
    cfg = tls_config(env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert cfg is not None and cfg.verify and cfg.ca == str(tmp_path / "ca.pem")
    cfg = tls_config(tls=True, env={"DOCKER_CERT_PATH": str(tmp_path)})
    assert cfg is not None and not cfg.verify and cfg.cert == str(tmp_path / "cert.pem")


def test_demux_reassembles_frames_split_anywhere() -> None:
    data = frame(1, b"out") + frame(2, b"err") + frame(1, b"") + frame(0, b"echo") + frame(1, b"x" * 70000)
    for step in (1, 3, 8, 9, 4096):
        d = Demuxer()
        got: list[tuple[int, bytes]] = []
        for i in range(0, len(data), step):
            got += d.feed(data[i:i + step])
        assert got == [(1, b"out"), (2, b"err"), (1, b"echo"), (1, b"x" * 70000)]
        assert not d.partial


def test_demux_stream_3_is_an_error_and_bad_headers_fail() -> None:
    d = Demuxer()
    assert d.feed(frame(1, b"a")) == [(1, b"a")]
    with pytest.raises(StreamError, match="error from daemon in stream: boom"):
        d.feed(frame(3, b"boom"))
    with pytest.raises(StreamError, match="Unrecognized input header: 9"):
        Demuxer().feed(bytes([9, 0, 0, 0, 0, 0, 0, 1, 0]))
