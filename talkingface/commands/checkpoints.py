"""``python -m talkingface checkpoints list|verify|download``: the official weight files."""
from __future__ import annotations

import sys
from typing import Any

from talkingface.commands.common import (command_config, command_parser, parse_overrides, rename_deprecated,
                                         start_command)
from talkingface.errors import EXIT_OK, EXIT_USER


def main(argv: list[str]) -> int:
    """List, verify or download manifest files; verify exits 2 when any is missing or damaged."""
    from talkingface.weights import manifest as checkpoints

    argv = rename_deprecated(argv, {"--root": "--checkpoint_dir"}, "checkpoints")
    parser = command_parser("python -m talkingface checkpoints",
                            "official weight files: list, verify, download. Without names, verify and download "
                            "take the files the current config needs (model, metrics, options); --all takes "
                            "every file.")
    parser.add_argument("action", choices=["list", "verify", "download"])
    parser.add_argument("names", nargs="*", help="manifest names (default: what the config needs; list: all)")
    parser.add_argument("--all", action="store_true", help="every file the project can load")
    args, rest = parser.parse_known_args(argv)
    config = command_config(parse_overrides(rest, ("all",)))
    start_command(config)
    root = config["checkpoint_dir"]
    if args.names:
        names = list(args.names)
        for name in names:
            checkpoints.get_spec(name)
    elif args.action == "list":
        names = list(checkpoints.MANIFEST)
    elif args.all:
        names = [name for name, spec in checkpoints.MANIFEST.items() if spec.used]
    else:
        names = needed_checkpoints(config)
        print(f"{len(names)} file(s) needed by model={config['model']}, metrics={','.join(config['metrics'])} "
              f"and their options (--all for every file)", file=sys.stderr)
    if args.action == "list":
        for name in names:
            spec = checkpoints.MANIFEST[name]
            unused = "" if spec.used else "  [not loaded by any option]"
            print(f"{name:<15} {spec.filename:<40} {spec.group:<16} {spec.loader}{unused}\n{'':<15} {spec.url}")
        return EXIT_OK
    if args.action == "verify":
        results = checkpoints.verify(names, root)
        for result in results:
            print(f"{result.status:<16} {result.name:<15} {result.path or '-'}  {result.detail}")
        bad = [r.name for r in results if r.status not in ("ok", "unchecked")]
        if bad:
            print(f"\n{len(bad)} file(s) missing or damaged in {checkpoints.checkpoint_root(root)}; fix with:\n  "
                  f"{checkpoints.fix_command(bad)}" + (f" --checkpoint_dir={root}" if root != "checkpoints" else ""),
                  file=sys.stderr)
            return EXIT_USER
        return EXIT_OK
    mirror = checkpoints.mirror_base(config.get("checkpoint_mirror"))
    for name in names:
        if checkpoints.find_checkpoint(name, root) is not None:
            print(f"present   {name}")
            continue
        print(f"download  {name} -> {checkpoints.download(name, root, mirror=mirror)}")
    return EXIT_OK


def needed_checkpoints(config: Any) -> list[str]:
    """The files a command with this config loads: the model's (for its options) and the metrics'."""
    from talkingface import registry
    from talkingface.run import scoring

    names = list(registry.get("model", config["model"]).required_checkpoints(config))
    names += scoring.required_checkpoints(config)
    return list(dict.fromkeys(names))
