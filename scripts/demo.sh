#!/usr/bin/env bash
# berth's demo, on a fresh machine of this kind, as root: installs what is missing, then
#  1. runs a container straight through berth-runtime (runc's command line) from a busybox root
#     filesystem made from Debian's busybox-static, printing its hostname, pid 1 and cgroup limits;
#  2. starts berthd in the background (log /var/log/berth/berthd.log, pid file /run/berth/berthd.pid,
#     socket /run/berth/berth.sock), loads busybox:latest, and shows a Docker user's first minutes
#     through `berth` and through the real `docker` CLI.
# Stop the daemon afterwards with:  kill $(cat /run/berth/berthd.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
PATH=/usr/local/bin:$PATH
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

# --- 1. the runtime alone -------------------------------------------------------------------------
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle="$work/bundle"
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
chroot "$bundle/rootfs" /bin/busybox --install -s /bin
mkdir -p "$bundle/rootfs/"{proc,sys,dev,tmp,etc}
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
berth-runtime spec --bundle "$bundle"
.venv/bin/python - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["hostname"] = "berth-demo"
spec["process"]["args"] = ["sh", "-c",
    'echo "hostname: $(hostname)"; echo "pid: $$"; '
    'echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"; '
    'echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"; '
    'echo "capabilities: $(grep CapEff /proc/self/status)"']
spec["linux"]["cgroupsPath"] = "/berth-demo"
spec["linux"]["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 32}})
json.dump(spec, open(path, "w"), indent=1)
PY
run berth-runtime --root "$work/state" run --bundle "$bundle" berth-demo

# --- 2. berthd and the docker CLI ---------------------------------------------------------------
mkdir -p /var/log/berth
if ! [ -S /run/berth/berth.sock ] || ! berth version >/dev/null 2>&1; then
  say "berthd &   (log: /var/log/berth/berthd.log)"
  nohup berthd >> /var/log/berth/berthd.log 2>&1 &
  for _ in $(seq 100); do [ -S /run/berth/berth.sock ] && break; sleep 0.1; done
fi
berth image inspect busybox >/dev/null 2>&1 || run berth image bootstrap busybox
run berth run --rm busybox echo "hello from berth"
run berth run -d --name demo busybox sh -c 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 1; done'
sleep 2
run berth ps
run berth logs demo
run berth exec demo sh -c 'echo "exec sees pid 1 as: $(cat /proc/1/cmdline | tr "\0" " ")"'
export DOCKER_HOST=unix:///run/berth/berth.sock
run docker run --rm busybox uname -a
run docker ps
run docker stop -t 1 demo
run docker rm demo
run docker images
say "berthd keeps running; stop it with:  kill \$(cat /run/berth/berthd.pid)"
