"""`berth X` against `docker X` on the same private dockerd: same stdout byte for byte (tables,
inspect JSON, templates), same exit codes, same errors (with "docker" read as "berth")."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

from tests.cli.conftest import run_berth, run_docker
from tests.dockerd import Dockerd

pytestmark = pytest.mark.root

NONE = ["--network", "none"]


def _norm_err(text: str) -> str:
    return text.replace("docker: ", "berth: ").replace("'docker ", "'berth ").replace("Usage:  docker ",
                                                                                      "Usage:  berth ")


def same(d: Dockerd, args: list[str], input: str | None = None, retries: int = 5, check_err: bool = True,
         expect_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run docker then berth; retry a few times when the outputs differ only because time moved on."""
    for _ in range(retries):
        want = run_docker(args, d.env, input=input)
        got = run_berth(args, d.env, input=input)
        if (want.stdout, want.returncode) == (got.stdout, got.returncode) and \
                (not check_err or _norm_err(want.stderr) == got.stderr):
            break
        time.sleep(0.1)
    assert got.stdout == want.stdout, f"\ndocker:\n{want.stdout}\nberth:\n{got.stdout}\nberth stderr: {got.stderr}"
    assert got.returncode == want.returncode, f"docker: {want.stderr}\nberth: {got.stderr}"
    if check_err:
        assert got.stderr == _norm_err(want.stderr)
    if expect_rc is not None:
        assert got.returncode == expect_rc
    return got


def test_run_streams_and_exit_code(oracle: Dockerd) -> None:
    got = same(oracle, ["run", "--rm", *NONE, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], expect_rc=3)
    assert got.stdout == "out\n" and got.stderr == "err\n"


@pytest.mark.parametrize(("cmd", "rc"), [(["nosuchcmd"], 127), (["/etc"], 126), (["true"], 0)])
def test_run_start_errors_map_to_docker_exit_codes(oracle: Dockerd, cmd: list[str], rc: int) -> None:
    same(oracle, ["run", "--rm", *NONE, "busybox", *cmd], expect_rc=rc)


def test_run_missing_image_pulls_and_fails_as_docker(oracle: Dockerd) -> None:
    # a loopback port nothing listens on: the pull fails without leaving the machine
    got = same(oracle, ["run", "--rm", *NONE, "127.0.0.1:9/nosuch"], expect_rc=125)
    assert got.stderr.startswith("Unable to find image '127.0.0.1:9/nosuch:latest' locally\n")


def test_run_usage_errors(oracle: Dockerd) -> None:
    same(oracle, ["run"], expect_rc=1)
    same(oracle, ["run", "--badflag", "busybox"], expect_rc=125)
    same(oracle, ["run", "-m", "lots", "busybox"], expect_rc=125)
    same(oracle, ["run", "--rm", "--restart", "always", "busybox"], expect_rc=125)
    same(oracle, ["run", "-it", "busybox", "true"], input="", expect_rc=1)


def test_run_stdin_is_copied_and_half_closed(oracle: Dockerd) -> None:
    data = os.urandom(300_000).hex()
    p = run_berth(["run", "-i", "--rm", *NONE, "busybox", "md5sum"], oracle.env, input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == hashlib.md5(data.encode()).hexdigest()


def test_run_echoing_stdin_does_not_stall(oracle: Dockerd) -> None:
    """Input and output both large: writing stdin must never block draining the output."""
    data = os.urandom(8_000_000)
    p = run_berth(["run", "-i", "--rm", *NONE, "busybox", "cat"], oracle.env, input=data, text=False)  # type: ignore[arg-type]
    assert p.returncode == 0 and p.stdout == data


def test_run_detached_prints_the_id_and_the_container_runs(oracle: Dockerd) -> None:
    p = run_berth(["run", "-d", "--name", "bg", *NONE, "busybox", "sleep", "30"], oracle.env)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    assert len(cid) == 64
    state = oracle.docker("inspect", "-f", "{{.State.Running}} {{.Id}}", "bg").stdout.split()
    assert state == ["true", cid]


def test_ps_and_inspect_match(oracle: Dockerd) -> None:
    oracle.docker("run", "-d", "--name", "web", *NONE, "-l", "a=b", "-e", "X=1", "busybox", "sleep", "60")
    oracle.docker("run", "--name", "done", *NONE, "busybox", "sh", "-c", "exit 4")
    oracle.docker("create", "--name", "fresh", *NONE, "-v", "/anon", "busybox", "sh", "-c", "echo a long command line")
    for args in (["ps"], ["ps", "-a"], ["ps", "-a", "--no-trunc"], ["ps", "-aq"], ["ps", "-s"],
                 ["ps", "-a", "--filter", "status=exited"], ["ps", "--filter", "label=a=b", "--format", "{{.Names}}"],
                 ["ps", "-a", "--format", "table {{.Names}}\t{{.Status}}\t{{.Labels}}\t{{.Mounts}}"],
                 ["ps", "-a", "--format", "{{json .}}"], ["ps", "-n", "1"], ["container", "ls", "-a", "--format",
                                                                              "raw"]):
        same(oracle, args)
    for args in (["inspect", "web"], ["inspect", "web", "fresh", "busybox"], ["container", "inspect", "-s", "done"],
                 ["inspect", "-f", "{{.State.ExitCode}} {{.Config.Env}} {{json .Config.Labels}}", "done", "web"],
                 ["inspect", "--format", "{{ .HostConfig.PidsLimit }}|{{ .HostConfig.CapAdd }}|{{ .Mounts }}|"
                                         "{{ .HostConfig.Ulimits }}|{{ .HostConfig.SecurityOpt }}", "fresh"],
                 ["inspect", "-f", "{{range $m := .Mounts}}{{json $m.Propagation}} {{$m.Destination}}{{end}}",
                  "fresh"],
                 ["inspect", "-f", "{{.State.Health.Status}}", "web"], ["inspect", "nosuch"],
                 ["inspect", "web", "nosuch"], ["inspect", "--type", "image", "busybox"],
                 ["image", "inspect", "-f", "{{.Os}} {{.Size}} {{.RootFS}}", "busybox"], ["inspect", "-f", "json",
                                                                                          "web"]):
        same(oracle, args)


def test_images_and_history_match(oracle: Dockerd) -> None:
    oracle.docker("tag", "busybox", "localhost:5000/bb:v1")
    try:
        for args in (["images"], ["images", "-a"], ["images", "-q"], ["images", "--digests"], ["images", "busybox"],
                     ["images", "--no-trunc"], ["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
                     ["image", "ls", "--filter", "reference=localhost:5000/*"], ["images", "--format", "json"],
                     ["history", "busybox"], ["history", "--no-trunc", "-H=false", "busybox"],
                     ["history", "-q", "busybox"], ["images", "nosuchrepo"]):
            same(oracle, args)
    finally:
        oracle.docker("rmi", "localhost:5000/bb:v1")


def test_version_and_info_match_in_the_server_part(oracle: Dockerd) -> None:
    want = run_docker(["version"], oracle.env).stdout
    got = run_berth(["version"], oracle.env).stdout
    assert got.split("Server:")[1] == want.split("Server:")[1]
    assert " API version:       1.41 (downgraded from 1.50)\n" in got
    same(oracle, ["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"])
    same(oracle, ["version", "--format", "{{.Server.Version}} {{.Server.ApiVersion}} x"])
    same(oracle, ["version", "--format", "{{json .Server}}"])
    same(oracle, ["version", "--format", "{{.Client.APIVersion}} {{.Client.DefaultAPIVersion}}"])
    for _ in range(5):  # counts can move between the two calls on a busy daemon
        want = run_docker(["info"], oracle.env)
        got = run_berth(["info"], oracle.env)
        if got.stdout.split("Server:")[1] == want.stdout.split("Server:")[1]:
            break
    assert got.stdout.split("Server:")[1] == want.stdout.split("Server:")[1]
    assert got.returncode == want.returncode == 0
    same(oracle, ["info", "--format", "{{.Swarm.LocalNodeState}} {{.OSType}} {{json .Plugins.Volume}}"])
    same(oracle, ["system", "df"])


def test_logs_exec_and_lifecycle(oracle: Dockerd) -> None:
    oracle.docker("run", "-d", "--name", "svc", *NONE, "busybox", "sh", "-c",
                  "echo one; echo two >&2; echo three; sleep 60")
    deadline = time.monotonic() + 10
    while "three" not in oracle.docker("logs", "svc").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    for args in (["logs", "svc"], ["logs", "--tail", "1", "svc"], ["logs", "-t", "svc"], ["logs", "--since",
                                                                                            "1h", "svc"]):
        same(oracle, args)
    same(oracle, ["exec", "svc", "sh", "-c", "echo in; echo e >&2; exit 5"], expect_rc=5)
    same(oracle, ["exec", "-i", "svc", "cat"], input="piped\n")
    same(oracle, ["exec", "-e", "A=1", "-w", "/tmp", "-u", "1000", "svc", "sh", "-c", "echo $A $(pwd) $(id -u)"])
    same(oracle, ["exec", "svc", "nosuch"], check_err=False)
    same(oracle, ["exec", "nosuch", "true"])
    p = run_berth(["exec", "-d", "svc", "touch", "/tmp/made-by-detached-exec"], oracle.env)
    assert p.returncode == 0 and p.stdout == ""
    deadline = time.monotonic() + 5
    while oracle.docker("exec", "svc", "test", "-e", "/tmp/made-by-detached-exec").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    same(oracle, ["top", "svc"], retries=5)
    same(oracle, ["port", "svc"])
    same(oracle, ["port", "svc", "80"])
    same(oracle, ["diff", "svc"])
    same(oracle, ["pause", "svc"])
    same(oracle, ["exec", "svc", "true"])
    same(oracle, ["unpause", "svc"])
    same(oracle, ["rename", "svc", "svc2"])
    same(oracle, ["rename", "nosuch", "x"])
    assert run_berth(["rm", "svc2"], oracle.env).returncode == 1
    same(oracle, ["stop", "-t", "1", "svc2", "nosuch"])
    got = run_berth(["wait", "svc2"], oracle.env)
    assert got.stdout == "137\n", got
    same(oracle, ["start", "svc2"])
    same(oracle, ["kill", "svc2"])
    same(oracle, ["rm", "svc2", "nosuch"])
    same(oracle, ["rm", "-f", "nosuch"])


def test_start_attach_and_attach(oracle: Dockerd) -> None:
    oracle.docker("create", "--name", "once", *NONE, "busybox", "sh", "-c", "echo attached; exit 9")
    got = run_berth(["start", "-a", "once"], oracle.env)
    assert (got.stdout, got.returncode) == ("attached\n", 9), got.stderr
    oracle.docker("create", "--name", "cat", *NONE, "-i", "busybox", "cat")
    got = run_berth(["start", "-ai", "cat"], oracle.env, input="through start\n")
    assert (got.stdout, got.returncode) == ("through start\n", 0), got.stderr
    oracle.docker("run", "-d", "--name", "ticker", *NONE, "busybox", "sh", "-c",
                  "sleep 1; echo tick; echo tock >&2; exit 3")
    got = run_berth(["attach", "--no-stdin", "ticker"], oracle.env)
    assert (got.stdout, got.stderr, got.returncode) == ("tick\n", "tock\n", 3)
    same(oracle, ["attach", "ticker"])
    same(oracle, ["start", "nosuch"])


def test_cp_round_trip_keeps_modes(oracle: Dockerd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("hello")
    os.chmod(src / "sub" / "f", 0o4751)
    os.symlink("sub/f", src / "link")
    oracle.docker("run", "-d", "--name", "box", *NONE, "busybox", "sleep", "60")
    assert run_berth(["cp", str(src), "box:/tmp/"], oracle.env).returncode == 0
    listing = oracle.docker("exec", "box", "sh", "-c", "stat -c '%a %n' /tmp/tree/sub/f; readlink /tmp/tree/link; "
                                                       "cat /tmp/tree/sub/f").stdout
    assert listing == "4751 /tmp/tree/sub/f\nsub/f\nhello"
    out = tmp_path / "back"
    assert run_berth(["cp", "box:/tmp/tree", str(out)], oracle.env).returncode == 0
    assert (out / "sub" / "f").read_text() == "hello"
    assert oct(os.stat(out / "sub" / "f").st_mode & 0o7777) == "0o4751"
    assert os.readlink(out / "link") == "sub/f"
    assert run_berth(["cp", "box:/etc/passwd", str(tmp_path / "pw")], oracle.env).returncode == 0
    assert (tmp_path / "pw").read_text().startswith("root:")
    same(oracle, ["cp", "box:/nosuch", str(tmp_path / "x")])


def test_save_load_tag_rmi(oracle: Dockerd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tar = str(tmp_path / "bb.tar")
    same(oracle, ["tag", "busybox", "berth-test/copy:1"])
    assert run_berth(["save", "-o", tar, "berth-test/copy:1"], oracle.env).returncode == 0
    got = run_berth(["rmi", "berth-test/copy:1"], oracle.env)
    assert (got.stdout, got.returncode) == ("Untagged: berth-test/copy:1\n", 0), got.stderr
    got = run_berth(["load", "-i", tar], oracle.env)
    assert (got.stdout, got.returncode) == ("Loaded image: berth-test/copy:1\n", 0), got.stderr
    with open(tar, "rb") as f:
        data = f.read()
    got = run_berth(["load"], oracle.env, input=data, text=False)  # type: ignore[arg-type]
    assert got.returncode == 0 and b"Loaded image" in got.stdout
    piped = subprocess.run([*__import__("tests.cli.conftest", fromlist=["BERTH"]).BERTH, "save", "berth-test/copy:1"],
                           env=oracle.env, capture_output=True)
    assert piped.returncode == 0 and piped.stdout[:512].count(b"\0") > 0
    same(oracle, ["rmi", "nosuch:1"])
    same(oracle, ["tag", "nosuch", "x"])
    same(oracle, ["tag", "busybox", "Bad/Name"])
    got = run_berth(["rmi", "berth-test/copy:1"], oracle.env)
    assert (got.stdout, got.returncode) == ("Untagged: berth-test/copy:1\n", 0), got.stderr


def test_events_stats_export_commit(oracle: Dockerd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    since = str(int(time.time()) - 1)
    oracle.docker("run", "--rm", "--name", "ev", *NONE, "busybox", "true")
    until = str(int(time.time()) + 1)
    time.sleep(1.2)
    same(oracle, ["events", "--since", since, "--until", until, "--filter", "container=ev"])
    same(oracle, ["events", "--since", since, "--until", until, "--filter", "container=ev", "--format",
                  "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"])
    oracle.docker("run", "-d", "--name", "st", *NONE, "busybox", "sleep", "60")
    same(oracle, ["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.Container}}", "st"])
    got = run_berth(["stats", "--no-stream", "st"], oracle.env)
    assert got.stdout.startswith("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT")
    tar = tmp_path / "fs.tar"
    assert run_berth(["export", "-o", str(tar), "st"], oracle.env).returncode == 0
    assert tar.stat().st_size > 100_000
    got = run_berth(["commit", "-c", "ENV MADE_BY=berth", "-m", "msg", "st", "berth-test/committed:1"], oracle.env)
    assert got.returncode == 0 and got.stdout.startswith("sha256:")
    same(oracle, ["inspect", "-f", "{{.Config.Env}} {{.Comment}}", "berth-test/committed:1"])
    got = run_berth(["import", "-c", "CMD [\"sh\"]", str(tar), "berth-test/imported:1"], oracle.env)
    assert got.returncode == 0 and got.stdout.startswith("sha256:"), got.stderr
    same(oracle, ["image", "inspect", "-f", "{{.Config.Cmd}}", "berth-test/imported:1"])
    oracle.docker("rmi", "berth-test/committed:1", "berth-test/imported:1")


def test_prune_matches(oracle: Dockerd) -> None:
    oracle.docker("create", "--name", "gone1", *NONE, "busybox")
    oracle.docker("create", "--name", "gone2", *NONE, "busybox")
    ids = sorted(oracle.docker("ps", "-aq", "--no-trunc").stdout.split())
    got = run_berth(["container", "prune", "-f"], oracle.env)
    assert got.returncode == 0
    assert got.stdout == "Deleted Containers:\n" + "".join(f"{i}\n" for i in ids) + "\nTotal reclaimed space: 0B\n" \
        or sorted(got.stdout.split("\n")[1:3]) == ids
    same(oracle, ["container", "prune", "-f"])
    same(oracle, ["image", "prune", "-f"])
    got = run_berth(["container", "prune"], oracle.env, input="n\n")
    assert got.returncode == 1 and "container prune has been cancelled" in got.stderr


def test_errors_without_a_daemon(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/none.sock", DOCKER_CONFIG=str(tmp_path))
    for args, rc in ((["ps"], 1), (["run", "busybox"], 125), (["version"], 1)):
        want = run_docker(args, env)
        got = run_berth(args, env)
        assert got.returncode == want.returncode == rc
        assert got.stderr == _norm_err(want.stderr)
