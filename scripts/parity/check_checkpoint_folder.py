"""Check that the project loads a seeded official-format folder strictly, to its own seeded weights.

Why: prepare_official.py fills the *official* module classes by seeded-v1 and
saves them in the official formats. This script, run in the project venv,
loads every file with the project's own loaders (strict keys and shapes) and
compares each tensor with what ``weights: seeded`` builds in memory. Equal
means a pipeline run on the folder (``checkpoint_dir``) and a ``weights:
seeded`` run use the very same networks, and the official code reads the same
numbers from the same files.

    /work/main/.venv/bin/python scripts/parity/check_checkpoint_folder.py --out /work/refrun/official
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _compare(name: str, loaded, seeded) -> str | None:
    a, b = loaded.state_dict(), seeded.state_dict()
    if set(a) != set(b):
        return f"{name}: key sets differ ({sorted(set(a) ^ set(b))[:4]})"
    bad = [k for k in a if not (a[k].shape == b[k].shape and bool((a[k] == b[k]).all()))]
    return f"{name}: {len(bad)} tensor(s) differ, e.g. {bad[:3]}" if bad else None


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from talkingface.face import fan, gfpgan, gpen, parsing, recon3d, retinaface, s3fd
    from talkingface.models.video_retalking.networks import loading

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder prepare_official.py wrote")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = args.out / "checkpoints"
    hub = args.out / "torch_home" / "hub" / "checkpoints"
    xw = args.out / "site" / "facexlib" / "weights"
    seed = args.seed
    problems: list[str] = []
    official = loading.build_networks("official", root=root)
    seeded = loading.build_networks("seeded", seed=seed)
    for name in ("dnet", "lnet", "enet"):
        problems.append(_compare(name, getattr(official, name), getattr(seeded, name)))
    pairs = {
        "face3d": (recon3d.load_recon(root=root), recon3d.load_recon(weights="seeded", seed=seed)),
        "gpen": (gpen.load_gpen(root=root), gpen.load_gpen(weights="seeded", seed=seed)),
        "gfpgan": (gfpgan.load_gfpgan(root=root), gfpgan.load_gfpgan(weights="seeded", seed=seed)),
        "parsenet": (parsing.load_parsenet(root=root), parsing.load_parsenet(weights="seeded", seed=seed)),
        "retinaface": (retinaface.load_retinaface(root=root).net,
                       retinaface.load_retinaface(weights="seeded", seed=seed).net),
        "s3fd (hub)": (s3fd.load_s3fd(hub / "s3fd-619a316812.pth").net, s3fd.load_s3fd(weights="seeded", seed=seed).net),
        "fan (TorchScript)": (fan.load_fan(hub / "2DFAN4-cd938726ad.zip"), fan.load_fan(weights="seeded", seed=seed)),
        "facexlib detection": (retinaface.load_retinaface(xw / "detection_Resnet50_Final.pth").net,
                               retinaface.load_retinaface(weights="seeded", seed=seed).net),
        "facexlib parsing": (parsing.load_parsenet(xw / "parsing_parsenet.pth"),
                             parsing.load_parsenet(weights="seeded", seed=seed)),
    }
    for name, (a, b) in pairs.items():
        problems.append(_compare(name, a, b))
    lm3d = recon3d.load_lm3d(root=root)
    if not np.array_equal(lm3d, recon3d._SEEDED_LM3D):
        problems.append(f"BFM: 5-point template {lm3d.tolist()} != seeded template")
    for kind in ("neutral", "smile"):
        got = recon3d.expression_template(kind, mat_path=root / "expression.mat")
        if not np.array_equal(got, recon3d.seeded_expression(kind, seed)):
            problems.append(f"expression.mat: {kind} differs from the seeded template")
    problems = [p for p in problems if p]
    for p in problems:
        print("MISMATCH", p)
    print(f"{len(pairs) + 3 + 3} checks, {len(problems)} mismatch(es)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
