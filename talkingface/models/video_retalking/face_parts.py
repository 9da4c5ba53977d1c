"""Face-stack parts of the pipeline, built from :mod:`talkingface.face`.

Kept apart from the networks so that each part can be replaced without touching
the pipeline. Every file comes from the one configured checkpoint folder
(:class:`~talkingface.models.video_retalking.options.CheckpointFiles`), and the
parts are those of the official ``inference.py`` unless an option says otherwise:

* stage-1 landmarks: face-alignment's FAN on S3FD boxes (``landmarks: fan``);
* L-Net face boxes: face_detection's S3FD (``face_detector: s3fd``);
* GPEN ``FaceEnhancement``: GPEN's RetinaFace-R50, ParseNet, GPEN-BFR-512;
* GFPGAN ``GFPGANer``: facexlib's retinaface_resnet50, the face nearest the
  image centre, square soft paste-back (``use_parse=False`` there);
* the best-scoring face wherever a detector returns several, unless
  ``face_select`` picks one person for the whole clip.

Seeded runs route the detectors and the parser through
:class:`~talkingface.models.video_retalking.stand_ins.SeededStandIns`.
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)


def expand_box(box: tuple[int, int, int, int], shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    y1, y2, x1, x2 = box
    dy, dx = int((y2 - y1) * margin), int((x2 - x1) * margin)
    height, width = shape[:2]
    return max(0, y1 - dy), min(height, y2 + dy), max(0, x1 - dx), min(width, x2 + dx)


def blend_in_region(a: np.ndarray, b: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
                    levels: int, size: int = 512, margin: float = 0.25) -> np.ndarray:
    """Laplacian blend of ``a`` over ``b`` with ``mask``, computed around ``box`` only (``compose: box``).

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


def blend_whole_frame(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int, size: int = 512) -> np.ndarray:
    """The official mouth blend: whole frames resized to 512, Laplacian blend, back, clipped, truncated."""
    from talkingface.face.blend import laplacian_blend

    height, width = b.shape[:2]
    a5, b5, m5 = (cv2.resize(x, (size, size)) for x in (a, b, np.float32(mask)))
    blended = laplacian_blend(a5, b5, m5, levels)
    return np.uint8(cv2.resize(np.clip(blended, 0, 255), (width, height)))


def make_croper(options: Any) -> Any:
    """The clip-crop part alone (dlib only, no networks), predictor from ``options.checkpoint_dir``.

    For callers that crop before loading the networks (``infer`` fails fast on a
    clip without a face).
    """
    from talkingface.face.croper import Croper
    from talkingface.models.video_retalking.options import CheckpointFiles

    return Croper(CheckpointFiles(options.checkpoint_dir, seeded=True).path("dlib_landmarks"),
                  select=options.face_select)


def build(config: Any, mode: str, seed: int, device: str, options: Any, files: Any) -> dict[str, Any]:
    """The face-stack callables of :class:`~talkingface.models.video_retalking.parts.Parts`.

    ``files`` (:class:`CheckpointFiles`) gives every path; with ``mode="seeded"``
    the detectors and the parser go through the seeded stand-ins.
    """
    from talkingface.face import boxes, croper, dlib_detect, landmarks, load_net, parsing, recon3d, restore, s3fd
    from talkingface.face.fan import load_fan
    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen
    from talkingface.face.retinaface import load_retinaface
    from talkingface.models.video_retalking.options import uses_expression_file
    from talkingface.models.video_retalking.stand_ins import SeededStandIns

    seeded = mode == "seeded"
    predictor = files.path("dlib_landmarks")
    stand_ins = SeededStandIns(options.seeded_stand_ins, predictor) if seeded else None
    person = options.face_select  # None: the best-scoring face of every stage and frame (the official)

    crop_tool = croper.Croper(predictor, select=person)
    recon = recon3d.load_recon(files.path("face3d"), weights=mode, seed=seed, device=device)
    bfm = files.path("bfm")
    lm3d = recon3d.load_lm3d(bfm) if bfm is not None else recon3d.seeded_lm3d()
    expression_mat = files.path("expression") if uses_expression_file(options.expression) else None

    s3fd_net = fan_net = None
    if options.landmarks == "fan" or options.face_detector == "s3fd":
        s3fd_net = load_net(s3fd.S3FD(), name="s3fd", path=files.path("s3fd"), weights=mode, seed=seed,
                            device=device)

    def with_stand_in_boxes(detector: Any) -> Any:
        return stand_ins.boxes(detector) if stand_ins is not None else detector

    on_crops = "center" if person is not None else None  # the crop was made around the chosen person
    if options.landmarks == "fan":
        fan_detector = s3fd.S3FDDetector(s3fd_net, device, channel_order="bgr", decode_dtype=torch.float64)
        fan_net = load_fan(files.path("fan"), weights=mode, seed=seed, device=device)
        landmarker = landmarks.FANLandmarks(with_stand_in_boxes(fan_detector), fan_net,
                                            device, select=on_crops, gaps=options.landmark_gaps)
    else:
        landmarker = landmarks.DlibLandmarks(predictor, select=on_crops, gaps=options.landmark_gaps)

    if options.face_detector == "s3fd":
        box_detector = with_stand_in_boxes(s3fd.S3FDDetector(s3fd_net, device, channel_order="rgb", select=person))
    else:
        box_detector = dlib_detect.DlibBoxDetector(select=person)

    parse_net = parsing.load_parsenet(files.path("parsenet"), weights=mode, seed=seed, device=device)

    def parse_with_net(image: np.ndarray) -> np.ndarray:
        return parsing.parse_labels(parse_net, image, device=device)

    parse = stand_ins.parser(parse_with_net) if stand_ins is not None else parse_with_net

    def retinaface(flavour: str, name: str) -> Any:
        return load_retinaface(files.path(name), weights=mode, seed=seed, device=device, flavour=flavour)

    def five_points_of(detector: Any, use: str) -> Any:
        return stand_ins.five_points(detector, use) if stand_ins is not None else detector

    gpen_detector = None
    if options.enhancer == "gpen" or options.compose == "official":
        gpen_detector = retinaface("gpen", "retinaface")
    gpen = gfpgan = gfpgan_detector = None
    if options.enhancer == "gpen":
        gfpgan_detector = retinaface("facexlib", "gfpgan_detection")
        gpen = restore.FaceEnhancer(load_gpen(files.path("gpen"), weights=mode, seed=seed, device=device), parse,
                                    five_points_of(gpen_detector, "RetinaFace (GPEN references)"), device)
        generator = torch.Generator(device="cpu").manual_seed(seed) if options.noise == "seeded" else None
        gfpgan = restore.GFPGANRestorer(load_gfpgan(files.path("gfpgan"), weights=mode, seed=seed, device=device),
                                        five_points_of(gfpgan_detector,
                                                       "RetinaFace (GFPGAN)"),
                                        device, noise=options.noise, generator=generator)
    # the official compose runs FaceEnhancement.process(face_enhance=False): detector + parser, no GPEN net
    composer = None
    if options.compose == "official":
        composer = restore.FaceEnhancer(None, parse, five_points_of(gpen_detector, "RetinaFace (compose)"), device)

    def hint(detector: Any, box: tuple[int, int, int, int]) -> None:
        """Tell a seeded five-point stand-in where the face is (used only when dlib finds none)."""
        if hasattr(detector, "hint"):
            y1, y2, x1, x2 = (int(v) for v in box)
            detector.hint = (x1, y1, x2, y2)

    def reset_noise(generator: torch.Generator | None = None) -> None:
        """Start a clip's GFPGAN noise: ``seeded`` restarts its own generator (the same draws for the same
        input); ``fresh`` draws from ``generator``, the pipeline call's (shared with E-Net, in call order)."""
        if gfpgan is None:
            return
        if gfpgan.noise == "seeded" and gfpgan.generator is not None:
            gfpgan.generator.manual_seed(seed)
        elif gfpgan.noise == "fresh":
            gfpgan.generator = generator
    from talkingface.accel import AccelOptions, accelerate

    accel = AccelOptions.from_config(config, device)  # accel hook: each loaded network run by the accel layer
    nets = [recon, parse_net] + ([gpen.gpen, gfpgan.net] if gpen is not None else [])
    if not device.startswith("cuda"):  # detectors + FAN: the CPU backends (onnx_backends.md); on CUDA they stay
        # fp32 eager as before (fp16 autocast / channels_last there are unmeasured for them)
        nets += [s3fd_net, fan_net] + [d.net for d in (gpen_detector, gfpgan_detector) if d is not None]
    for net in nets:
        if net is not None:
            accelerate(net, accel)

    def coefficients(crops256: np.ndarray, lm: np.ndarray) -> np.ndarray:
        return recon3d.coefficients(recon, crops256, lm, lm3d, device=device)

    def expression(kind: str) -> np.ndarray:
        if uses_expression_file(kind):
            if expression_mat is None:  # seeded run without expression.mat
                log.warning("expression %r: %s has no expression.mat; SEEDED template used", kind, files.root)
                return recon3d.seeded_expression(str(kind), seed)
            return recon3d.expression_template(kind, mat_path=expression_mat)
        return recon3d.expression_template(kind, net=recon, lm3d=lm3d, landmarks=landmarker, weights=mode,
                                           device=device, seed=seed)

    def enhance_face(image: np.ndarray) -> np.ndarray:
        return gpen.process(image, image, face_enhance=True, poisson_blending=False) if gpen is not None else image

    def face_boxes(frames: np.ndarray, pads: Any, nosmooth: bool, anchor: Any = None) -> tuple[np.ndarray, list[int]]:
        return boxes.face_boxes(frames, box_detector, pads=tuple(pads), nosmooth=nosmooth,
                               batch_size=options.face_det_batch_size, anchor=anchor)

    def restore_frame(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """GFPGAN on the face nearest the frame centre (official), or on the chosen person's (``face_select``)."""
        if gfpgan is None:
            return frame
        hint(gfpgan.detector, box)
        y1, y2, x1, x2 = box
        near = ((x1 + x2) / 2, (y1 + y2) / 2) if person is not None else None
        return gfpgan.enhance(frame, only_center_face=True, paste_back=True, near=near)

    def face_blend(generated: np.ndarray, original: np.ndarray, box: tuple[int, int, int, int],
                   face: np.ndarray | None = None) -> np.ndarray:
        """The last blend: the face of ``generated`` over ``original`` inside ``box``.

        ``compose: official``: GPEN's ``FaceEnhancement.process(generated, original, bbox,
        face_enhance=False, possion_blending=True)``: RetinaFace re-detects the face,
        ParseNet re-parses the aligned face, whole-frame 512 px blend.
        ``compose: box``: the face mask ``face`` of the box parsed once in compose,
        blended inside a padded box only.
        """
        if composer is not None:
            hint(composer.detector, box)
            return composer.process(generated, original, bbox=tuple(int(v) for v in box), face_enhance=False,
                                    poisson_blending=True)
        y1, y2, x1, x2 = box
        mask = np.zeros(original.shape[:2], np.float32)
        mask[y1:max(y1 + 1, y2 - 5), x1:x2] = face[: max(1, y2 - 5 - y1)]
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1, sigmaY=1)
        return blend_in_region(generated, original, mask, box, levels=6)

    def blend_region(a: np.ndarray, b: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
                     levels: int = 10) -> np.ndarray:
        if options.compose == "official":
            return blend_whole_frame(a, b, mask, levels)
        return blend_in_region(a, b, mask, box, levels)

    # accel hook, the GPU path: batched GPEN references and the compose in torch on the device. Its
    # compose is the box compose (compose=box) and its batched enhancer needs the real ParseNet, so
    # the official compose and seeded stand-ins keep the per-frame path.
    compose_batch = enhance_faces = None
    if {"auto": device.startswith("cuda"), "true": True}.get(str(options.compose_on_device).lower(), False):
        from talkingface.accel.batched_enhance import enhance_batch
        from talkingface.accel.device_compose import DeviceComposer

        if options.compose == "box":
            compose_batch = DeviceComposer(gfpgan, parse_net if stand_ins is None else None, parse, device,
                                           near_box=person is not None)
        if gpen is not None and stand_ins is None:
            def enhance_faces(images: list[np.ndarray]) -> list[np.ndarray]:
                return enhance_batch(gpen, images)

    return {"compose_batch": compose_batch, "enhance_faces": enhance_faces, "crop": crop_tool.crop, "landmarks": landmarker, "coefficients": coefficients, "expression": expression,
            "enhance_face": enhance_face, "face_boxes": face_boxes, "restore": restore_frame,
            "parse_labels": parse, "blend_region": blend_region, "face_blend": face_blend,
            "stand_ins": stand_ins, "reset_noise": reset_noise}
