"""Human units as go-units and Go's time package write and read them."""

from __future__ import annotations

import pytest

from berth.units import (
    bytes_size,
    format_duration,
    human_duration,
    human_size,
    parse_cpus,
    parse_duration,
    ram_in_bytes,
)


@pytest.mark.parametrize(("n", "prec", "text"), [
    (0, 3, "0B"), (1984392, 3, "1.98MB"), (1984392, 4, "1.984MB"), (999, 4, "999B"), (1000, 4, "1kB"),
    (1234567890, 3, "1.23GB"), (512, 3, "512B"), (10**24 * 5, 4, "5YB"), (123456789012345678901234567, 4,
                                                                              "123.5YB"),
])
def test_human_size(n: int, prec: int, text: str) -> None:
    assert human_size(n, prec) == text


@pytest.mark.parametrize(("n", "text"), [(0, "0B"), (1536, "1.5KiB"), (8 * 1024**3, "8GiB"),
                                         (1048576 * 7.75, "7.75MiB")])
def test_bytes_size(n: float, text: str) -> None:
    assert bytes_size(n) == text


@pytest.mark.parametrize(("secs", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (14 * 86400, "2 weeks"), (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration(secs: float, text: str) -> None:
    assert human_duration(secs) == text


@pytest.mark.parametrize(("text", "n"), [("10m", 10 << 20), ("1g", 1 << 30), ("512", 512), ("1.5k", 1536),
                                         ("10MiB", 10 << 20), ("10mb", 10 << 20), ("4 KB", 4096)])
def test_ram_in_bytes(text: str, n: int) -> None:
    assert ram_in_bytes(text) == n


@pytest.mark.parametrize(("text", "err"), [("xyz", "invalid size: 'xyz'"), ("10x", "invalid suffix: 'x'"),
                                           ("10mbb", "invalid suffix: 'mbb'"), ("-1", "invalid size: '-1'")])
def test_ram_in_bytes_errors(text: str, err: str) -> None:
    with pytest.raises(ValueError, match=err):
        ram_in_bytes(text)


@pytest.mark.parametrize(("text", "ns"), [("2s", 2 * 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9),
                                          ("300ms", 300 * 10**6), ("0", 0), ("-1s", -(10**9))])
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(("ns", "text"), [(0, "0s"), (2 * 10**9, "2s"), (90 * 10**9, "1m30s"),
                                          (3661 * 10**9, "1h1m1s"), (1500 * 10**6, "1.5s"), (300 * 10**6, "300ms")])
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_parse_cpus() -> None:
    assert parse_cpus("1.5") == 1_500_000_000
    assert parse_cpus("0.001") == 1_000_000
    with pytest.raises(ValueError, match="failed to parse abc as a rational number"):
        parse_cpus("abc")
    with pytest.raises(ValueError, match="value is too precise"):
        parse_cpus("0.0000000001")
