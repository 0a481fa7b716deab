"""Go's tabwriter rules as docker's tables use them (minwidth 10, padding 3)."""

from __future__ import annotations

from berth.cli.tabwriter import tabulate


def test_columns_take_the_widest_cell_plus_padding_but_at_least_minwidth() -> None:
    assert tabulate("a\tbb\tc\naaa\tb\tc\n") == "a         bb        c\naaa       b         c\n"
    assert tabulate("CONTAINER ID\tNAMES\n0123456789ab\tx\n") == \
        "CONTAINER ID   NAMES\n0123456789ab   x\n"


def test_the_last_cell_of_a_line_is_not_a_column() -> None:
    assert tabulate("a\ta-very-long-trailing-cell\nb\tc\n") == "a         a-very-long-trailing-cell\nb         c\n"


def test_a_line_without_tabs_ends_the_block() -> None:
    text = "aaaaaaaaaaaaaa\tb\nsingle\nc\td\n"
    assert tabulate(text) == "aaaaaaaaaaaaaa   b\nsingle\nc         d\n"


def test_wide_characters_count_twice_and_empty_cells_pad() -> None:
    assert tabulate("日本\tx\n\ty\n") == "日本      x\n          y\n"


def test_no_trailing_newline_is_kept_as_written() -> None:
    assert tabulate("a\tb") == "a         b"
    assert tabulate("") == ""


def test_min_width_and_padding_are_parameters() -> None:
    assert tabulate("UID\tPID\nroot\t1\n", minwidth=20) == "UID                 PID\nroot                1\n"
    assert tabulate("a:\tb\nlonger:\tc\n", minwidth=20, padding=1) == \
        "a:                  b\nlonger:             c\n"
