#!/usr/bin/env bash
# One-step install: .venv with the pinned requirements (CPU torch). `--dev` adds the test tools.
# Idempotent: does nothing when .venv already matches the requirement files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
reqs=requirements.txt
[[ "${1:-}" == "--dev" ]] && reqs=requirements-dev.txt
stamp=.venv/.installed-$(cat requirements.txt "$reqs" | sha256sum | cut -c1-16)
if [[ -f "$stamp" ]]; then
  echo "already installed: .venv matches $reqs (nothing to do; delete $stamp to force a reinstall)"
  exit 0
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: pip then takes the local CPU wheel instead of the CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -r "$reqs"
touch "$stamp"
echo "installed $reqs into .venv"
