"""Fast unit tests of the API layer's pure logic: versions, filters, signals, stdcopy, JSON streams."""

from __future__ import annotations

import asyncio
import json
import os
import signal as sig
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.api import jsonstream, params, stdcopy, version
from berth.api.routes.containers import rfc3339_nano
from berth.errors import InvalidArgument, NotFound


def test_version_prefix_split_and_compare() -> None:
    assert version.split_path("/v1.44/containers/json") == ("1.44", "/containers/json")
    assert version.split_path("/v1.24/_ping") == ("1.24", "/_ping")
    assert version.split_path("/containers/json") == (None, "/containers/json")
    assert version.split_path("/volumes/v1.44/x") == (None, "/volumes/v1.44/x")
    assert version.split_path("/v1.44") == (None, "/v1.44")  # a prefix alone is not a route
    assert version.split_path("/vfoo/x") == (None, "/vfoo/x")
    assert version.less_than("1.9", "1.24") and version.less_than("1.24", "1.44")
    assert not version.less_than("1.44", "1.44") and version.at_least("1.44.0", "1.44")
    assert version.less_than("1.44", "1.100")


def test_version_check_messages() -> None:
    version.check("1.24")
    version.check("1.44")
    with pytest.raises(InvalidArgument) as e:
        version.check("1.23")
    assert str(e.value) == ("client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade "
                            "your client to a newer version")
    with pytest.raises(InvalidArgument) as e:
        version.check("1.45")
    assert str(e.value) == "client version 1.45 is too new. Maximum supported API version is 1.44"


def test_filters_both_shapes() -> None:
    assert params.filters(None) == {} and params.filters("") == {}
    assert params.filters('{"label":{"a=b":true,"c":false},"status":{"exited":true}}') == {
        "label": ["a=b"], "status": ["exited"]}
    assert params.filters('{"label":["com.docker.compose.project=proj","x"]}') == {
        "label": ["com.docker.compose.project=proj", "x"]}
    for bad in ("{", "[1]", '{"a":1}', "null"):
        with pytest.raises(InvalidArgument):
            params.filters(bad)
    with pytest.raises(InvalidArgument) as e:
        params.validate_filters({"bogus": []}, {"label"})
    assert str(e.value) == "invalid filter 'bogus'"


def test_signals() -> None:
    assert params.signal("KILL") == 9 and params.signal("SIGKILL") == 9 and params.signal("sigterm") == 15
    assert params.signal("9") == 9 and params.signal("HUP") == int(sig.SIGHUP)
    assert params.signal("RTMIN") == int(sig.SIGRTMIN)
    assert params.signal("RTMIN+3") == int(sig.SIGRTMIN) + 3 and params.signal("RTMAX-1") == int(sig.SIGRTMAX) - 1
    for bad in ("0", "-1", "NOPE", "", "999"):
        with pytest.raises(InvalidArgument) as e:
            params.signal(bad)
        assert str(e.value) == f"invalid signal: {bad}"


def test_timestamps() -> None:
    assert params.timestamp("", "since") is None
    assert params.timestamp("1700000000", "since") == 1700000000.0
    assert params.timestamp("1700000000.5", "since") == 1700000000.5
    assert params.timestamp("2023-11-14T22:13:20Z", "since") == 1700000000.0
    with pytest.raises(InvalidArgument):
        params.timestamp("yesterday", "since")
    assert rfc3339_nano(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"


def test_registry_auth_header() -> None:
    assert params.registry_auth(None) is None
    assert params.registry_auth("e30=") is None  # "{}": the CLI's "no credentials"
    assert params.registry_auth("e30") is None  # unpadded
    enc = "eyJ1c2VybmFtZSI6ImJvYiIsInBhc3N3b3JkIjoicz9jcmV0In0="  # urlsafe, with ? in the password
    assert params.registry_auth(enc) == {"username": "bob", "password": "s?cret"}
    assert params.registry_auth("!!!") is None


def test_stdcopy_frame_layout() -> None:
    assert stdcopy.frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert stdcopy.frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    assert stdcopy.demux(stdcopy.frame(1, b"a") + stdcopy.frame(2, b"b") + stdcopy.frame(1, b"c")) == (b"ac", b"b")
    with pytest.raises(ValueError):
        stdcopy.demux(stdcopy.frame(1, b"abc")[:-1])


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.binary(max_size=300)), max_size=20),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=10))
def test_stdcopy_reader_any_split(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(stdcopy.frame(s, d) for s, d in frames)
    r = stdcopy.FrameReader()
    got: list[tuple[int, bytes]] = []
    pos = i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        got.extend(r.feed(data[pos : pos + n]))
        pos += n
        i += 1
    assert got == frames and r.pending == 0


def collect(resp_body: object) -> list[dict[str, object]]:
    async def run() -> list[bytes]:
        return [c async for c in resp_body]  # type: ignore[attr-defined]

    return [json.loads(line) for line in b"".join(asyncio.run(run())).split(b"\r\n") if line]


def test_json_stream_errors_before_and_after_first_message() -> None:
    async def fails_first() -> AsyncIterator[dict[str, object]]:
        raise NotFound("pull access denied for x")
        yield {}

    async def fails_later() -> AsyncIterator[dict[str, object]]:
        yield jsonstream.status("Pulling fs layer", id="abc")
        raise InvalidArgument("broken layer")

    with pytest.raises(NotFound):
        asyncio.run(jsonstream.json_stream_response(fails_first()))
    resp = asyncio.run(jsonstream.json_stream_response(fails_first(), in_band_errors=True))
    assert resp.status == 200
    assert collect(resp.body) == [{"errorDetail": {"message": "pull access denied for x"},
                                   "error": "pull access denied for x"}]

    async def later() -> list[dict[str, object]]:
        resp = await jsonstream.json_stream_response(fails_later())
        assert resp.headers == [("Content-Type", "application/json")]
        return [json.loads(line) async for line in resp.body]  # type: ignore[union-attr]

    assert asyncio.run(later()) == [
        {"status": "Pulling fs layer", "id": "abc"},
        {"errorDetail": {"message": "broken layer"}, "error": "broken layer"},
    ]


def test_json_stream_lines_end_with_crlf() -> None:
    assert jsonstream.encode({"stream": "Step 1/2 : FROM busybox"}) == b'{"stream":"Step 1/2 : FROM busybox"}\r\n'
    assert jsonstream.progress("Downloading", "abc", 5, 10) == {
        "status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"}


def test_hostinfo_facts() -> None:
    from berth.api import hostinfo

    assert hostinfo.kernel_version() == os.uname().release
    assert hostinfo.mem_total() > 0 and hostinfo.ncpu() >= 1
    assert hostinfo.goarch() in ("amd64", "arm64") or hostinfo.goarch() == os.uname().machine
