"""The project's VideoReTalking stages against the official inference.py, stage by stage.

Fixture: tests/fixtures/pipeline_reference (scripts/parity/run_official_stages.py on
a 12-frame cut of dataset/video-retalking/astronaut_a.mp4, seeded-v1 weights; the
README there lists the patches, the substitutions and the tolerances). Each
test feeds the project stage the *official's* inputs for that stage, so a
difference is that stage's own, not one inherited from upstream.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "pipeline_reference"
CLIP = ROOT / "dataset" / "video-retalking" / "astronaut_a.mp4"

pytestmark = pytest.mark.skipif(not (FIX / "stages.npz").is_file(), reason="pipeline_reference fixture not generated")


@pytest.fixture(scope="module")
def ref() -> dict:
    return dict(np.load(FIX / "stages.npz"))


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((FIX / "meta.json").read_text())


@pytest.fixture(scope="module")
def frames(meta) -> np.ndarray:
    """The clip's first frames as the project decodes them (PyAV RGB, input rate kept)."""
    import av

    out = []
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == meta["frames"]:
                break
    return np.stack(out)


def test_clip_is_the_one_the_official_read(ref, frames):
    """Tolerance: exact (the official read a lossless RGB copy of these frames)."""
    assert hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest() == str(ref["frames_sha256"])


@pytest.fixture(scope="module")
def crop(frames):
    from talkingface.face.croper import Croper

    return Croper().crop(frames)


def test_crop_box_and_quad(ref, crop):
    """Croper (real dlib weights): box and quad exact (float64), as the official Croper.crop."""
    _, box, quad = crop
    np.testing.assert_array_equal(np.asarray(box, np.float64), ref["crop"])
    np.testing.assert_allclose(np.asarray(quad, np.float64), ref["quad"], rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def crops256(crop) -> np.ndarray:
    crops, _, _ = crop
    return np.stack([cv2.resize(np.asarray(c), (256, 256)) for c in crops])


class ReplayedBoxes:
    """The official run's substitute face boxes (dlib), given to the project's FAN stage.

    Same substitution on both sides: seeded S3FD finds no face (README).
    """

    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes, self.i = boxes, 0

    def detect(self, images: np.ndarray) -> list[np.ndarray]:
        out = []
        for _ in images:
            box = self.boxes[self.i]
            self.i += 1
            out.append(np.zeros((0, 5), np.float32) if box[0] < 0 else np.array([[*box, 1.0]], np.float32))
        return out


def test_fan_landmarks_on_the_same_boxes(ref, crops256):
    """FAN (seeded 2DFAN4) on the official's boxes: integer pixels, exact on every frame with a face."""
    from talkingface.face.fan import load_fan
    from talkingface.face.landmarks import FANLandmarks

    boxes = ref["fa_boxes"][: len(crops256)]
    with_face = boxes[:, 0] >= 0
    assert with_face.any(), "the fixture has no frame with a face box"
    landmarker = FANLandmarks(ReplayedBoxes(boxes), load_fan(weights="seeded"), "cpu")
    lm, _ = landmarker(crops256)
    np.testing.assert_array_equal(np.asarray(lm, np.float64)[with_face], ref["lm"][with_face])


def test_3dmm_coefficients(ref, crops256):
    """ReconNet + align_img on the official landmarks: max abs difference <= 1e-4 (float32 net)."""
    from talkingface.face import recon3d

    net = recon3d.load_recon(weights="seeded")
    coeffs = recon3d.coefficients(net, crops256, ref["lm"].astype(np.float32), recon3d._SEEDED_LM3D.copy())
    np.testing.assert_allclose(coeffs, ref["coeffs"], rtol=0, atol=1e-4)


def test_dnet_stabilised_faces(ref, crops256):
    """D-Net on the official coefficients with expression_center: uint8 within 1 grey level."""
    from talkingface.face.recon3d import seeded_expression
    from talkingface.models.video_retalking import semantic
    from talkingface.models.video_retalking.networks import build_networks

    dnet = build_networks("seeded").dnet
    coeffs = ref["coeffs"].astype(np.float32)
    expression = seeded_expression("neutral")
    for j, idx in enumerate(ref["keep"]):
        # official trans_image: to_tensor (x/255, float32) then normalize (x-0.5)/0.5
        src = (torch.from_numpy(crops256[idx]).permute(2, 0, 1).float() / 255.0 - 0.5) / 0.5
        drive = semantic.driving_batch(coeffs, [int(idx)], expression, one_shot=False)
        with torch.no_grad():
            fake = dnet(src[None], drive)["fake_image"]
        img = np.uint8((fake[0].permute(1, 2, 0).clamp(-1, 1).numpy() + 1) / 2.0 * 255)
        diff = np.abs(img[:, :, ::-1].astype(int) - ref["dnet_bgr"][j].astype(int))
        assert diff.max() <= 1, f"frame {idx}: max {diff.max()}, mean {diff.mean():.3f} grey levels"


def test_mel_windows(ref, meta):
    """Mel windows of the cut audio: same count (one per official frame), values within 1e-4."""
    import soundfile as sf

    from talkingface.media import mel as project_mel

    wav, rate = sf.read(str(ROOT / meta["audio"]), dtype="int16")
    wav = wav[: meta["audio_samples"]].astype(np.float32) / 32768.0
    spec = project_mel.melspectrogram(wav)
    chunks = project_mel.mel_chunks(spec, None, meta["fps"]).numpy()
    assert len(chunks) == len(ref["lnet_mel"]) == meta["frames"]
    np.testing.assert_allclose(chunks, ref["lnet_mel"][..., 0], rtol=0, atol=1e-4)


def lnet_images(ref) -> np.ndarray:
    """The official L-Net input (N, 384, 384, 6) float64: masked face | reference (the face's lower half is zeros)."""
    top = ref["lnet_face_top_bgr"]
    face = np.zeros((len(top), 2 * top.shape[1], *top.shape[2:]), np.float64)
    face[:, : top.shape[1]] = top / 255.0
    return np.concatenate([face, ref["lnet_ref_bgr"].astype(np.float64) / 255.0], 3)


def test_lnet_on_the_official_batch(ref, enet):
    """L-Net (E-Net's low_res branch) on the official inputs: max abs <= 2e-4.

    E-Net's own output: test_enet_output.
    """
    img = torch.FloatTensor(np.transpose(lnet_images(ref), (0, 3, 1, 2)))
    mel = torch.FloatTensor(np.transpose(ref["lnet_mel"][ref["keep"]], (0, 3, 1, 2)))
    with torch.no_grad():
        _, low = enet(mel, img, img[:, 3:], generator=torch.Generator().manual_seed(1000))
    np.testing.assert_allclose(low.numpy(), ref["enet_low_res"], rtol=0, atol=2e-4)


# ---------------------------------------------------------------------------------------------------------
# Enhancement, E-Net, GFPGAN and the compose, with the defaults and with ``compat: reference``.
# The two differ only in where E-Net's and GFPGAN's noise comes from (README table, row 1): the
# official draws it from torch's global generator (the driver pins it with torch.manual_seed);
# ``noise: fresh`` (reference) draws from the same global generator, the default ``noise: seeded``
# from its own torch.Generator. Given the driver's seed in that generator, the default reproduces
# the official too, and the global generator no longer matters (asserted by scrambling it).

COMPATS = ("default", "reference")


@pytest.fixture(scope="module", params=COMPATS)
def options(request):
    from talkingface.config import load_config
    from talkingface.models.video_retalking.options import REFERENCE_PRESET, PipelineOptions

    opts = PipelineOptions.from_config(load_config("video_retalking", None, (),
                                                   {"compat": request.param, "device": "cpu"}))
    differs = {k for k, v in REFERENCE_PRESET.items() if getattr(opts, k) != v}
    assert differs == ({"noise"} if request.param == "default" else set())  # the README table's one row
    return opts


def official_noise(options, seed: int) -> torch.Generator | None:
    """The driver's ``torch.manual_seed(seed)`` as each compat draws noise (see the comment above)."""
    if options.noise == "fresh":
        torch.manual_seed(seed)
        return None
    torch.manual_seed(987654321)  # seeded noise must not read the global generator
    return torch.Generator().manual_seed(seed)


class ReplayedFace:
    """The official run's substitute face for one call (box + five points), as RetinaFace returns it.

    Same substitution on both sides (README): dlib, else the template box and points.
    """

    def __init__(self, row: np.ndarray) -> None:
        self.box = np.array([[*row[:4], 1.0]], np.float32)
        self.points = np.asarray(row[4:], np.float32).reshape(1, 5, 2)
        self.calls = 0

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return self.box.copy(), self.points.copy()


@pytest.fixture(scope="module")
def parse():
    from talkingface.face import parsing

    net = parsing.load_parsenet(weights="seeded")
    return lambda image: parsing.parse_labels(net, image)


@pytest.fixture(scope="module")
def gfpgan_net():
    from talkingface.face.gfpgan import load_gfpgan

    return load_gfpgan(weights="seeded")


def rgb(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[..., ::-1])


def grey_levels(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return float(diff.mean()), int(diff.max())


def test_gpen_enhanced_references(ref, parse):
    """GPEN FaceEnhancement(face_enhance=True) on the official D-Net frames and face: mean <= 0.05, max <= 2."""
    from talkingface.face.gpen import load_gpen
    from talkingface.face.restore import FaceEnhancer

    gpen = load_gpen(weights="seeded")
    for j, idx in enumerate(ref["keep"]):
        image = rgb(ref["dnet_bgr"][j])
        face = ReplayedFace(ref["gpen_det"][idx])
        out = FaceEnhancer(gpen, parse, face).process(image, image, face_enhance=True, poisson_blending=False)
        assert face.calls == 1
        mean, worst = grey_levels(out, rgb(ref["gpen_out_bgr"][j]))
        assert mean <= 0.05 and worst <= 2, f"frame {idx}: mean {mean:.4f}, max {worst} grey levels"


def lnet_batch(ref) -> tuple[torch.Tensor, torch.Tensor]:
    """The official L-Net/E-Net inputs of frames 0 and 11 (mel, masked face | reference)."""
    img = torch.FloatTensor(np.transpose(lnet_images(ref), (0, 3, 1, 2)))
    mel = torch.FloatTensor(np.transpose(ref["lnet_mel"][ref["keep"]], (0, 3, 1, 2)))
    return mel, img


def enet_noise(ref, generator: torch.Generator | None) -> list[torch.Tensor]:
    """E-Net's four noise maps for frames 0 and 11 of the official's one 12-frame batch.

    The official draws (12, 1, h, w) per style conv (200, 200, 400, 400 px, in that order: the
    E-Net parity fixture pins the order); a frame's output depends only on its own input and its
    slice of each map. The maps are drawn by the project's own ``draw_noise`` from ``generator``
    (None: torch's global generator), so running the E-Net on the two stored frames with these
    slices is what the project's E-Net computes for them inside the 12-frame batch.
    """
    from talkingface.face.stylegan import draw_noise

    n, keep = len(ref["lnet_mel"]), ref["keep"]
    return [draw_noise(torch.empty(n, 1, size, size), generator)[keep] for size in (200, 200, 400, 400)]


@pytest.fixture(scope="module")
def enet():
    from talkingface.models.video_retalking.networks import build_networks

    return build_networks("seeded").enet


_ENET_PIXELS: dict[str, np.ndarray] = {}


def enet_pixels(enet, ref, options) -> np.ndarray:
    """The project's E-Net output for frames 0 and 11 as the official makes pixels of it (BGR uint8, CHW)."""
    if options.compat not in _ENET_PIXELS:
        mel, img = lnet_batch(ref)
        noise = enet_noise(ref, official_noise(options, 1000))
        with torch.no_grad():
            pred, _ = enet(mel, img, img[:, 3:], noise=noise)
        _ENET_PIXELS[options.compat] = (pred.clamp(0, 1).numpy() * 255.0).astype(np.uint8)  # p.astype(np.uint8)
    return _ENET_PIXELS[options.compat]


def test_enet_output(ref, enet, options):
    """E-Net on the official batch and noise seed: uint8 (truncated as the official) within 1 grey level."""
    mean, worst = grey_levels(enet_pixels(enet, ref, options), ref["enet_pred_u8"])
    assert worst <= 1 and mean <= 0.01, f"mean {mean:.4f}, max {worst}"


def test_enet_default_noise_is_its_own_generator(ref, enet):
    """Defaults: noise drawn from the pipeline's generator whatever torch's global generator holds;
    seeded with ``seed`` (0) instead of the driver's 1000 it is other noise, and only that moves the
    E-Net output off the official's."""
    from talkingface.config import load_config
    from talkingface.models.video_retalking.options import PipelineOptions

    opts = PipelineOptions.from_config(load_config("video_retalking", None, (), {"device": "cpu"}))
    assert opts.noise == "seeded"
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        draws.append(enet_noise(ref, torch.Generator().manual_seed(opts.seed)))
    assert all(torch.equal(a, b) for a, b in zip(*draws))
    mel, img = lnet_batch(ref)
    with torch.no_grad():
        pred, _ = enet(mel, img, img[:, 3:], noise=draws[0])
    pixels = (pred.clamp(0, 1).numpy() * 255.0).astype(np.uint8)
    assert grey_levels(pixels, ref["enet_pred_u8"])[1] > 1


def gfpgan_inputs(ref, frames) -> list[np.ndarray]:
    """The official GFPGAN input (RGB): the clip frame with the official E-Net pixels pasted at the box
    (``cv2.resize(p.astype(uint8))``); run_official_stages.py checks it equals the dumped one."""
    out = []
    for j, idx in enumerate(ref["keep"]):
        y1, y2, x1, x2 = ref["coords"][idx]
        pasted = frames[idx].copy()
        pasted[y1:y2, x1:x2] = cv2.resize(rgb(ref["enet_pred_u8"][j].transpose(1, 2, 0)), (x2 - x1, y2 - y1))
        out.append(pasted)
    return out


def make_restorer(gfpgan_net, options, face):
    from talkingface.face.restore import GFPGANRestorer

    return GFPGANRestorer(gfpgan_net, face, "cpu", noise=options.noise,
                          generator=torch.Generator() if options.noise == "seeded" else None)


def test_gfpgan_restored_image(ref, frames, gfpgan_net, options):
    """GFPGANer.enhance (centre face, paste back) on the official input, face and noise seed (2000 + frame):
    mean <= 0.05 grey levels, >= 99 % of the pixels within 1 level.

    Not closer because OpenCV differs: the reference venv's OpenCV 5.0 warps the face to the template
    one level off OpenCV 4.14's on some pixels, and the seeded GFPGAN (outputs up to |13| before the
    clamp) turns that into up to ~11 levels on ~2 % of the aligned face. On the same aligned face the
    two GFPGANs are bit-equal (tests/test_face_restore_nets.py and the README of the fixture)."""
    inputs = gfpgan_inputs(ref, frames)
    for j, idx in enumerate(ref["keep"]):
        face = ReplayedFace(ref["gfpgan_det"][idx])
        restorer = make_restorer(gfpgan_net, options, face)
        restorer.generator = official_noise(options, 2000 + int(idx))
        out = restorer.enhance(inputs[j], only_center_face=True, paste_back=True)
        official = rgb(ref["gfpgan_out_bgr"][j])
        mean, worst = grey_levels(out, official)
        off = float((np.abs(out.astype(int) - official.astype(int)) > 1).mean())
        assert mean <= 0.05 and off <= 0.01, f"frame {idx}: mean {mean:.4f}, max {worst}, {off:.2%} over 1 level"


def test_mouth_mask(ref, parse):
    """ParseNet mouth classes (10-12) of the official restored box, 512 px: exact."""
    from talkingface.face.parsing import labels_to_mask
    from talkingface.models.video_retalking.pipeline import MOUTH_CLASSES

    for j, idx in enumerate(ref["keep"]):
        y1, y2, x1, x2 = ref["coords"][idx]
        mask = labels_to_mask(parse(rgb(ref["gfpgan_out_bgr"][j])[y1:y2, x1:x2]), MOUTH_CLASSES)
        np.testing.assert_array_equal(mask, ref["mouth_mask"][j])


def test_compose_masks_and_blends(ref, frames, parse):
    """The official compose from the official restored frame: mouth blend (10 levels, whole frame at
    512 px) within 1 grey level max; the re-parsed face mask (GPEN warp of the official blended frame,
    ParseNet) <= 0.5 % of pixels differ; the last blend (6 levels) mean <= 0.1 grey levels.

    Not closer because OpenCV differs: on the same image and matrix, the reference venv's
    OpenCV 5.0 ``warpAffine`` and 4.14's differ by up to 4 levels on ~6 % of the values of this
    1.8x face warp (measured); ParseNet relabels ~0.14 % of the pixels from that."""
    from talkingface.face.parsing import labels_to_mask
    from talkingface.face.restore import GPEN_FACE_CLASSES, FaceEnhancer, gpen_reference_points, warp_and_crop_face
    from talkingface.models.video_retalking import face_parts

    mixed_official = [rgb(ref["compose_in_bgr"][j]) for j in range(len(ref["keep"]))]
    inputs = gfpgan_inputs(ref, frames)
    for j, idx in enumerate(ref["keep"]):
        y1, y2, x1, x2 = ref["coords"][idx]
        np.testing.assert_array_equal(ref["compose_bbox"][idx], ref["coords"][idx])
        restored, pasted = rgb(ref["gfpgan_out_bgr"][j]), inputs[j]
        mouth = np.zeros(restored.shape[:2], np.float32)
        mouth[y1:y2, x1:x2] = cv2.resize(ref["mouth_mask"][j], (x2 - x1, y2 - y1)) == 255
        mixed = face_parts.blend_whole_frame(restored, pasted, mouth, 10)
        mean, worst = grey_levels(mixed, mixed_official[j])
        assert worst <= 1, f"frame {idx}: mouth blend mean {mean:.4f}, max {worst}"

        row = ref["compose_det"][idx]
        aligned, _ = warp_and_crop_face(mixed_official[j], row[4:].reshape(5, 2), gpen_reference_points(512), 512)
        mask = labels_to_mask(parse(aligned), GPEN_FACE_CLASSES)
        differ = float((mask != ref["compose_face_mask"][j]).mean())
        assert differ <= 0.005, f"frame {idx}: {differ:.3%} of the re-parsed face mask differs"

        out = FaceEnhancer(None, parse, ReplayedFace(row)).process(mixed_official[j], frames[idx],
                                                                  bbox=(y1, y2, x1, x2),
                                                                  face_enhance=False, poisson_blending=True)
        mean, worst = grey_levels(out, rgb(ref["final_bgr"][j]))
        assert mean <= 0.1, f"frame {idx}: final blend mean {mean:.4f}, max {worst}"


def test_final_frames_from_the_project_chain(ref, frames, parse, gfpgan_net, enet, options):
    """E-Net on the official L-Net batch -> the pipeline's compose (GFPGAN, mouth mask, both blends) on
    the clip frames and the official faces and noise seeds: final frames within 1 grey level on average."""
    from talkingface.face.restore import FaceEnhancer
    from talkingface.models.video_retalking import face_parts
    from talkingface.models.video_retalking.parts import Parts
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

    preds = enet_pixels(enet, ref, options)
    for j, idx in enumerate(ref["keep"]):
        restorer = make_restorer(gfpgan_net, options, ReplayedFace(ref["gfpgan_det"][idx]))
        composer = FaceEnhancer(None, parse, ReplayedFace(ref["compose_det"][idx]))

        def blend_region(a, b, mask, box, levels=10):
            assert options.compose == "official"
            return face_parts.blend_whole_frame(a, b, mask, levels)

        def face_blend(generated, original, box, face=None):
            return composer.process(generated, original, bbox=tuple(int(v) for v in box), face_enhance=False,
                                    poisson_blending=True)

        parts = Parts(crop=None, landmarks=None, coefficients=None, expression=None, dnet=None, enet=None,
                      enhance_face=None, face_boxes=None, parse_labels=parse, blend_region=blend_region,
                      face_blend=face_blend,
                      restore=lambda frame, box: restorer.enhance(frame, only_center_face=True, paste_back=True))
        restorer.generator = official_noise(options, 2000 + int(idx))
        pred_rgb = np.ascontiguousarray(preds[j].transpose(1, 2, 0)[..., ::-1])
        out = VideoReTalkingPipeline(parts, options).compose_frame(frames[idx], pred_rgb, ref["coords"][idx])
        mean, worst = grey_levels(out, rgb(ref["final_bgr"][j]))
        assert mean <= 1.0, f"frame {idx}: mean {mean:.4f}, max {worst} grey levels"
