"""``python -m talkingface infer --face clip.mp4 --audio speech.wav --outfile out.mp4``: re-dub one clip.

The networks (~20 s to load on a CPU) are loaded only once the face crop of the
clip has succeeded, so a clip without a usable face fails in about a second
with a :class:`NoFaceError` naming the clip (exit code 2).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from talkingface.commands.common import command_config, command_parser, parse_overrides, start_command
from talkingface.errors import ConfigError, NoFaceError
from talkingface.runtime import configure_threads

log = logging.getLogger("talkingface")


OWN_ARGS = ("face", "audio", "outfile")


def infer_config(rest: list[str]) -> Any:
    """The config of ``infer``: overall < model < --config_files < command line, never a dataset layer.

    A dataset's settings describe that dataset (the sample set cuts its clips
    to 0.6 s); on a user's own clip they would silently change the result.
    """
    overrides = parse_overrides(rest, OWN_ARGS)
    if "dataset" in overrides:
        raise ConfigError("infer takes no dataset: it re-dubs the one clip given by --face",
                          hint="drop --dataset (`python run_talkingface.py -d ...` runs a dataset)")
    config = command_config(overrides, with_dataset=False)
    if config["model"] != "video_retalking":
        raise ConfigError(f"infer runs the video_retalking pipeline, not {config['model']!r}",
                          hint="drop --model, or use `python run_talkingface.py -m identity` for the baseline")
    return config


def preflight(config: Any, face: Path, audio: Path, outfile: Path) -> None:
    """Every input, output and setting checked in about a second, before torch or a network is loaded."""
    from talkingface.run import preflight as check
    from talkingface.models.video_retalking.model import VideoReTalking

    check.check_media(face, "face", video=True, image_ok=True)
    check.check_media(audio, "audio", audio=True)
    check.check_output_file(outfile, "outfile")
    expression = str(config.get("expression") or "neutral")
    if expression not in ("neutral", "smile"):
        check.check_media(Path(expression), "expression", video=True, image_ok=True)
    if config.get("up_face", "original") != "original":
        raise ConfigError(f"up_face={config['up_face']!r} is not supported",
                          hint="the GANimation upper-face edit is not implemented; use up_face=original")
    cache = config.get("cache_dir") or str(Path(config["saved_dir"]) / "cache")
    check.check_output_dir(cache, "cache_dir" if config.get("cache_dir") else "saved_dir")
    check.check_checkpoints(config, VideoReTalking.required_checkpoints(config))
    check.check_device(config["device"])


def main(argv: list[str]) -> int:
    parser = command_parser("python -m talkingface infer", "lip-sync one face video (or image) to an audio file")
    parser.add_argument("--face", required=True, help="video or image with the face")
    parser.add_argument("--audio", required=True, help="speech: wav/mp3/m4a or a video with sound")
    parser.add_argument("--outfile", required=True, help="output .mp4 file")
    args, rest = parser.parse_known_args(argv)
    config = infer_config(rest)
    start_command(config)
    face, audio, outfile = Path(args.face), Path(args.audio), Path(args.outfile)
    preflight(config, face, audio, outfile)
    configure_threads(config)

    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.weights.policy import choose_weights

    weights = choose_weights(config["weights"], VideoReTalking.required_checkpoints(config),
                             config["checkpoint_dir"], int(config["seed"]))
    # the networks load once the face crop has succeeded: a clip without a face fails in about a second
    model = VideoReTalking.from_config(config, weights, networks_on_demand=True)
    try:
        out = model(face, audio, outfile)
    except NoFaceError as exc:
        raise NoFaceError(f"{args.face}: {exc.message}", hint=exc.hint) from exc
    print(out)
    return 0
