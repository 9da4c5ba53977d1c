"""FID: pytorch-fid Inception parity, Fréchet distance numerics, the metric over clips."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.errors import CheckpointError
from talkingface.evaluation import fid as fid_module
from talkingface.evaluation.base import EvalItem
from talkingface.evaluation.fid import FIDMetric, feature_statistics, frechet_distance, inception_features
from talkingface.evaluation.inception import FIDInceptionV3, load_inception
from talkingface.media.video import VideoClip

PARITY = Path(__file__).parent / "fixtures" / "parity"


@pytest.fixture(scope="module")
def inception():
    return load_inception(weights="seeded", seed=0)


def test_state_dict_layout_is_the_checkpoint_one():
    keys = json.loads((PARITY / "FIDInceptionV3.keys.json").read_text())
    mine = {k: list(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    assert list(mine) == list(keys) and mine == keys
    assert "fc.weight" in mine and mine["fc.weight"] == [1008, 2048]
    assert not any(k.startswith("AuxLogits") for k in mine)


def test_pool3_features_match_pytorch_fid(inception):
    data = np.load(PARITY / "FIDInceptionV3.seed0.npz")
    feats = inception_features(inception, data["images"], batch_size=2)
    assert feats.shape == (2, 2048)
    np.testing.assert_allclose(feats, data["pool3"], atol=1e-4, rtol=0)
    assert np.abs(data["pool3"]).max() > 0.1  # not a vanishing signal
    x = torch.from_numpy(data["images"][:1]).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        stages = inception.stages(x)
    for i in range(3):
        np.testing.assert_allclose(stages[i][0].mean(dim=(1, 2)).numpy(), data[f"block{i}_mean"], atol=1e-4)


def test_identical_statistics_give_zero():
    feats = np.random.default_rng(0).normal(size=(64, 8))
    mu, sigma = feature_statistics(feats)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_analytic_frechet_distance_of_two_gaussians():
    rng = np.random.default_rng(1)
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    l1, l2 = rng.uniform(0.5, 3.0, d), rng.uniform(0.1, 2.0, d)
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T  # commuting: sqrt(S1 S2) = Q sqrt(L1 L2) Q^T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-6)
    # a general (non-commuting) pair: Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2), by eigen-decomposition
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-6)


def test_singular_product_retries_with_eps_and_large_imaginary_part_raises(monkeypatch):
    calls = []
    real_sqrtm = fid_module.linalg.sqrtm

    def fake_sqrtm(m):
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fid_module.linalg, "sqrtm", fake_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2)
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert value == pytest.approx(10 + 5 - 2 * (np.sqrt((1 + 1e-6) * (9 + 1e-6)) + np.sqrt((4 + 1e-6) * (1 + 1e-6))))
    monkeypatch.setattr(fid_module.linalg, "sqrtm", lambda m: np.eye(2) * (1 + 0.5j))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), s1, np.zeros(2), s2)
    monkeypatch.setattr(fid_module.linalg, "sqrtm", lambda m: np.eye(2) * (1 + 1e-5j))
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(15 - 4)


def test_metric_over_clips_counts_frames_and_reports_skips(inception, monkeypatch):
    rng = np.random.default_rng(3)
    gen = VideoClip(rng.integers(0, 255, (3, 40, 48, 3), dtype=np.uint8), 25.0)
    ref = VideoClip(rng.integers(0, 255, (4, 40, 48, 3), dtype=np.uint8), 25.0)
    metric = FIDMetric({"fid_crop": "frame", "fid_batch_size": 2}, net=inception)
    assert metric.update(EvalItem("a", gen, ref))["fid_frames"] == 3
    assert metric.update(EvalItem("b", gen, ref))["fid_reference_frames"] == 4
    missing = metric.update(EvalItem("c", gen, None))
    assert missing["skipped"] and "no reference video" in missing["reason"]
    gen_feats, ref_feats = metric.features()
    assert gen_feats.shape == (6, 2048) and ref_feats.shape == (8, 2048)
    np.testing.assert_array_equal(gen_feats[:3], gen_feats[3:])  # deterministic features
    seen = []  # a 2048-d sqrtm takes ~30 s here: check the statistics handed over instead

    def fake_distance(*stats):
        seen.append(stats)
        return 12.5

    monkeypatch.setattr(fid_module, "frechet_distance", fake_distance)
    out = metric.compute()
    assert out == {"fid": 12.5, "fid_generated_frames": 6.0, "fid_reference_frames": 8.0}
    mu1, s1, mu2, s2 = seen[0]
    np.testing.assert_allclose(mu1, gen_feats.astype(np.float64).mean(0))
    np.testing.assert_allclose(s2, np.cov(ref_feats.astype(np.float64), rowvar=False))
    assert s1.shape == (2048, 2048) and mu1.dtype == np.float64
    assert metric.weights_info["weights"] == "seeded"


def test_inception_loader_is_strict(tmp_path, inception):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    state = {k: v for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    assert load_inception(path).weights_info["sha256"]
    state["Mixed_7c.branch_pool.conv.weight"] = torch.zeros(192, 2048, 3, 3)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="Mixed_7c.branch_pool.conv.weight"):
        load_inception(path)


def test_feature_sets_drawn_from_known_gaussians_give_the_closed_form():
    """Features sampled from N(mu1, S1) and N(mu2, S2): FID of the sets -> the population value."""
    rng = np.random.default_rng(7)
    d, n = 12, 40000
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    l1, l2 = rng.uniform(0.5, 3.0, d), rng.uniform(0.1, 2.0, d)
    s1, s2 = q @ np.diag(l1) @ q.T, q @ np.diag(l2) @ q.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) + 1.0
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    f1 = rng.multivariate_normal(mu1, s1, size=n).astype(np.float32)  # features arrive as float32
    f2 = rng.multivariate_normal(mu2, s2, size=n).astype(np.float32)
    value = frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    assert value == pytest.approx(closed, rel=0.02)  # sampling error at n=40000 is ~0.5 %
    same = frechet_distance(*feature_statistics(f1), *feature_statistics(rng.multivariate_normal(mu1, s1, size=n)))
    assert same < 0.01 * closed
    mu, sigma = feature_statistics(f1)
    assert mu.dtype == np.float64 and sigma == pytest.approx(np.cov(f1.astype(np.float64), rowvar=False))


def test_image_level_fid_where_seeded_features_vary():
    """FID through the metric (frames -> 299 px -> Inception -> statistics -> distance) on image sets whose
    features differ. Plain seeded weights make every image's pool3 nearly equal (FID ~1e-6 for anything), so
    this net uses seeded-v1 with conv gain 1.6 and zero BN biases: features then spread by ~2-40 units.
    The expected value is computed independently: pool3 by the network's forward on [0, 1] NCHW images, and
    the Fréchet distance of two 6-sample covariances in closed form, Tr sqrt(S1 S2) from the singular values
    of the 6x6 product of the centred features (no 2048-d matrix square root)."""
    net = FIDInceptionV3()
    overrides = {"*conv.weight": {"gain": 1.6}, "*.bn.bias": {"value": 0.0}}
    from talkingface.weights.seeded import load_strict, seeded_state_dict

    load_strict(net, seeded_state_dict(net, 0, overrides), "seeded-v1 + overrides")
    net.eval()
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (6, 48, 48, 3), dtype=np.uint8)
    flat = np.stack([np.full((48, 48, 3), v, np.uint8) for v in np.linspace(20, 230, 6).astype(np.uint8)])
    metric = FIDMetric({"fid_crop": "frame", "fid_batch_size": 6}, net=net)
    metric.update(EvalItem("clip", VideoClip(noise, 25.0), VideoClip(flat, 25.0)))
    value = metric.compute()["fid"]

    def pool3(images):
        with torch.inference_mode():
            out = net(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)
        return np.asarray(out, dtype=np.float64).reshape(len(images), -1)

    x1, x2 = pool3(noise), pool3(flat)
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    n = len(x1)
    trace_sqrt = np.sum(np.linalg.svd(c1 @ c2.T, compute_uv=False)) / (n - 1)
    expected = (np.sum((x1.mean(0) - x2.mean(0)) ** 2) + np.sum(c1 ** 2) / (n - 1) + np.sum(c2 ** 2) / (n - 1)
                - 2 * trace_sqrt)
    assert expected > 1e4  # the sets really differ in feature space
    assert value == pytest.approx(expected, rel=1e-3)
