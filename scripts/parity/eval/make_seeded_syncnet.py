"""Write a seeded SyncNet file in the layout of ``syncnet_v2.model`` (a plain state dict).

    python scripts/parity/eval/make_seeded_syncnet.py OUT.model

Protocol seeded-v1, seed 0, with the overrides of tests/fixtures/parity/SyncNet.seed0.npz
(small final gains and a shared bias, so that the offset curve is informative: with plain
seeded weights every offset loses to the zero padding and LSE-C is ~0). The reference's
``SyncNetInstance.loadParameters`` copies it into its ``S`` unchanged; the tests load the
same weights with :func:`overrides` into the project's SyncNet.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
PARITY = ROOT / "tests" / "fixtures" / "parity" / "SyncNet.seed0.npz"


def overrides() -> dict:
    with np.load(PARITY) as data:
        return json.loads(str(data["meta"]))["overrides"]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import torch

    from talkingface.evaluation.syncnet import SyncNet
    from talkingface.weights.seeded import seeded_state_dict

    out = Path(sys.argv[1])
    net = SyncNet()
    torch.save(seeded_state_dict(net, 0, overrides()), out)
    print(out)


if __name__ == "__main__":
    main()
