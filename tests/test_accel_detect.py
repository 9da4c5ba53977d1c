"""Face detectors and FAN on ONNX Runtime / OpenVINO: raw outputs and final boxes / landmarks at fp32 parity.

Seeded-v1 weights, small real frames of the sample clip. The raw outputs must
stay within the accel layer's parity (1e-3, or 1e-5 of the largest magnitude),
and what the detectors return (boxes, scores, five points; FAN's 68 points)
within 1e-3 px of eager torch's wherever they lie on the frame (seeded weights
also decode boxes far outside it, held to 1e-4 of the coordinate: see ``_close``).
"""
from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from talkingface.accel import AccelOptions, accelerate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    from talkingface.media import read_video

    clip = read_video(REPO / "dataset/video-retalking/astronaut_a.mp4")
    return np.stack([cv2.resize(np.asarray(f), (128, 128), interpolation=cv2.INTER_AREA) for f in clip.frames[:2]])


def _backend_copy(net: torch.nn.Module, backend: str, cache: Path) -> torch.nn.Module:
    return accelerate(copy.deepcopy(net), AccelOptions(device="cpu", cpu_backend=backend, accel_cache_dir=str(cache)))


def _close(got: np.ndarray, ref: np.ndarray, size: int = 128, px: float = 1e-3) -> None:
    """Equal to ``px`` wherever the answer lies near the frame; relative 1e-4 far outside it.

    Seeded weights regress offsets of magnitude ~100 (trained ones: ~1), which the decoders
    exponentiate: boxes at 1e3-1e8 px, where the runtimes' fp32 rounding of the raw output
    (<= 5e-4) becomes a relative 1e-4 of the coordinate.
    """
    assert got.shape == ref.shape and ref.size > 0
    rows = ref.reshape(len(ref), -1)
    near = np.all(np.abs(rows) <= 2 * size, axis=1)
    assert near.any()  # some answers lie on the frame: those are held to 1e-3 px
    assert float(np.abs(got.reshape(rows.shape)[near] - rows[near]).max()) <= px
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=px)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_s3fd_boxes_on_onnx_backends_equal_eager(frames, backend, tmp_path):
    pytest.importorskip(backend)
    from talkingface.face import load_net
    from talkingface.face.s3fd import S3FD, S3FDDetector

    net = load_net(S3FD(), name="s3fd", weights="seeded", seed=0)
    fast = _backend_copy(net, backend, tmp_path)
    for order, dtype in (("bgr", torch.float64), ("rgb", torch.float32)):
        eager_det = S3FDDetector(net, channel_order=order, decode_dtype=dtype)
        fast_det = S3FDDetector(fast, channel_order=order, decode_dtype=dtype)
        x = eager_det._input(frames)
        with torch.inference_mode():
            ref, got = net(x), fast(x)
        assert len(ref) == len(got) == 12
        assert max(float((r - g).abs().max()) for r, g in zip(ref, got)) <= 1e-3
        for r, g in zip(eager_det.faces(frames, batch_size=2), fast_det.faces(frames, batch_size=2)):
            _close(g, r)
    assert len(list((tmp_path / "onnx").glob("S3FD-*.onnx"))) == 1  # one shape: one export, both orders


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_retinaface_detections_on_onnx_backends_equal_eager(frames, backend, tmp_path):
    pytest.importorskip(backend)
    from talkingface.face.retinaface import FACEXLIB_OPTIONS, RetinaFaceDetector, load_retinaface

    eager = load_retinaface(weights="seeded", seed=0)
    fast_net = _backend_copy(eager.net, backend, tmp_path)
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(0)) * 60
    with torch.inference_mode():
        ref, got = eager.net(x), fast_net(x)
    scale = max(float(r.abs().max()) for r in ref)
    assert max(float((r - g).abs().max()) for r, g in zip(ref, got)) <= max(1e-3, 1e-5 * scale)
    for options in ({}, FACEXLIB_OPTIONS):
        for image in frames:
            ref_boxes, ref_points = RetinaFaceDetector(eager.net, **options).detect(image)
            boxes, points = RetinaFaceDetector(fast_net, **options).detect(image)
            # RetinaFace boxes are prior + 0.1 * regression * prior size: a raw difference of 5e-4 on a
            # seeded regression of ~264 moves a box by up to 5e-4 * 0.1 * 256 px (1e-2 px; 2e-3 measured)
            _close(boxes, ref_boxes, px=1e-2)
            _close(points, ref_points, px=1e-2)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fan_landmarks_on_onnx_backends_equal_eager(frames, backend, tmp_path):
    pytest.importorskip(backend)
    from talkingface.face.fan import center_scale, crop_face, heatmap_peaks, load_fan, to_image

    net = load_fan(weights="seeded", seed=0)
    fast = _backend_copy(net, backend, tmp_path)
    centre, scale = center_scale(np.array([30.0, 20.0, 100.0, 110.0, 1.0]))
    x = torch.from_numpy(crop_face(frames[0], centre, scale)[None]).permute(0, 3, 1, 2).float().div(255.0)
    with torch.inference_mode():
        ref, got = net(x), fast(x)
    peak = float(ref.abs().max())  # seeded heatmaps reach ~7e3: the accel layer's relative parity applies
    assert peak > 0.1 and float((ref - got).abs().max()) <= max(1e-3, 1e-5 * peak)
    ref_points, points = (to_image(heatmap_peaks(h.numpy())[0], centre, scale) for h in (ref, got))
    _close(points, ref_points)  # face-alignment's integer pixels


def test_auto_backend_runs_the_detectors_when_installed():
    from talkingface.accel import onnx_backend

    opts = AccelOptions(device="cpu")
    for name, order in (("S3FD", ("openvino", "onnxruntime")), ("FAN", ("openvino", "onnxruntime")),
                        ("RetinaFace", ("onnxruntime",))):
        expected = next((b for b in order if onnx_backend.available(b)), None)
        assert opts.cpu_backend_for(name) == expected
    assert AccelOptions(device="cpu", cpu_backend="torch").cpu_backend_for("S3FD") is None


def test_export_leaves_batchnorm_nets_in_eval_mode_and_each_new_shape_verified(tmp_path):
    """The exporter restores its wrapper's mode recursively: the module must come back in eval mode, its
    BatchNorm statistics untouched, so the parity check of the next input shape compares against eval torch."""
    pytest.importorskip("onnxruntime")
    from talkingface.face.retinaface import load_retinaface

    net = load_retinaface(weights="seeded", seed=0).net
    fast = _backend_copy(net, "onnxruntime", tmp_path)
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for shape in ((1, 3, 64, 64), (1, 3, 64, 96)):
            x = torch.randn(*shape, generator=g) * 60
            ref, got = net(x), fast(x)
            assert not fast.training
            scale = max(float(r.abs().max()) for r in ref)
            assert max(float((r - o).abs().max()) for r, o in zip(ref, got)) <= max(1e-3, 1e-5 * scale)
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in fast.state_dict().items())
    assert len(list((tmp_path / "onnx").glob("*.verified.json"))) == 2  # both shapes run on the backend
