"""Mel front end: this project's torch mel vs the official librosa recipe, same audio, same thread count.

    python bench/bench_mel.py --ref-python /work/refenv/bin/python [--seconds 3.3 10] [--threads 1]

The official side runs ``utils/audio.py``'s recipe (scipy lfilter pre-emphasis,
librosa.stft, librosa mel basis built once, as ``_mel_basis`` is cached there)
in the reference venv. Both: median of 20 calls after a warm-up (first call
reported apart: librosa's numba JIT), and ours' max abs difference from the
librosa values. Writes bench/results/mel.md + .json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, statistics, sys, time
import numpy as np
seconds, threads, side, path = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
t = np.arange(int(16000 * seconds)) / 16000
wav = (0.3 * np.sin(2 * np.pi * 180 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
       + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
if side == "ours":
    import torch
    torch.set_num_threads(threads)
    sys.path.insert(0, path)
    from talkingface.media.mel import melspectrogram
    fn = lambda: melspectrogram(wav).numpy()
else:
    import librosa, scipy.signal as signal
    basis = []
    def fn():
        emphasized = signal.lfilter([1, -0.97], [1], wav)
        stft = librosa.stft(y=emphasized, n_fft=800, hop_length=200, win_length=800)
        if not basis:
            basis.append(librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600))
        db = 20 * np.log10(np.maximum(1e-5, basis[0] @ np.abs(stft))) - 20
        return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)
start = time.perf_counter(); out = fn(); first = time.perf_counter() - start
times = []
for _ in range(20):
    start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
np.save(sys.argv[5], out)
print(json.dumps({"first_s": first, "median_s": statistics.median(times)}))
'''


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser()
    parser.add_argument("--ref-python", required=True)
    parser.add_argument("--seconds", type=float, nargs="+", default=[3.3, 10.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    env = {"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    for seconds in args.seconds:
        row = {"seconds": seconds}
        for side, python in (("ours", sys.executable), ("librosa", args.ref_python)):
            out = Path(f"/tmp/mel_{side}.npy")
            res = subprocess.run([python, "-c", CHILD, str(seconds), str(args.threads), side, str(REPO), str(out)],
                                 capture_output=True, text=True, check=True, env=env)
            row[side] = json.loads(res.stdout.strip().splitlines()[-1])
        row["max_abs_diff"] = float(np.abs(np.load("/tmp/mel_ours.npy") - np.load("/tmp/mel_librosa.npy")).max())
        rows.append(row)
    lines = ["# Mel front end: ours (torch, float64) vs the official librosa recipe", "",
             f"`python bench/bench_mel.py {' '.join(sys.argv[1:])}` ({args.threads} thread, 2-core VM)", "",
             "| audio s | ours ms (median) | librosa ms (median) | librosa / ours | ours first call ms | "
             "librosa first call ms | max abs diff (of 8) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        o, lib = r["ours"], r["librosa"]
        lines.append(f"| {r['seconds']:.1f} | {1e3 * o['median_s']:.1f} | {1e3 * lib['median_s']:.1f} | "
                     f"{lib['median_s'] / o['median_s']:.2f}x | {1e3 * o['first_s']:.1f} | {1e3 * lib['first_s']:.0f} | "
                     f"{r['max_abs_diff']:.1e} |")
    out = REPO / "bench" / "results" / "mel"
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
