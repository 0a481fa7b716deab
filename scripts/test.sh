#!/usr/bin/env bash
# Runs berth's whole test suite as root on this machine: installs what is missing first
# (scripts/bootstrap.sh), then lint, types and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"
