"""Per-stage and per-network profile of the pipeline at default settings (seeded weights, full workload).

    python bench/profile_pipeline.py [--frames 12] [--threads 1] [--height 0] [--name profile-cpu] [--set key=value ...]

Runs the default pipeline on the first ``--frames`` frames of the sample clip
(``--height 720`` upscales it to a 720p clip first) with ``bench/workload.py``'s
substituted detections, so GPEN, GFPGAN and ParseNet do the work they do on
official weights. Reports, per pipeline stage and per top-level network
(forward hooks on every module without a parent call in flight), wall seconds,
and process CPU seconds per output second. Writes bench/results/<name>.md + .json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class NetworkTimer:
    """Wall time per top-level network class, from global forward hooks (nested modules not double-counted)."""

    def __init__(self) -> None:
        import torch

        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[tuple[str, float]] = []
        self._handles = [torch.nn.modules.module.register_module_forward_pre_hook(self._pre),
                         torch.nn.modules.module.register_module_forward_hook(self._post)]

    def _pre(self, module, args) -> None:
        self._stack.append((type(module).__name__, time.perf_counter(), time.thread_time()))

    def _post(self, module, args, output) -> None:
        name, start, cpu_start = self._stack.pop()
        if not self._stack:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.thread_time() - cpu_start
            self.calls[name] = self.calls.get(name, 0) + 1

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def make_clip(tmp: Path, frames: int, height: int) -> tuple[Path, Path]:
    import cv2
    import numpy as np

    from talkingface.media import load_audio, read_video, write_video, write_wav

    clip = read_video(REPO / "dataset/video-retalking/astronaut_a.mp4")
    pixels = np.asarray(clip.frames[:frames])
    if height:
        width = int(round(height * 16 / 9)) // 2 * 2
        canvas = np.full((len(pixels), height, width, 3), 90, np.uint8)
        side = height // 2
        y0, x0 = height // 4, (width - side) // 2
        for i, frame in enumerate(pixels):
            canvas[i, y0:y0 + side, x0:x0 + side] = cv2.resize(frame, (side, side), interpolation=cv2.INTER_CUBIC)
        pixels = canvas
    write_video(tmp / "face.mp4", pixels, 25)
    write_wav(tmp / "a.wav", load_audio(REPO / "dataset/video-retalking/astronaut_b.wav")[: frames * 640])
    return tmp / "face.mp4", tmp / "a.wav"


def run(frames: int, threads: int, height: int, overrides: dict, keep_output: str | None = None) -> dict:
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    import workload

    from talkingface.config import load_config
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline
    from talkingface.weights.policy import choose_weights

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        face, audio = make_clip(tmp, frames, height)
        values = {"weights": "seeded", "device": "cpu", "saved_dir": str(tmp / "saved"), "max_seconds": None,
                  "num_threads": threads, **overrides}
        config = load_config("video_retalking", "video-retalking", (), values)
        weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        pipe = VideoReTalkingPipeline.from_config(config, weights)
        frames_in, _ = pipe.read(face)
        crops = np.zeros((1, 256, 256, 3), np.uint8)
        pipe.parts.crop(frames_in.head(1) if hasattr(frames_in, "head") else frames_in[:1], crops)
        substitutes = workload.install(pipe, frames_in, crops, config=config)
        load_wall, load_cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        timer = NetworkTimer()
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        pipe(face=face, audio=audio, outfile=tmp / "out.mp4")
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        timer.close()
        if keep_output:
            import shutil

            shutil.copyfile(tmp / "out.mp4", keep_output)
        out_frames = pipe.last_output_frames  # written, not read: the official drops frames past the last mel window
    return {"frames": frames, "threads": threads, "height": height, "overrides": overrides,
            "load_wall_s": load_wall, "load_cpu_s": load_cpu, "wall_s": wall, "cpu_s": cpu,
            "cpu_s_per_output_s": cpu / (out_frames / 25), "stages_s": pipe.timings, "networks_s": timer.seconds,
            "networks_cpu_s": timer.cpu_seconds,
            "network_calls": timer.calls, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "output_frames": out_frames, "detector_calls": substitutes["calls"]}


def render(result: dict, command: str) -> str:
    seconds = result["output_frames"] / 25
    lines = [f"# Pipeline profile: {result['frames']} input frames, {result['output_frames']} output ({seconds:.2f} s of output), {result['threads']} thread(s)"
             + (f", {result['height']}p" if result["height"] else ", sample clip 256x256"), "",
             f"`{command}`  ",
             "Seeded weights (speed only: seeded and official weights cost the same), full workload "
             "(bench/workload.py: substituted real detections, ParseNet run), first run (no stage cache), "
             f"settings: defaults{' + ' + json.dumps(result['overrides']) if result['overrides'] else ''}.", "",
             f"**{result['cpu_s_per_output_s']:.1f} CPU s per output second**; wall {result['wall_s']:.1f} s, "
             f"CPU {result['cpu_s']:.1f} s, model load {result['load_wall_s']:.1f} s (not counted), "
             f"peak RSS {result['peak_rss_mb']:.0f} MB.", "",
             "| pipeline stage | wall s | share | s per output s |", "|---|---:|---:|---:|"]
    total = result["wall_s"]
    for name, value in sorted(result["stages_s"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {value:.2f} | {100 * value / total:.0f} % | {value / seconds:.1f} |")
    lines += ["", "| network (forward) | calls | wall s | thread CPU s | share of CPU | CPU s per call |",
              "|---|---:|---:|---:|---:|---:|"]
    cpu = result["cpu_s"]
    for name, value in sorted(result["networks_cpu_s"].items(), key=lambda kv: -kv[1]):
        calls = result["network_calls"][name]
        lines.append(f"| {name} | {calls} | {result['networks_s'][name]:.2f} | {value:.2f} | "
                     f"{100 * value / cpu:.0f} % | {value / calls:.3f} |")
    net_cpu = sum(result["networks_cpu_s"].values())
    lines += ["", f"Networks: {net_cpu:.1f} CPU s of {cpu:.1f} ({100 * net_cpu / cpu:.0f} %); the rest is "
              "OpenCV/numpy work (warps, blends, resizes, dlib), I/O and Python. Stage times are wall clock "
              "(the machine is shared: CPU seconds are the robust figure; thread CPU of a network is exact "
              "with one thread)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--height", type=int, default=0)
    parser.add_argument("--name", default="profile-cpu")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value (YAML values)")
    parser.add_argument("--keep-output", default=None, help="copy the output video here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    result = run(args.frames, args.threads, args.height, overrides, args.keep_output)
    command = "python bench/profile_pipeline.py " + " ".join(sys.argv[1:])
    out = REPO / "bench" / "results" / args.name
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(render(result, command))
    print(render(result, command))


if __name__ == "__main__":
    main()
