"""Face-stack parts of the pipeline, built from :mod:`talkingface.face`.

Kept apart from the networks so that each part can be replaced (e.g. RetinaFace
or dlib five-point detection) without touching the pipeline.
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip, mouth corners from 68 points (the usual 68 -> 5 reduction)."""
    lm68 = np.asarray(lm68, np.float32)
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]])


class DlibFivePointDetector:
    """``image -> (boxes (K,5), landmarks5 (K,5,2))`` from dlib, largest face first.

    Used for paste-back alignment when RetinaFace is not available; dlib's
    weights ship with a package, so this works offline with real detections.
    """

    def __init__(self) -> None:
        import dlib

        from talkingface.checkpoints import checkpoint_path

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(checkpoint_path("dlib_landmarks")))

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from talkingface.face.landmarks import predict_points

        rects = sorted(self.detector(image, 0), key=lambda r: -r.width() * r.height())
        boxes, points = [], []
        for rect in rects:
            lm = predict_points(self.predictor, image, rect)
            boxes.append([rect.left(), rect.top(), rect.right(), rect.bottom(), 1.0])
            points.append(five_points(lm))
        if not boxes:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        return np.asarray(boxes, np.float32), np.stack(points)


def expand_box(box: tuple[int, int, int, int], shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    y1, y2, x1, x2 = box
    dy, dx = int((y2 - y1) * margin), int((x2 - x1) * margin)
    height, width = shape[:2]
    return max(0, y1 - dy), min(height, y2 + dy), max(0, x1 - dx), min(width, x2 + dx)


def blend_in_region(a: np.ndarray, b: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
                    levels: int, size: int = 512, margin: float = 0.25) -> np.ndarray:
    """Laplacian blend of ``a`` over ``b`` with ``mask``, computed around ``box`` only.

    The reference blends whole frames resized to 512x512 and back, which blurs
    the background; here only a padded box is resampled, and pixels outside it
    are ``b``'s exactly.
    """
    from talkingface.face.blend import laplacian_blend

    y1, y2, x1, x2 = expand_box(box, b.shape, margin)
    region = [cv2.resize(np.ascontiguousarray(x[y1:y2, x1:x2]), (size, size))
              for x in (a.astype(np.float32), b.astype(np.float32), mask.astype(np.float32))]
    blended = laplacian_blend(region[0], region[1], region[2], levels)
    blended = cv2.resize(np.clip(blended, 0, 255), (x2 - x1, y2 - y1))
    out = b.copy()
    out[y1:y2, x1:x2] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def build(config: Any, mode: str, seed: int, device: str, root: Any, options: Any) -> dict[str, Any]:
    """The face-stack callables of :class:`~talkingface.models.video_retalking.parts.Parts`."""
    from talkingface.face import croper, landmarks, parsing, recon3d, restore, s3fd
    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen

    crop_tool = croper.Croper(select=options.face_select)  # face_select: one person in every stage
    landmarker = landmarks.make_landmarks(options.landmarks, select="center")  # runs on crops of that person
    recon = recon3d.load_recon(weights=mode, seed=seed, device=device)
    try:
        lm3d = recon3d.load_lm3d()
    except Exception:
        if mode != "seeded":
            raise
        lm3d = recon3d.seeded_lm3d()
    parse_net = parsing.load_parsenet(weights=mode, seed=seed, device=device)
    landmark_parser = None
    if mode == "seeded":
        from talkingface.face.landmark_parsing import LandmarkParser

        log.warning("face masks: seeded ParseNet labels pixels at random; mouth/face masks are drawn from dlib "
                    "landmarks (real weights) instead")
        dlib_points = landmarker if isinstance(landmarker, landmarks.DlibLandmarks) else landmarks.DlibLandmarks()
        landmark_parser = LandmarkParser(dlib_points)
    detector5 = DlibFivePointDetector()
    if options.face_detector == "s3fd" and mode == "seeded":
        log.warning("face boxes: seeded S3FD weights cannot find faces; using dlib boxes (real weights) instead")
    box_detector = s3fd.DlibBoxDetector(select=options.face_select) \
        if options.face_detector == "dlib" or mode == "seeded" else \
        s3fd.load_s3fd(weights=mode, seed=seed, device=device, select=options.face_select)
    use_restoration = options.enhancer != "none"
    gfpgan = None
    if use_restoration:
        gpen = restore.FaceEnhancer(load_gpen(weights=mode, seed=seed, device=device), parse_net, detector5, device)
        gfpgan = restore.GFPGANRestorer(load_gfpgan(weights=mode, seed=seed, device=device), detector5, device)
    from talkingface.accel import AccelOptions, accelerate

    accel = AccelOptions.from_config(config, device)  # accel hook: each loaded network run by the accel layer
    for net in [recon, parse_net] + ([gpen.gpen, gfpgan.net] if use_restoration else []):
        accelerate(net, accel)

    def coefficients(crops256: np.ndarray, lm: np.ndarray) -> np.ndarray:
        return recon3d.coefficients(recon, crops256, lm, lm3d, device=device)

    def expression(kind: str) -> np.ndarray:
        return recon3d.expression_template(kind, net=recon, lm3d=lm3d, landmarks=landmarker, weights=mode)

    def enhance_face(image: np.ndarray) -> np.ndarray:
        return gpen.process(image, image, face_enhance=True, poisson_blending=False) if use_restoration else image

    def face_boxes(frames: np.ndarray, pads: Any, nosmooth: bool, anchor: Any = None) -> tuple[np.ndarray, list[int]]:
        return s3fd.face_boxes(frames, box_detector, pads=tuple(pads), nosmooth=nosmooth,
                               batch_size=options.face_det_batch_size, anchor=anchor)

    def restore_frame(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """GFPGAN on the face in ``box`` (y1, y2, x1, x2): the edited person, not the one nearest the centre."""
        if not use_restoration:
            return frame
        y1, y2, x1, x2 = box
        return gfpgan.enhance(frame, only_center_face=True, paste_back=True, near=((x1 + x2) / 2, (y1 + y2) / 2))

    def parse_labels(image: np.ndarray) -> np.ndarray:
        if landmark_parser is not None:
            return landmark_parser(image)
        return parsing.parse_labels(parse_net, image, device=device)

    def face_blend(generated: np.ndarray, original: np.ndarray, box: tuple[int, int, int, int],
                   face: np.ndarray) -> np.ndarray:
        """Only the parsed face (classes 1-7, 10-12) inside the box comes from ``generated``.

        The reference re-detects and re-parses the generated frame here; the face
        mask of the box parsed once in compose is the same region.
        """
        y1, y2, x1, x2 = box
        mask = np.zeros(original.shape[:2], np.float32)
        mask[y1:max(y1 + 1, y2 - 5), x1:x2] = face[: max(1, y2 - 5 - y1)]
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1, sigmaY=1)
        return blend_in_region(generated, original, mask, box, levels=6)

    compose_batch = enhance_faces = None  # accel hook: the GPU path (batched restoration, compose in torch)
    if {"auto": device.startswith("cuda"), "true": True}.get(str(options.compose_on_device).lower(), False):
        from talkingface.accel.batched_enhance import enhance_batch
        from talkingface.accel.device_compose import DeviceComposer

        compose_batch = DeviceComposer(gfpgan, None if landmark_parser is not None else parse_net, parse_labels,
                                       device)
        if use_restoration:
            def enhance_faces(images: list[np.ndarray]) -> list[np.ndarray]:
                return enhance_batch(gpen, images)

    return {"compose_batch": compose_batch, "enhance_faces": enhance_faces, "crop": crop_tool.crop, "landmarks": landmarker, "coefficients": coefficients, "expression": expression,
            "enhance_face": enhance_face, "face_boxes": face_boxes, "restore": restore_frame,
            "parse_labels": parse_labels, "blend_region": lambda a, b, m, box, levels=10: blend_in_region(a, b, m, box,
                                                                                                      levels),
            "face_blend": face_blend}
