"""``python -m talkingface infer --face clip.mp4 --audio speech.wav --outfile out.mp4``: re-dub one clip.

The networks (~20 s to load on a CPU) are loaded only once the face crop of the
clip has succeeded, so a clip without a usable face fails in about a second
with a :class:`NoFaceError` naming the clip (exit code 2).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from talkingface.cli import parse_overrides
from talkingface.config import load_config
from talkingface.errors import ConfigError, NoFaceError
from talkingface.execution import configure_threads
from talkingface.logs import setup_logging

log = logging.getLogger("talkingface")


class CropFirstParts:
    """The pipeline's parts with the face crop ready and everything else built on first use.

    The crop stage runs first and needs only dlib; any other part triggers
    :func:`~talkingface.models.video_retalking.parts.build_parts` (the load
    time then counts in the stage that asked, normally ``landmarks``).
    """

    def __init__(self, config: Any, weights: Any, options: Any) -> None:
        from talkingface.face.croper import Croper

        self._args = (config, weights, options)
        self._parts = None
        self.crop = Croper(select=options.face_select).crop

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._parts is None:
            from talkingface.models.video_retalking.parts import build_parts

            start = time.perf_counter()
            self._parts = build_parts(*self._args)
            log.info("networks loaded in %.1fs", time.perf_counter() - start)
        return getattr(self._parts, name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m talkingface infer",
                                     description="lip-sync one face video (or image) to an audio file",
                                     epilog="any config key also works as --key=value (see run_talkingface.py --help)")
    parser.add_argument("--face", required=True, help="video or image with the face")
    parser.add_argument("--audio", required=True, help="speech: wav/mp3/m4a or a video with sound")
    parser.add_argument("--outfile", required=True, help="output mp4")
    parser.add_argument("--expression", default=None, help="neutral | smile | path to an image")
    parser.add_argument("--config_files", default="", help="extra YAML layers, comma separated")
    parser.add_argument("--debug", action="store_true")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    if args.expression is not None:
        overrides["expression"] = args.expression
    files = [p for p in args.config_files.split(",") if p]
    config = load_config(overrides.pop("model", "video_retalking"), overrides.pop("dataset", None), files,
                         overrides)
    if config["model"] != "video_retalking":
        raise ConfigError(f"infer runs the video_retalking pipeline, not {config['model']!r}")
    setup_logging("DEBUG" if args.debug or config["debug"] else config["log_level"])
    configure_threads(config)

    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import PipelineOptions, VideoReTalkingPipeline
    from talkingface.weights_mode import choose_weights

    weights = choose_weights(config["weights"], VideoReTalking.required_checkpoints(config),
                             config["checkpoint_dir"], int(config["seed"]))
    options = PipelineOptions.from_config(config, weights)
    pipeline = VideoReTalkingPipeline(CropFirstParts(config, weights, options), options)
    try:
        out = pipeline(face=Path(args.face), audio=Path(args.audio), outfile=Path(args.outfile))
    except NoFaceError as exc:
        raise NoFaceError(f"{args.face}: {exc.message}", hint=exc.hint) from exc
    print(out)
    return 0
