import os

import pytest
import torch

# Two cores are shared by everything on CI: one intra-op thread keeps tests predictable.
torch.set_num_threads(1)
os.environ.setdefault("TALKINGFACE_NO_COLOR", "1")


@pytest.fixture(scope="session")
def shared_dir():
    """../shared beside the repo (parity fixtures, design notes) when present."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture(autouse=True)
def _isolated_registry():
    """Every test starts from the registry as it was and leaves nothing registered behind."""
    from talkingface import registry

    state = registry.snapshot()
    yield
    registry.restore(state)
