"""VideoReTalking core networks (D-Net, L-Net, E-Net), loadable from the official checkpoints.

State-dict keys and shapes equal those of the official modules, so ``DNet.pt``,
``LNet.pth`` and ``ENet.pth`` load unchanged with strict checking.
"""
from talkingface.models.video_retalking.networks.dnet import DNet
from talkingface.models.video_retalking.networks.enet import ENet
from talkingface.models.video_retalking.networks.lnet import LNet
from talkingface.models.video_retalking.networks.loading import (
    Networks,
    build_networks,
    load_dnet,
    load_enet,
    load_lnet,
    load_networks,
    seed_enet_head_,
)

__all__ = ["DNet", "ENet", "LNet", "Networks", "build_networks", "load_dnet", "load_enet", "load_lnet",
           "load_networks", "seed_enet_head_"]
