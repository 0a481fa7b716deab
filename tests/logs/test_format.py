"""The entry format, byte for byte: moby's escaping and Go's RFC3339Nano (expected values worked out
from jsonlog/jsonlogbytes.go and checked against a real dockerd in test_docker.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.logs.jsonline import decode, encode, escape, format_time, parse_time

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(("raw", "escaped"), [
    (b"plain text", b"plain text"),
    (b"tab\there", b"tab\\u0009here"),
    (b"<a href='x'>&amp;</a>", b"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e"),
    (b'quote " backslash \\', b'quote \\" backslash \\\\'),
    (b"cr\r lf\n", b"cr\\r lf\\n"),
    (b"\x00\x01\x1b[0m\x1f\x7f", b"\\u0000\\u0001\\u001b[0m\\u001f\x7f"),  # DEL is not escaped
    ("é ü 日本 😀".encode(), "é ü 日本 😀".encode()),  # valid UTF-8 stays raw
    ("\u2028\u2029".encode(), b"\\u2028\\u2029"),
    (b"\xff", b"\\ufffd"),  # one \ufffd per invalid byte, as Go's DecodeRune reads them
    (b"\xe2\x82A", b"\\ufffd\\ufffdA"),  # a truncated sequence: two bytes, two replacements
    (b"\xed\xa0\x80", b"\\ufffd\\ufffd\\ufffd"),  # an encoded surrogate
    (b"\xc0\x80", b"\\ufffd\\ufffd"),  # overlong
    ("\ufffd".encode(), "\ufffd".encode()),  # a real U+FFFD is valid UTF-8: raw
    (b"mixed \xc3\xa9\xff\t", "mixed é".encode() + b"\\ufffd\\u0009"),
])
def test_escape_as_moby(raw: bytes, escaped: bytes) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize(("ns", "text"), [
    (T0, b"2023-11-14T22:13:20Z"),  # a zero fraction disappears
    (T0 + 100_000_000, b"2023-11-14T22:13:20.1Z"),  # trailing zeros are trimmed
    (T0 + 123_456_789, b"2023-11-14T22:13:20.123456789Z"),
    (T0 + 1_000, b"2023-11-14T22:13:20.000001Z"),
    (T0 + 1, b"2023-11-14T22:13:20.000000001Z"),
    (0, b"1970-01-01T00:00:00Z"),
])
def test_time_is_go_rfc3339nano(ns: int, text: bytes) -> None:
    assert format_time(ns) == text
    assert parse_time(text.decode()) == ns


def test_parse_time_offsets_and_short_fractions() -> None:
    assert parse_time("2023-11-14T23:13:20.5+01:00") == T0 + 500_000_000
    assert parse_time("2023-11-14T21:13:20-01:00") == T0
    with pytest.raises(ValueError):
        parse_time("2023-11-14 22:13:20")


def test_encode_whole_line() -> None:
    line = encode(b"stdout", escape(b"hello") + b"\\n", T0 + 123_456_789)
    assert line == b'{"log":"hello\\n","stream":"stdout","time":"2023-11-14T22:13:20.123456789Z"}\n'
    assert decode(line.rstrip(b"\n")) == (1, b"hello\n", T0 + 123_456_789)


def _go_replace(data: bytes) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    return "".join("\ufffd" if "\udc80" <= c <= "\udcff" else c for c in text).encode()


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2**62), st.sampled_from([b"stdout", b"stderr"]))
def test_every_output_round_trips(data: bytes, ns: int, stream: bytes) -> None:
    line = encode(stream, escape(data), ns)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1  # one entry, one line
    obj = json.loads(line)  # always valid JSON
    assert obj["log"].encode() == _go_replace(data)
    assert decode(line[:-1]) == (1 if stream == b"stdout" else 2, _go_replace(data), ns)


@pytest.mark.parametrize("line", [
    b"", b"{", b"not json", b'{"log":"x","stream":"stdin","time":"2023-11-14T22:13:20Z"}',
    b'{"log":"x","stream":"stdout"}', b'{"log":"x","stream":"stdout","time":"yesterday"}', b"[1,2]",
    b'{"log":5,"stream":"stdout","time":"2023-11-14T22:13:20Z"}', b'{"log":"\xff","stream":"stdout"}',
])
def test_decode_skips_what_is_not_an_entry(line: bytes) -> None:
    assert decode(line) is None


def test_decode_reads_attrs_and_lone_surrogates() -> None:
    line = b'{"log":"a\\ud800b\\n","stream":"stderr","attrs":{"k":"v"},"time":"2023-11-14T22:13:20Z"}'
    assert decode(line) == (2, "a\ufffdb\n".encode(), T0)
