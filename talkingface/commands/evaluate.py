"""``python -m talkingface evaluate``: score any videos (ours, other methods', ground truth).

Published LSE numbers are known not to reproduce across pipelines; scoring every
method through this one command is the way to get comparable columns.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

from talkingface.cli import parse_overrides
from talkingface.config import Config, load_config
from talkingface.errors import ConfigError, DatasetError
from talkingface.execution import configure_threads
from talkingface.logs import log_to_file, setup_logging

log = logging.getLogger("talkingface")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".flac", ".aac") + VIDEO_SUFFIXES


def collect(spec: str, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    """A folder, a text file listing paths, or one media file -> {stem: path}."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
    elif path.is_file() and path.suffix.lower() == ".txt":
        base = path.parent
        files = [Path(line.strip()) if Path(line.strip()).is_absolute() else base / line.strip()
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif path.is_file():
        files = [path]
    else:
        raise DatasetError(f"--{what} {spec}: no such file or folder",
                           hint=f"give a folder of videos, a .txt list of paths, or one file for --{what}")
    if not files:
        raise DatasetError(f"--{what} {spec}: no media files found", hint=f"expected {', '.join(suffixes)}")
    return {f.stem: f for f in files}


def build_config(args: argparse.Namespace, rest: list[str]) -> Config:
    """The evaluation config: defaults < ``--dataset``'s layer (only when given) < files < command line.

    Without ``--dataset`` no dataset's config is read: scoring arbitrary videos uses the
    reference tools' settings (config/evaluation.yaml), not those of the bundled sample set.
    """
    overrides = parse_overrides(rest)
    if args.paired:
        overrides["pairing"] = "paired"
    for key in ("num_workers", "ray_address"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    files = [p for p in args.config_files.split(",") if p]
    return load_config(None, args.dataset, files, overrides, dataset_layer=args.dataset is not None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m talkingface evaluate",
                                     description="LSE-C/LSE-D, FID, PSNR/SSIM on any videos",
                                     epilog="config keys also work as --key=value (e.g. --lse_crop=frame)")
    parser.add_argument("--generated", required=True, help="folder / list file / video to score")
    parser.add_argument("--reference", default=None, help="reference videos, matched by file name (FID, PSNR/SSIM)")
    parser.add_argument("--audio", default=None, help="driving audio matched by name (default: each video's sound)")
    parser.add_argument("--paired", action="store_true", help="references are ground truth (enables PSNR/SSIM)")
    parser.add_argument("--out", default=None, help="result folder (default saved/evaluate-<time>)")
    parser.add_argument("--dataset", default=None, help="dataset config to take defaults from (e.g. lrs2)")
    parser.add_argument("--num_workers", type=int, default=None,
                        help="score on N Ray actors, each loading the metric networks once (default 0: in-process)")
    parser.add_argument("--ray_address", default=None, help="join a Ray cluster (auto | ray://host:10001)")
    parser.add_argument("--config_files", default="")
    parser.add_argument("--debug", action="store_true")
    args, rest = parser.parse_known_args(argv)
    config = build_config(args, rest)
    setup_logging("DEBUG" if args.debug else config["log_level"])
    configure_threads(config)
    generated = collect(args.generated, VIDEO_SUFFIXES, "generated")
    references = collect(args.reference, VIDEO_SUFFIXES, "reference") if args.reference else {}
    if args.audio and "lse" in config["metrics"] and config["lse_protocol"] == "reference":
        raise ConfigError("--audio cannot be used with lse_protocol=reference: the reference tools score each "
                          "video with its own sound track",
                          hint="mux the audio into the videos, or pass --lse_protocol=direct (numbers not "
                               "comparable with published tables)")
    audios = collect(args.audio, AUDIO_SUFFIXES, "audio") if args.audio else {}
    items = []
    from talkingface.evaluation.base import EvalItem

    for name, video in generated.items():
        if references and name not in references:
            raise DatasetError(f"no reference video named {name}.* for {video}",
                               hint="reference files must have the same names as the generated ones")
        if audios and name not in audios:
            raise DatasetError(f"no audio named {name}.* for {video}", hint="audio files must match video names")
        items.append(EvalItem(name, video, references.get(name), audios.get(name, video),
                              config["pairing"] == "paired"))
    out = Path(args.out) if args.out else Path(config["saved_dir"]) / f"evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    log_to_file(out / "run.log")
    from talkingface import scoring
    from talkingface.report import write_results
    from talkingface.scoring import ScoreStore, ScoreTask, table_aggregate
    from talkingface.weights_mode import choose_weights

    weights = choose_weights(config["weights"], scoring.required_checkpoints(config), config["checkpoint_dir"],
                             int(config["seed"]))
    # per-clip scores land in <out>/scores as they finish: the same command with the same --out resumes
    rows, aggregate = scoring.score_tasks([ScoreTask.from_eval_item(item) for item in items],
                                          scoring.eval_config(config, weights), store=ScoreStore(out / "scores"),
                                          plots_dir=out / "plots" if config["plots"] else None)
    per_clip = [{"id": r["name"], "status": "failed" if r["status"] == "failed" else "ok",
                 "error": "; ".join(f"{m}: {w}" for m, w in r.get("reasons", {}).items()) or None,
                 **{k: v for k, v in r.items() if k not in ("name", "status", "reasons")}} for r in rows]
    results = {"run_dir": str(out), "weights": weights.describe(), "per_clip": per_clip,
               "aggregate": table_aggregate(aggregate, config["pairing"]),
               "evaluation": {k: v for k, v in aggregate.items() if k not in ("lse_d", "lse_c", "psnr", "ssim", "fid")},
               "counts": {"succeeded": sum(r["status"] == "ok" for r in per_clip),
                          "failed": sum(r["status"] == "failed" for r in per_clip), "skipped": 0}}
    if weights.seeded:
        from talkingface.weights_mode import SEEDED_BANNER

        results["WARNING"] = SEEDED_BANNER
    write_results(out, results, config)
    return 1 if aggregate.get("clips", {}).get("all_failed") else 0
