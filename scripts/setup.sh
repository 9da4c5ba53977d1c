#!/usr/bin/env bash
# One-step install: .venv with the pinned requirements (CPU torch). `--dev` adds the test tools.
# Idempotent: does nothing when .venv already matches the requirement files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
reqs=requirements.txt
[[ "${1:-}" == "--dev" ]] && reqs=requirements-dev.txt
# ffmpeg (the program): lse_protocol=reference runs the reference LSE tools' media chain with it.
if ! command -v ffmpeg >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    apt-get install -y -qq ffmpeg >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq ffmpeg; }
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y -qq ffmpeg || { sudo apt-get update -qq && sudo apt-get install -y -qq ffmpeg; }
  else
    echo "warning: ffmpeg not found; install it (e.g. apt-get install ffmpeg) for lse_protocol=reference," \
         "the default LSE protocol (--lse_protocol=direct works without it)" >&2
  fi
fi
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
