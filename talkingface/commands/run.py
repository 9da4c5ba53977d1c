"""``python run_talkingface.py`` / ``python -m talkingface run``: generate a dataset subset, evaluate it.

The default command: writes ``saved/<model>-<dataset>-<time>/`` (results, config,
log, videos); the same command again resumes.
"""
from __future__ import annotations

from talkingface.commands.common import (command_config, items_exit_code, parse_overrides, start_command,
                                         terminate_as_interrupt)
from talkingface.config import describe_keys, load_config
from talkingface.errors import TalkingFaceError


USAGE = """usage: python run_talkingface.py --model=video_retalking --dataset=video-retalking [--key=value ...]

Generates every pair of a dataset subset with the model, evaluates (LSE-C/LSE-D,
FID, PSNR/SSIM) and writes saved/<model>-<dataset>-<time>/ (results.json/csv,
config.yaml, run.log, videos). Re-running the same command resumes.

options:
  -m, --model NAME          model (video_retalking)
  -d, --dataset NAME        dataset (video-retalking, lrs2, hdtf)
  --config_files A,B        extra YAML layers
  --debug                   show tracebacks (the same on every command)
  -h, --help                this text (`python -m talkingface --help`: the other commands)

exit codes: 0 done; 2 bad input, stopped before any work (what, where, what to do); 3 the batch
finished but items failed or were not done (listed in the table); 130 interrupted; 1 a bug.

config keys (--key=value; YAML values, lists as a,b or [a,b]):
"""


def main(argv: list[str]) -> int:
    """Run the batch the options describe; the exit code says whether every item succeeded."""
    if "-h" in argv or "--help" in argv:
        try:
            defaults = load_config()
        except TalkingFaceError:
            defaults = None
        print(USAGE + describe_keys(defaults))
        return 0
    config = command_config(parse_overrides(argv))
    start_command(config)
    from talkingface.run.runner import run

    terminate_as_interrupt()
    results = run(config)
    return items_exit_code(results.get("counts", {}))
