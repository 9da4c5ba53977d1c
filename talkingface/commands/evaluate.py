"""``python -m talkingface evaluate``: score any videos (ours, other methods', ground truth).

Published LSE numbers are known not to reproduce across pipelines; scoring every
method through this one command is the way to get comparable columns.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from talkingface.commands.common import (command_config, command_parser, items_exit_code, parse_overrides,
                                         rename_deprecated, start_command)
from talkingface.errors import ConfigError, DatasetError
from talkingface.runtime import configure_threads
from talkingface.logs import log_to_file

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


def build_config(overrides: dict[str, Any]) -> Any:
    """The evaluation config: defaults < ``--dataset``'s layer (only when given) < files < command line.

    Without ``--dataset`` no dataset's config is read: scoring arbitrary videos uses the
    reference tools' settings (config/evaluation.yaml), not those of the bundled sample set.
    """
    return command_config(overrides, with_dataset=overrides.get("dataset") is not None)


def evaluate_run_dir(config_overrides: dict[str, Any], args: argparse.Namespace) -> int:
    """Score a run folder's outputs against its dataset's clips, by its ``pairs.json``.

    Outputs are ``videos/<video>__<audio>.mp4`` (``<id>.mp4`` in the paired setting); the pair
    says which source video is the reference. The settings are the run's own
    (``config.yaml``: its dataset's evaluation keys included), then ``--config_files``,
    then the command line. The scoring is the runner's evaluate stage
    (:func:`talkingface.run.scoring.evaluate_run`): per-clip scores in ``<run>/scores`` (a
    second call resumes), results written to the run folder.
    """
    import json

    from talkingface.data.base import Pair
    from talkingface.run.runner import Item, read_record

    overrides = dict(config_overrides)
    run_dir = Path(overrides["run_dir"])
    if args.reference or args.audio or overrides.get("dataset"):
        raise ConfigError("--run_dir without --generated scores a run folder: it takes the videos, references, "
                          "pairing and dataset from the folder",
                          hint="drop --reference/--audio/--dataset, or give --generated to score other files "
                               "(results then go to --run_dir)")
    pairs_file, config_file = run_dir / "pairs.json", run_dir / "config.yaml"
    for needed in (pairs_file, config_file):
        if not needed.is_file():
            raise DatasetError(f"--run_dir {run_dir}: no {needed.name} (not a run folder, or its run stopped "
                               "before pairing)", hint="give a folder made by run_talkingface.py "
                                                      "(saved/<model>-<dataset>-<time>), or --generated=<videos> "
                                                      "to score files into a new result folder")
    config = command_config(overrides, with_dataset=False, first_files=[str(config_file)])
    start_command(config)
    from talkingface.run import preflight as check

    check.check_output_dir(run_dir, "run_dir")
    check.check_device(config["device"])
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
    with log_to_file(run_dir / "run.log"):
        log.info("evaluate --run_dir %s: %d pair(s), %d output(s) found", run_dir, len(items),
                 sum(r.get("status") == "ok" for r in records.values()))
        from talkingface.run import scoring
        from talkingface.run.report import write_results
        from talkingface.weights.policy import SEEDED_BANNER, choose_weights

        weights = choose_weights(config["weights"], scoring.required_checkpoints(config), config["checkpoint_dir"],
                                 int(config["seed"]))
        results = {"run_dir": str(run_dir), "weights": weights.describe()}
        if weights.seeded:
            results["WARNING"] = SEEDED_BANNER
        results.update(scoring.evaluate_run(items, records, config, weights))
        write_results(run_dir, results, config)
        return items_exit_code(results["counts"])


def main(argv: list[str]) -> int:
    argv = rename_deprecated(argv, {"--out": "--run_dir", "--paired": "--pairing=paired"}, "evaluate")
    parser = command_parser("python -m talkingface evaluate", "LSE-C/LSE-D, FID, PSNR/SSIM on any videos. "
                            "Results go to --run_dir (default saved_dir/evaluate-<time>); the same --run_dir "
                            "resumes. --pairing=paired: references are ground truth (enables PSNR/SSIM). "
                            "--num_workers=N scores on N Ray actors; --ray_address joins a cluster.")
    parser.add_argument("--generated", default=None, help="folder / list file / video to score; without it, "
                        "--run_dir=saved/<run> scores a run folder's outputs against its dataset (pairs.json)")
    parser.add_argument("--reference", default=None, help="reference videos, matched by file name (FID, PSNR/SSIM)")
    parser.add_argument("--audio", default=None, help="driving audio matched by name (default: each video's sound)")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest, ("generated", "reference", "audio"))
    if not args.generated:
        if overrides.get("run_dir"):
            return evaluate_run_dir(overrides, args)
        raise ConfigError("evaluate needs --generated (videos to score) or --run_dir (a run folder to score "
                          "against its dataset)", hint="e.g. --generated=out/ --reference=ref/, or "
                                                       "--run_dir=saved/video_retalking-lrs2-<time>")
    config = build_config(overrides)
    start_command(config)
    items, out = preflight(config, args)
    configure_threads(config)
    out.mkdir(parents=True, exist_ok=True)
    with log_to_file(out / "run.log"):
        from talkingface.run import scoring
        from talkingface.run.execution import clip_executor
        from talkingface.run.report import write_results
        from talkingface.run.scoring import ScoreStore, ScoreTask, evaluation_info, table_aggregate
        from talkingface.weights.policy import choose_weights

        weights = choose_weights(config["weights"], scoring.required_checkpoints(config), config["checkpoint_dir"],
                                 int(config["seed"]))
        # per-clip scores land in <out>/scores as they finish: the same command with the same --run_dir resumes
        rows, aggregate = scoring.score_tasks([ScoreTask.from_eval_item(item) for item in items],
                                              scoring.eval_config(config, weights), store=ScoreStore(out / "scores"),
                                              plots_dir=out / "plots" if config["plots"] else None,
                                              executor=clip_executor(config))
        per_clip = [{"id": r["name"], "status": "failed" if r["status"] == "failed" else "ok",
                     "error": "; ".join(f"{m}: {w}" for m, w in r.get("reasons", {}).items()) or None,
                     **{k: v for k, v in r.items() if k not in ("name", "status", "reasons")}} for r in rows]
        results = {"run_dir": str(out), "weights": weights.describe(), "per_clip": per_clip,
                   "aggregate": table_aggregate(aggregate, config["pairing"], config["metrics"]),
                   "evaluation": evaluation_info(aggregate, config["metrics"]),
                   "counts": {"succeeded": sum(r["status"] == "ok" for r in per_clip),
                              "failed": sum(r["status"] == "failed" for r in per_clip), "skipped": 0}}
        if weights.seeded:
            from talkingface.weights.policy import SEEDED_BANNER

            results["WARNING"] = SEEDED_BANNER
        write_results(out, results, config)
        return items_exit_code(results["counts"])


def preflight(config: Any, args: argparse.Namespace) -> tuple[list[Any], Path]:
    """Inputs matched and probed, the result folder writable, metrics that can run, weights present:
    all before torch is imported or the result folder is created."""
    from talkingface.run import preflight as check
    from talkingface.run import scoring
    from talkingface.evaluation.base import EvalItem

    generated = collect(args.generated, VIDEO_SUFFIXES, "generated")
    references = collect(args.reference, VIDEO_SUFFIXES, "reference") if args.reference else {}
    if args.audio and "lse" in config["metrics"] and config["lse_protocol"] == "reference":
        raise ConfigError("--audio cannot be used with lse_protocol=reference: the reference tools score each "
                          "video with its own sound track",
                          hint="mux the audio into the videos, or pass --lse_protocol=direct (numbers not "
                               "comparable with published tables)")
    audios = collect(args.audio, AUDIO_SUFFIXES, "audio") if args.audio else {}
    classes = scoring.metric_classes(config["metrics"])
    if not references:
        dropped = [m for m in config["metrics"] if classes[m].needs_reference]
        if dropped:
            kept = [m for m in config["metrics"] if m not in dropped]
            log.info("no --reference: scoring %s only (%s need reference videos)",
                     ", ".join(kept) or "nothing", ", ".join(dropped))
            config["metrics"] = kept
        if not config["metrics"]:
            raise DatasetError(f"--metrics={','.join(dropped)} need reference videos and no --reference was given",
                               hint="add --reference=<folder of the original videos>, or --metrics=lse")
    items = []
    for name, video in generated.items():
        if references and name not in references:
            raise DatasetError(f"no reference video named {name}.* for {video}",
                               hint="reference files must have the same names as the generated ones")
        if audios and name not in audios:
            raise DatasetError(f"no audio named {name}.* for {video}", hint="audio files must match video names")
        needs_sound = any(classes[m].needs_audio for m in config["metrics"]) and name not in audios
        check.check_media(video, "generated", video=True, audio=needs_sound,
                          audio_hint="LSE scores each video against its sound: give videos with their driving "
                                     "audio, or the audio files with --audio=<folder>, or --metrics without lse")
        if name in references:
            check.check_media(references[name], "reference", video=True)
        if name in audios:
            check.check_media(audios[name], "audio", audio=True)
        items.append(EvalItem(name, video, references.get(name), audios.get(name, video),
                              config["pairing"] == "paired"))
    out = (Path(config["run_dir"]) if config.get("run_dir")
           else Path(config["saved_dir"]) / f"evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}")
    check.check_output_dir(out, "run_dir" if config.get("run_dir") else "saved_dir")
    check.check_checkpoints(config, scoring.required_checkpoints(config))
    check.check_device(config["device"])
    return items, out
