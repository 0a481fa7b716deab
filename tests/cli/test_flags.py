"""The flag parser follows pflag/cobra: the quirks docker users rely on, and the error wording."""

from __future__ import annotations

import pytest

from berth.cli.commands.run import run_flags
from berth.cli.flags import BOOL, INT, LIST, STRING, Command, Flag, UsageError
from berth.cli.validate import validate_env


def _run_cmd() -> Command:
    return Command("berth run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", run_flags(), interspersed=False, min_args=1)


def test_combined_short_flags_and_glued_values() -> None:
    o, args = _run_cmd().parse(["-it", "--rm", "-eA=1", "-e=B=2", "--env=C=3", "-e", "D=4", "-p8080:80",
                                "busybox", "sh", "-c", "echo -x"])
    assert o.interactive and o.tty and o.rm
    assert o.env == ["A=1", "B=2", "C=3", "D=4"]
    assert o.publish == ["8080:80"]
    assert args == ["busybox", "sh", "-c", "echo -x"]


def test_no_flag_parsing_after_the_image() -> None:
    o, args = _run_cmd().parse(["busybox", "--rm", "-d"])
    assert not o.rm and not o.detach
    assert args == ["busybox", "--rm", "-d"]


def test_bool_with_value_and_double_dash() -> None:
    o, args = _run_cmd().parse(["--rm=false", "--sig-proxy=0", "-d=true", "--", "-weird-image"])
    assert o.rm is False and o.sig_proxy is False and o.detach is True
    assert args == ["-weird-image"]
    assert o.changed("rm") and not o.changed("tty")


def test_interspersed_commands_take_flags_after_arguments() -> None:
    cmd = Command("berth rm", "[OPTIONS] CONTAINER [CONTAINER...]",
                  [Flag("force", "f", BOOL), Flag("volumes", "v", BOOL)], min_args=1)
    o, args = cmd.parse(["a", "-f", "b", "-v"])
    assert o.force and o.volumes and args == ["a", "b"]


def test_int_and_list_defaults() -> None:
    cmd = Command("berth ps", "[OPTIONS]", [Flag("last", "n", INT, default=-1), Flag("filter", "f", LIST),
                                            Flag("format", "", STRING)])
    o, _ = cmd.parse([])
    assert o.last == -1 and o.filter is None and o.format == ""
    o, _ = cmd.parse(["-n", "0x10", "-f", "a=b", "--filter=c=d"])
    assert o.last == 16 and o.filter == ["a=b", "c=d"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--badflag"], "unknown flag: --badflag"),
    (["-X"], "unknown shorthand flag: 'X' in -X"),
    (["-iX"], "unknown shorthand flag: 'X' in -X"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--name"], "flag needs an argument: --name"),
    (["-m", "xyz", "busybox"], "invalid argument \"xyz\" for \"-m, --memory\" flag: invalid size: 'xyz'"),
    (["--cpus", "abc", "busybox"],
     'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'),
    (["--stop-timeout", "x", "busybox"],
     'invalid argument "x" for "--stop-timeout" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (["--rm=maybe"], 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["-e", "=x", "busybox"], 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    (["--health-interval", "3x", "busybox"],
     'invalid argument "3x" for "--health-interval" flag: time: unknown unit "x" in duration "3x"'),
])
def test_errors_read_as_pflag(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        _run_cmd().parse(argv)
    assert e.value.message == message
    assert e.value.code == 125


@pytest.mark.parametrize(("rules", "args", "message"), [
    ({"min_args": 1}, [], "berth: 'berth x' requires at least 1 argument"),
    ({"min_args": 2}, ["a"], "berth: 'berth x' requires at least 2 arguments"),
    ({"max_args": 1}, ["a", "b"], "berth: 'berth x' requires at most 1 argument"),
    ({"exact": 1}, [], "berth: 'berth x' requires 1 argument"),
    ({"exact": 2}, ["a"], "berth: 'berth x' requires 2 arguments"),
    ({"no_args": True}, ["a"], "berth: 'berth x' accepts no arguments"),
    ({"min_args": 1, "max_args": 2}, [], "berth: 'berth x' requires at least 1 and at most 2 arguments"),
])
def test_argument_count_errors_read_as_cobra(rules: dict[str, object], args: list[str], message: str) -> None:
    cmd = Command("berth x", "[OPTIONS]", [], **rules)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as e:
        cmd.check_args(args)
    assert e.value.message == message and e.value.code == 1


def test_env_without_value_is_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "v1")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert validate_env("FROM_HOST") == "FROM_HOST=v1"
    assert validate_env("NOT_SET") == "NOT_SET"
    assert validate_env("A=") == "A="
