"""PSNR / SSIM equal scikit-image's with the stated settings; paired-only; per-clip reasons."""
import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkingface.evaluation.base import EvalItem
from talkingface.evaluation.fidelity import PSNRMetric, SSIMMetric, psnr, ssim
from talkingface.media.video import VideoClip


def skimage_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1 if a.ndim == 3 else None)


def noisy(image, seed, amount=25):
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.int16) + rng.integers(-amount, amount + 1, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64, 3), (40, 30)])
def test_random_images_match_skimage(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = noisy(a, 1, 60)
    assert ssim(a, b) == pytest.approx(skimage_ssim(a, b), abs=1e-6)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)


def test_real_image_matches_skimage():
    a = data.astronaut()[::2, ::2]
    b = noisy(a, 2)
    s = ssim(a, b)
    assert s == pytest.approx(skimage_ssim(a, b), abs=1e-6) and 0.3 < s < 0.95
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0) and psnr(a, a) == float("inf")


def test_psnr_has_no_uint8_wraparound():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)  # (a - b) in uint8 would wrap to 1 and give 48 dB
    assert psnr(b, a) == pytest.approx(0.0)


def test_unpaired_setting_reports_not_applicable():
    clip = VideoClip(np.zeros((3, 32, 32, 3), np.uint8), 25.0)
    for metric in (PSNRMetric({"pairing": "unpaired", "fidelity_crop": "frame"}), SSIMMetric({})):
        out = metric.update(EvalItem("u", clip, clip))
        assert out[metric.name] is None and out["skipped"] and out["reason"].startswith("not applicable")
        assert np.isnan(metric.compute()[metric.name])
        assert metric.compute()[f"{metric.name}_n"] == 0


def test_paired_frames_are_averaged_and_mismatches_reported():
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)
    gen = np.stack([noisy(f, i) for i, f in enumerate(ref)])
    metric = PSNRMetric({"pairing": "paired", "fidelity_crop": "frame"})
    out = metric.update(EvalItem("p", VideoClip(gen, 25.0), VideoClip(ref, 25.0)))
    assert out["psnr"] == pytest.approx(np.mean([psnr(r, g) for r, g in zip(ref, gen)]), abs=1e-9)
    assert out["psnr_frames"] == 4
    short = metric.update(EvalItem("s", VideoClip(gen[:3], 25.0), VideoClip(ref, 25.0)))
    assert short["psnr"] is None and "frame-count mismatch: generated 3 vs reference 4" in short["reason"]
    agg = metric.compute()
    assert agg["psnr_n"] == 1 and agg["psnr_skipped"] == 1 and agg["psnr"] == pytest.approx(out["psnr"])
    same = metric.update(EvalItem("same", VideoClip(ref, 25.0), VideoClip(ref, 25.0)))
    assert same["psnr"] == float("inf")  # identical clips: infinite PSNR, said as such
    agg = metric.compute()
    assert agg["psnr"] == float("inf") and np.isnan(agg["psnr_std"]) and agg["psnr_n"] == 2


def test_face_crop_mode_uses_the_reference_face_box():
    face = data.astronaut()
    ref = np.stack([face] * 3)
    gen = ref.copy()
    gen[:, 300:] = 0  # damage far below the face: invisible in face crops, visible in whole frames
    config = {"pairing": "paired", "lse_detector": "dlib"}
    face_ssim = SSIMMetric({**config, "fidelity_crop": "face"}).update(EvalItem("f", VideoClip(gen, 25.0),
                                                                                VideoClip(ref, 25.0)))
    frame_ssim = SSIMMetric({**config, "fidelity_crop": "frame"}).update(EvalItem("f", VideoClip(gen, 25.0),
                                                                                  VideoClip(ref, 25.0)))
    assert face_ssim["ssim"] == pytest.approx(1.0) and face_ssim["ssim_frames"] == 3
    assert frame_ssim["ssim"] < 0.8
    blank = VideoClip(np.full((2, 64, 64, 3), 90, np.uint8), 25.0)
    out = PSNRMetric({**config, "fidelity_crop": "face"}).update(EvalItem("b", blank, blank))
    assert out["psnr"] is None and "reference: no face detected in any of 2 frames" in out["reason"]


def test_decoded_clips_at_other_rates_are_resampled_to_25fps():
    rng = np.random.default_rng(6)
    ref = rng.integers(0, 256, (4, 24, 24, 3), dtype=np.uint8)
    doubled = np.repeat(ref, 2, axis=0)  # the same clip at 50 fps
    metric = PSNRMetric({"pairing": "paired", "fidelity_crop": "frame"})
    out = metric.update(EvalItem("r", VideoClip(doubled, 50.0), VideoClip(ref, 25.0)))
    assert out["reason"] is None and out["psnr_frames"] == 4 and out["psnr"] == float("inf")
