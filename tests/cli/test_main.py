"""The command line's entry: daemon selection, help, unknown commands and usage errors as docker has them."""

from __future__ import annotations

import os

from tests.cli.conftest import needs_docker_cli, run_berth, run_docker
from tests.cli.stub import Stub, json_response


def _env(tmp_path: os.PathLike[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BERTH_"))}
    env.update(DOCKER_CONFIG=str(tmp_path), **extra)
    return env


def test_daemon_selection_flag_then_berth_host_then_docker_host(tmp_path: os.PathLike[str]) -> None:
    a, b, c = (Stub(os.path.join(tmp_path, f"{n}.sock")) for n in "abc")
    for s in (a, b, c):
        s.routes[("GET", "/containers/json")] = json_response([])
    try:
        env = _env(tmp_path, BERTH_HOST=f"unix://{b.path}", DOCKER_HOST=f"unix://{c.path}")
        assert run_berth(["-H", f"unix://{a.path}", "ps"], env).returncode == 0
        assert run_berth(["ps"], env).returncode == 0
        env.pop("BERTH_HOST")
        assert run_berth(["ps"], env).returncode == 0
        assert [len(s.requests()) for s in (a, b, c)] == [1, 1, 1]
        assert all(s.requests()[0].path == "/v1.41/containers/json" for s in (a, b, c))
    finally:
        for s in (a, b, c):
            s.close()


def test_default_socket_is_berthd_s(tmp_path: os.PathLike[str]) -> None:
    p = run_berth(["ps"], _env(tmp_path))
    if os.path.exists("/run/berth/berth.sock"):
        return
    assert p.returncode == 1
    assert p.stderr == ("Cannot connect to the Docker daemon at unix:///run/berth/berth.sock. "
                        "Is the docker daemon running?\n")


def test_help_and_version(tmp_path: os.PathLike[str]) -> None:
    p = run_berth([], _env(tmp_path))
    assert p.returncode == 0 and p.stdout.startswith("Usage:  berth [OPTIONS] COMMAND")
    assert "  run         Create and run a new container from an image" in p.stdout
    p = run_berth(["ps", "--help"], _env(tmp_path))
    assert p.returncode == 0 and "Usage:  berth ps [OPTIONS]" in p.stdout and "  -a, --all" in p.stdout
    p = run_berth(["image", "--help"], _env(tmp_path))
    assert p.returncode == 0 and "Usage:  berth image COMMAND" in p.stdout
    p = run_berth(["--version"], _env(tmp_path))
    assert p.returncode == 0 and p.stdout.startswith("berth version ")


@needs_docker_cli
def test_command_line_mistakes_read_as_docker(tmp_path: os.PathLike[str]) -> None:
    env = _env(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/nothing.sock")
    for args in (["nosuchcmd"], ["ps", "extra"], ["ps", "--badflag"], ["ps", "-X"], ["rm"], ["logs"],
                 ["exec", "c"], ["container", "nosuch"], ["image", "ls", "a", "b"], ["stop", "-t", "x", "c"],
                 ["inspect"], ["run", "-e"], ["cp", "a"], ["tag", "a"], ["port"], ["events", "x"]):
        want = run_docker(args, env)
        got = run_berth(args, env)
        norm = want.stderr.replace("docker: ", "berth: ").replace("'docker ", "'berth ") \
            .replace("Usage:  docker ", "Usage:  berth ").replace("\nSRun '", "\nRun '") \
            .replace("command: docker ", "command: berth ").replace("\tdocker ", "\tberth ")
        assert (got.returncode, got.stderr) == (want.returncode, norm), args
