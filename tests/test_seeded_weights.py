import hashlib

import numpy as np
import torch
from torch import nn

from talkingface.weights.seeded import fill_seeded_, key_rng, seeded_state_dict


def test_protocol_values_by_rule():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    sd = seeded_state_dict(net, seed=7)
    h = hashlib.sha256(b"7:0.weight").digest()
    expected = np.random.default_rng(int.from_bytes(h[:8], "little")).standard_normal((3, 2, 3, 3)) / np.sqrt(18)
    assert torch.allclose(sd["0.weight"], torch.from_numpy(expected).float())
    bias = key_rng(7, "0.bias").normal(0.0, 0.1, (3,))
    assert torch.allclose(sd["0.bias"], torch.from_numpy(bias).float())
    scale = 1.0 + key_rng(7, "1.weight").normal(0.0, 0.1, (3,))
    assert torch.allclose(sd["1.weight"], torch.from_numpy(scale).float())
    var = key_rng(7, "1.running_var").uniform(0.5, 1.5, (3,))
    assert torch.allclose(sd["1.running_var"], torch.from_numpy(var).float())
    assert sd["1.num_batches_tracked"].item() == 0 and sd["1.num_batches_tracked"].dtype == torch.long


def test_spectral_norm_u_is_normalised_w_v():
    conv = nn.utils.spectral_norm(nn.Conv2d(4, 6, 3))
    sd = seeded_state_dict(conv, seed=0)
    w = sd["weight_orig"].reshape(6, -1).double()
    v = sd["weight_v"].double()
    u = w @ v
    assert torch.allclose(sd["weight_u"].double(), u / u.norm(), atol=1e-6)
    assert abs(v.norm().item() - 1) < 1e-6
    fill_seeded_(conv, 0)
    conv.eval()
    y = conv(torch.ones(1, 4, 5, 5))
    assert torch.isfinite(y).all()


def test_transposed_spectral_norm_uses_dim_1():
    deconv = nn.utils.spectral_norm(nn.ConvTranspose2d(4, 6, 3))
    sd = seeded_state_dict(deconv, seed=1)
    w = sd["weight_orig"].double().transpose(0, 1).reshape(6, -1)
    u = w @ sd["weight_v"].double()
    assert torch.allclose(sd["weight_u"].double(), u / u.norm(), atol=1e-6)


def test_overrides_and_seed_dependence():
    net = nn.Linear(3, 2)
    a = seeded_state_dict(net, 0, overrides={"bias": {"value": 0.0}, "weight": {"gain": 2.0}})
    b = seeded_state_dict(net, 0)
    assert torch.count_nonzero(a["bias"]) == 0
    assert torch.allclose(a["weight"], 2 * b["weight"])
    assert not torch.allclose(seeded_state_dict(net, 1)["weight"], b["weight"])
