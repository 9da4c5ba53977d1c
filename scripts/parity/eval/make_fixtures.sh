#!/usr/bin/env bash
# Re-make tests/fixtures/eval_reference/reference.json by running the reference LSE tools.
#   bash scripts/parity/eval/make_fixtures.sh SYNCNET_PYTHON_CHECKOUT WAV2LIP_CHECKOUT [WORK]
# Env: REFPY (the reference environment's python, default /work/refenv/bin/python: torch + torchvision,
#      opencv-python, dlib, python_speech_features, scipy; see shared/ENVIRONMENT.md), PROJPY (this
#      project's python, default .venv/bin/python). Needs ffmpeg on PATH (the tools call it).
# Steps: seeded SyncNet file -> patched copy of the tools in WORK (prepare_reference.py lists each patch)
# -> PySceneDetect 0.5.1 installed apart in WORK (pip --target) -> the tools on the committed clips.
# The clips (make_clips.sh) are not re-made here: they are the inputs of the committed numbers.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
SYNCNET=$(realpath "${1:?syncnet_python checkout}")
WAV2LIP=$(realpath "${2:?Wav2Lip checkout}")
WORK=$(realpath -m "${3:-/work/refrun/lse}")
REFPY=${REFPY:-/work/refenv/bin/python}
PROJPY=${PROJPY:-$REPO/.venv/bin/python}
OUT="$REPO/tests/fixtures/eval_reference"
mkdir -p "$WORK"
cd "$REPO"
[[ -d "$WORK/scenedetect051/scenedetect" ]] || \
  "$REFPY" -m pip install -q --no-deps --target "$WORK/scenedetect051" scenedetect==0.5.1
"$PROJPY" scripts/parity/eval/make_seeded_syncnet.py "$WORK/syncnet_seeded.model"
"$PROJPY" scripts/parity/eval/prepare_reference.py --syncnet_python "$SYNCNET" --wav2lip "$WAV2LIP" \
  --out "$WORK" --scenedetect "$WORK/scenedetect051"
OMP_NUM_THREADS=1 PYTHONPATH="$WORK/scenedetect051" "$REFPY" scripts/parity/eval/run_reference.py \
  --tools "$WORK/syncnet_python" --weights "$WORK/syncnet_seeded.model" --clips "$OUT/clips" \
  --out "$OUT/reference.json"
