"""Docker Bench for Security reads containers through `docker inspect --format` templates: they must
render against berthd (docker CLI 28) and render the same through `berth inspect`."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.daemon import Berthd

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")

# the forms docker-bench-security's tests/5_container_runtime.sh uses
TEMPLATES = [
    "{{ .Id }}: AppArmorProfile={{ .AppArmorProfile }}",
    "{{ .Id }}: SecurityOpt={{ .HostConfig.SecurityOpt }}",
    "{{ .Id }}: Privileged={{ .HostConfig.Privileged }}",
    "{{ .Id }}: CapAdd={{ .HostConfig.CapAdd }} CapDrop={{ .HostConfig.CapDrop }}",
    "{{ .Id }}: Memory={{ .HostConfig.Memory }}",
    "{{ .Id }}: CpuShares={{ .HostConfig.CpuShares }}",
    "{{ .Id }}: ReadonlyRootfs={{ .HostConfig.ReadonlyRootfs }}",
    "{{ .Id }}: RestartPolicyName={{ .HostConfig.RestartPolicy.Name }} "
    "MaximumRetryCount={{ .HostConfig.RestartPolicy.MaximumRetryCount }}",
    "{{ .Id }}: PidMode={{ .HostConfig.PidMode }}",
    "{{ .Id }}: IpcMode={{ .HostConfig.IpcMode }}",
    "{{ .Id }}: UTSMode={{ .HostConfig.UTSMode }}",
    "{{ .Id }}: UsernsMode={{ .HostConfig.UsernsMode }}",
    "{{ .Id }}: NetworkMode={{ .HostConfig.NetworkMode }}",
    "{{ .Id }}: Devices={{ .HostConfig.Devices }}",
    "{{ .Id }}: Ulimits={{ .HostConfig.Ulimits }}",
    "{{ .Id }}: PidsLimit={{ .HostConfig.PidsLimit }}",
    "{{ .Id }}: Volumes={{ .Mounts }}",
    "{{ .Id }}: Propagation={{range $mnt := .Mounts}} {{json $mnt.Propagation}} {{end}}",
    "{{ .Id }}: User={{ .Config.User }}",
]


def test_docker_bench_templates(berthd: Berthd, tmp_path: str) -> None:
    d = berthd.docker
    cid = d("run", "-d", "--read-only", "--cap-drop", "NET_RAW", "--pids-limit", "100", "-m", "64m",
            "--security-opt", "no-new-privileges", "--restart", "on-failure:3", "-v", f"{tmp_path}:/data:ro",
            "busybox", "sleep", "60").stdout.strip()
    try:
        for t in TEMPLATES:
            r = d("inspect", "--format", t, cid)
            assert r.returncode == 0, (t, r.stderr)
            b = subprocess.run([BERTH, "inspect", "--format", t, cid], env=berthd.env(), capture_output=True,
                               text=True, timeout=30)
            assert b.stdout == r.stdout, (t, b.stdout, b.stderr, r.stdout)
        out = d("inspect", "--format", TEMPLATES[2], cid).stdout
        assert out.strip().endswith("Privileged=false")
        assert "no-new-privileges" in d("inspect", "--format", TEMPLATES[1], cid).stdout
        assert "ReadonlyRootfs=true" in d("inspect", "--format", TEMPLATES[6], cid).stdout
        assert "PidsLimit=100" in d("inspect", "--format", TEMPLATES[15], cid).stdout
        assert "MaximumRetryCount=3" in d("inspect", "--format", TEMPLATES[7], cid).stdout
    finally:
        d("rm", "-f", cid)
