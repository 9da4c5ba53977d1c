"""``python -m talkingface sample``: rebuild the bundled sample set (needs espeak-ng)."""
from __future__ import annotations

from talkingface.commands.common import (command_config, command_parser, parse_overrides, rename_deprecated,
                                         start_command)
from talkingface.errors import EXIT_OK


def main(argv: list[str]) -> int:
    """Write the sample clips under the video-retalking dataset's ``dataset_root``; print each path."""
    argv = rename_deprecated(argv, {"--root": "--dataset_root"}, "sample")
    parser = command_parser("python -m talkingface sample", "rebuild the bundled sample set (needs espeak-ng)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the clips exist")
    args, rest = parser.parse_known_args(argv)
    config = command_config(parse_overrides(rest), dataset="video-retalking")
    start_command(config)
    from talkingface.data.sample import make_sample_set

    for path in make_sample_set(config["dataset_root"], force=args.force):
        print(path)
    return EXIT_OK
