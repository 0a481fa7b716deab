#!/usr/bin/env bash
# Installs everything berth needs on a fresh Debian 12 machine (as root), idempotently:
# Debian packages, a venv in .venv with berth installed editable, and the console scripts
# linked into /usr/local/bin. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" != 0 ]; then
  echo "bootstrap: run as root (berth manages namespaces, mounts and cgroups)" >&2
  exit 1
fi

# Debian packages: the container userland for the demo and tests (busybox-static, tini),
# kernel tooling (iptables, iproute2), and the peers that tests and benchmarks compare
# against (runc, crun, docker.io, skopeo, umoci, docker-registry).
APT_PKGS=(busybox-static tini iptables iproute2 libseccomp2 runc crun skopeo umoci
          docker.io docker-registry hyperfine zstd mmdebstrap uidmap procps psmisc time openssl)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# A venv from the real interpreter, never through pyenv's shim (it costs ~150 ms a start).
PY=${BERTH_PYTHON:-}
if [ -z "$PY" ]; then
  for c in /root/.pyenv/versions/3.11*/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3.11 \
           "$(command -v python3.11 || true)" "$(command -v python3 || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { PY=$c; break; }
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.berth-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: pip install -e '.[dev]'"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
  touch "$stamp"
fi

# Lean launchers in place of pip's: pip's console scripts import `re` (~5 ms) before berth even
# starts, and every container start through berth-runtime pays for it. The two short-lived commands
# also skip `site` (-I -S, ~2 ms): their path is set here instead (berth's source and the venv's
# packages, after the standard library), and -I keeps the environment's PYTHON* settings out of them.
site_packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for spec in "berth:berth.cli.main:-IS" "berthd:berth.daemon.main:" "berth-runtime:berth.runtime.cli:-IS"; do
  IFS=: read -r name module flags <<< "$spec"
  {
    printf '#!%s%s\n' "$ROOT/.venv/bin/python" "${flags:+ $flags}"
    if [ -n "$flags" ]; then
      # appended, not prepended: the standard library is found first, without a look in these
      printf 'import sys\nsys.path += [%s, %s]\n' "'$ROOT/src'" "'$site_packages'"
    else
      printf 'import sys\n'
    fi
    printf 'from %s import main\nsys.exit(main())\n' "$module"
  } > ".venv/bin/$name.tmp"
  chmod 755 ".venv/bin/$name.tmp"
  mv ".venv/bin/$name.tmp" ".venv/bin/$name"
done

# Byte-compile now: with PYTHONDONTWRITEBYTECODE set (as on these machines) Python would
# otherwise compile every module from source on each start of berth-runtime.
.venv/bin/python -m compileall -q src >/dev/null

# Console scripts on PATH, pointing into the venv.
for s in berth berthd berth-runtime; do
  ln -sf "$ROOT/.venv/bin/$s" "/usr/local/bin/$s"
done
