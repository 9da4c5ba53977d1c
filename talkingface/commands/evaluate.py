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


def evaluate_run_dir(args: argparse.Namespace, rest: list[str]) -> int:
    """Score a run folder's outputs against its dataset's clips, by its ``pairs.json``.

    Outputs are ``videos/<video>__<audio>.mp4`` (``<id>.mp4`` in the paired setting); the pair
    says which source video is the reference. The settings are the run's own
    (``config.yaml``: its dataset's evaluation keys included), then ``--config_files``,
    then the command line. The scoring is the runner's evaluate stage
    (:func:`talkingface.scoring.evaluate_run`): per-clip scores in ``<run>/scores`` (a
    second call resumes), results written to the run folder.
    """
    import json

    from talkingface.data.base import Pair
    from talkingface.runner import Item, read_record

    overrides = parse_overrides(rest)
    run_dir = Path(overrides["run_dir"])
    if args.generated or args.reference or args.audio or args.out or args.dataset or args.paired:
        raise ConfigError("--run_dir takes the videos, references, pairing and dataset from the run folder",
                          hint="drop --generated/--reference/--audio/--out/--dataset/--paired, or score files "
                               "with --generated instead of --run_dir")
    pairs_file, config_file = run_dir / "pairs.json", run_dir / "config.yaml"
    for needed in (pairs_file, config_file):
        if not needed.is_file():
            raise DatasetError(f"--run_dir {run_dir}: no {needed.name} (not a run folder, or its run stopped "
                               "before pairing)", hint="give a folder made by run_talkingface.py "
                                                       "(saved/<model>-<dataset>-<time>)")
    for key in ("num_workers", "ray_address"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    files = [str(config_file), *[p for p in args.config_files.split(",") if p]]
    config = load_config(None, None, files, overrides, dataset_layer=False)
    setup_logging("DEBUG" if args.debug else config["log_level"])
    configure_threads(config)
    try:
        pairs = [Pair.from_dict(entry) for entry in json.loads(pairs_file.read_text(encoding="utf-8"))]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{pairs_file} is not a pairs list ({exc})", hint="re-run the run to rewrite it") from None
    items = [Item(pair, run_dir) for pair in pairs]
    records = {}
    for item in items:
        record = read_record(item)
        if record is None and item.video_out.is_file():  # an output without its item record: score it anyway
            audio = item.audio_out if item.audio_out.is_file() else item.video_out
            record = {"id": item.id, "status": "ok", "generated_video": str(item.video_out),
                      "real_video": str(item.pair.video), "audio": str(audio)}
        if record is not None:
            records[item.id] = record
    log_to_file(run_dir / "run.log")
    log.info("evaluate --run_dir %s: %d pair(s), %d output(s) found", run_dir, len(items),
             sum(r.get("status") == "ok" for r in records.values()))
    from talkingface import scoring
    from talkingface.report import write_results
    from talkingface.weights_mode import SEEDED_BANNER, choose_weights

    weights = choose_weights(config["weights"], scoring.required_checkpoints(config), config["checkpoint_dir"],
                             int(config["seed"]))
    results = {"run_dir": str(run_dir), "weights": weights.describe()}
    if weights.seeded:
        results["WARNING"] = SEEDED_BANNER
    results.update(scoring.evaluate_run(items, records, config, weights))
    write_results(run_dir, results, config)
    return 0 if results["counts"]["succeeded"] else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m talkingface evaluate",
                                     description="LSE-C/LSE-D, FID, PSNR/SSIM on any videos",
                                     epilog="--run_dir=saved/<run>: score a run folder's outputs against its "
                                            "dataset's clips (by its pairs.json), with the run's settings. "
                                            "Config keys also work as --key=value (e.g. --lse_protocol=direct, "
                                            "--lse_aggregation=per_track); defaults: config/evaluation.yaml")
    parser.add_argument("--generated", default=None, help="folder / list file / video to score")
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
    if parse_overrides(rest).get("run_dir"):
        return evaluate_run_dir(args, rest)
    if not args.generated:
        raise ConfigError("evaluate needs --generated (videos to score) or --run_dir (a run folder to score "
                          "against its dataset)", hint="e.g. --generated=out/ --reference=ref/, or "
                                                       "--run_dir=saved/video_retalking-lrs2-<time>")
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
