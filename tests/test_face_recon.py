"""3DMM regressor + alignment: reference keys, seeded-v1 parity, POS, loaders, expression templates."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.io import savemat

from networks_parity import TOLERANCE, load_fixture, module_keys, reference_keys
from talkingface.errors import CheckpointError, ConfigError
from talkingface.face import recon3d
from talkingface.weights.seeded import seeded_state_dict


@pytest.fixture(scope="module")
def net():
    return recon3d.load_recon(weights="seeded", seed=0)


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("ReconNet")


def test_keys_and_shapes_equal_reference():
    keys = module_keys(recon3d.ReconNet())
    assert keys == reference_keys("ReconNet")
    assert [keys[f"final_layers.{i}.weight"][0] for i in range(7)] == [80, 64, 80, 3, 27, 2, 1]


def test_pos_recovers_similarity_transform():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 7))
    a, b = 0.3, -0.2
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]) @ \
        np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    s, t = 87.5, np.array([120.25, -33.0])
    xp = s * (rot @ x)[:2] + t[:, None]
    t_fit, s_fit = recon3d.pos(xp, x)
    assert abs(s_fit - s) < 1e-3 and np.abs(t_fit - t).max() < 1e-3


def test_estimate_lm5_order():
    lm = np.zeros((68, 2))
    lm[36], lm[39], lm[42], lm[45] = (10, 0), (20, 0), (30, 0), (40, 0)
    lm[30], lm[48], lm[54] = (25, 9), (12, 20), (38, 20)
    assert np.allclose(recon3d.estimate_lm5(lm), [[15, 0], [35, 0], [25, 9], [12, 20], [38, 20]])


def test_alignment_and_forward_match_reference(net, fixture):
    ref, _ = fixture
    trans, aligned = recon3d.align_for_recon(ref["image"], ref["lm68"], ref["lm3d"])
    assert np.allclose(trans, ref["trans_params"], rtol=0, atol=1e-4)
    assert aligned.dtype == np.uint8 and np.array_equal(aligned, ref["aligned"])
    with torch.inference_mode():
        out = net(torch.from_numpy(aligned).permute(2, 0, 1)[None].float() / 255.0).numpy()
    assert np.abs(out - ref["output"]).max() <= TOLERANCE
    assert np.abs(ref["output"]).max() > 1.0  # informative: not a degenerate all-zero output


def test_coefficients_batched_equal_single(net, fixture):
    ref, _ = fixture
    crops = np.stack([ref["image"], ref["image"][:, ::-1], ref["image"]])
    lm = np.stack([ref["lm68"], ref["lm68"], np.full((68, 2), -1, np.float32)])
    semantic = recon3d.coefficients(net, crops, lm, ref["lm3d"], batch_size=2)
    assert semantic.shape == (3, 262) and semantic.dtype == np.float32
    assert np.abs(semantic[0, :257] - ref["output"][0]).max() <= TOLERANCE
    assert np.allclose(semantic[0, 257:], ref["trans_params"], atol=1e-4)
    single = recon3d.coefficients(net, crops[1:2], lm[1:2], ref["lm3d"])
    assert np.abs(single[0] - semantic[1]).max() <= 1e-4
    assert np.abs(semantic[0] - semantic[1]).max() > 1e-3  # flipped image gives other numbers
    # "no face" (-1) uses the template placed over the image: the fit reproduces the image centre
    assert semantic[2, 257] == 256 and semantic[2, 258] == 256
    assert np.allclose(semantic[2, 260:], [128.0, 128.0], atol=25)


def test_loader_reads_net_recon_and_refuses_wrong_keys(tmp_path):
    model = recon3d.ReconNet()
    state = seeded_state_dict(model, 1)
    good = tmp_path / "face3d.pth"
    torch.save({"net_recon": state, "epoch": 20}, good)
    loaded = recon3d.load_recon(good)
    assert torch.equal(loaded.state_dict()["final_layers.6.bias"], state["final_layers.6.bias"])
    broken = dict(state)
    broken.pop("backbone.layer4.2.bn3.running_var")
    bad = tmp_path / "bad.pth"
    torch.save({"net_recon": broken}, bad)
    with pytest.raises(CheckpointError, match="backbone.layer4.2.bn3.running_var"):
        recon3d.load_recon(bad)
    plain = tmp_path / "plain.pth"
    torch.save({"model": state}, plain)
    with pytest.raises(CheckpointError, match="net_recon"):
        recon3d.load_recon(plain)


def test_load_lm3d_from_mat(tmp_path):
    lm = np.arange(68 * 3, dtype=np.float64).reshape(68, 3)
    savemat(tmp_path / "similarity_Lm3D_all.mat", {"lm": lm})
    five = recon3d.load_lm3d(tmp_path)
    assert five.shape == (5, 3)
    assert np.allclose(five[2], lm[30]) and np.allclose(five[0], (lm[36] + lm[39]) / 2)
    with pytest.raises(CheckpointError, match="similarity_Lm3D_all.mat"):
        recon3d.load_lm3d(tmp_path / "missing")
    seeded = recon3d.seeded_lm3d()
    assert seeded.shape == (5, 3) and seeded[0, 0] < 0 < seeded[1, 0] and seeded[3, 1] < seeded[2, 1] < seeded[0, 1]


def test_expression_templates(tmp_path, net, fixture):
    neutral = recon3d.expression_template("neutral", weights="seeded")
    smile = recon3d.expression_template("smile", weights="seeded")
    assert neutral.shape == smile.shape == (64,)
    assert np.array_equal(neutral, recon3d.expression_template("neutral", weights="seeded"))
    assert np.abs(neutral - smile).max() > 0.01
    with pytest.raises(CheckpointError):
        recon3d.expression_template("neutral", weights="official", mat_path=tmp_path / "none" / "expression.mat")
    center, mouth = np.linspace(-1, 1, 64)[None], np.linspace(2, 3, 64)[None]
    savemat(tmp_path / "expression.mat", {"expression_center": center, "expression_mouth": mouth})
    assert np.allclose(recon3d.expression_template("smile", mat_path=tmp_path / "expression.mat"), mouth[0])
    assert np.allclose(recon3d.expression_template("neutral", mat_path=tmp_path / "expression.mat"), center[0])
    with pytest.raises(ConfigError):
        recon3d.expression_template(str(tmp_path / "nope.png"))

    ref, _ = fixture
    import cv2

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(ref["image"], cv2.COLOR_RGB2BGR))
    calls = []

    def landmarks(images):
        calls.append(images.shape)
        return ref["lm68"][None], []

    exp = recon3d.expression_template(str(path), net=net, lm3d=ref["lm3d"], landmarks=landmarks)
    assert calls == [(1, 256, 256, 3)]
    assert np.abs(exp - ref["output"][0, 80:144]).max() <= TOLERANCE
