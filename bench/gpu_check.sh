#!/bin/bash
# The one device check of issue 13, run on the lent GPU machine from a copy of this repository:
#   bash bench/gpu_check.sh WHEEL_DIR
# Installs what the machine lacks (PyAV, colorlog: cp312 wheels carried in WHEEL_DIR), runs the
# torch-op tests on CUDA, then bench/bench_gpu.py on a 720p clip; results under $OUT (default /tmp/gpu_out).
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "${1:-../.whl}"/*.whl \
  && export PYTHONPATH=/tmp/site || exit 3
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, av, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_accel_ops.py 2>&1 | tail -n 15 | tee "$OUT/tests.txt"
timeout "${BENCH_TIMEOUT:-330}" python3 bench/bench_gpu.py --device cuda --height 720 --frames "${FRAMES:-50}" \
  --batch "${BATCH:-16}" --out "$OUT" 2>&1 | grep -v "Warning\|warn(" | tee "$OUT/bench.log" | tail -n 60
