"""JSON-message streams rendered as docker's jsonmessage renders them."""

from __future__ import annotations

import pytest

from berth.cli.jsonmessage import JSONMessageError, display_stream, progress_string

PULL = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
    {"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "progress": "[==>  ]", "id": "aaa"},
    {"status": "Download complete", "progressDetail": {}, "id": "aaa"},
    {"status": "Pull complete", "progressDetail": {}, "id": "bbb"},
    {"status": "Digest: sha256:abc"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def render(msgs: list[dict[str, object]], tty: bool, width: int = 80) -> str:
    out: list[str] = []
    display_stream(msgs, out.append, tty, width)
    return "".join(out)


def test_plain_output_skips_progress_bars() -> None:
    assert render(PULL, False) == (
        "latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\n"
        "aaa: Download complete\nbbb: Pull complete\nDigest: sha256:abc\n"
        "Status: Downloaded newer image for busybox:latest\n")


def test_terminal_output_redraws_each_layer_line_in_place() -> None:
    out = render(PULL, True)
    # each layer gets a line; updates move up to it, erase, rewrite, and move back down
    assert out.startswith("latest: Pulling from library/busybox\n"
                          "\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B"
                          "\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B"
                          "\x1b[2A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[2B")
    assert out.endswith("Digest: sha256:abc\nStatus: Downloaded newer image for busybox:latest\n")


def test_progress_bar_width_rules() -> None:
    p = {"current": 500, "total": 1000}
    assert progress_string(p, 80) == "    500B/1kB"
    assert progress_string(p, 120) == "[" + "=" * 25 + ">" + " " * 25 + "]     500B/1kB"
    assert progress_string({"current": 7}, 80) == "      7B"
    assert progress_string({"current": 3, "total": 9, "units": "items"}, 80) == "3/9 items"
    assert progress_string({}, 80) == ""


def test_error_detail_fails_and_plain_stream_text_passes_through() -> None:
    out: list[str] = []
    with pytest.raises(JSONMessageError) as e:
        display_stream([{"stream": "Loaded image: x\n"}, {"errorDetail": {"message": "boom"}, "error": "boom"}],
                       out.append, False)
    assert e.value.message == "boom"
    assert "".join(out) == "Loaded image: x\n"
    aux: list[object] = []
    display_stream([{"aux": {"Tag": "1"}}], out.append, False, aux=aux.append)
    assert aux == [{"aux": {"Tag": "1"}}]
