"""Whole-image face restoration: GPEN "FaceEnhancement" and GFPGAN "GFPGANer", re-implemented.

Both find faces with a detector passed in, warp each face to a canonical
5-point layout, restore it with the network, and warp it back into the image
under a soft mask; pixels away from the faces are left exactly as they were.

``detector(img_rgb) -> (boxes (K,5) [x1,y1,x2,y2,score], landmarks5 (K,5,2))``
with the 5 points ordered left eye, right eye, nose, left and right mouth corner
(RetinaFace / :class:`~talkingface.face.dlib_detect.DlibFivePointDetector`).

Images are RGB uint8 (the references work on BGR; every step here is
per-channel, so only the border colour of GFPGAN's warp needed reordering).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np
import torch

from talkingface.errors import InputMediaError

log = logging.getLogger(__name__)

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

#: 5 points of the 96x112 crop of GPEN's align_faces (eyes, nose, mouth corners).
_REFERENCE_96x112 = np.array([[30.29459953, 51.69630051], [65.53179932, 51.50139999], [48.02519989, 71.73660278],
                              [33.54930115, 92.3655014], [62.72990036, 92.20410156]])
#: facexlib's FFHQ 5-point template for 512x512 faces (used by GFPGANer).
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]])
#: GPEN's face mask: skin, nose, glasses, eyes, brows, mouth, lips (no ears, hair, neck).
GPEN_FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)
_SMALL_FACE_KERNEL = np.array([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]], np.float32)


# --------------------------------------------------------------------------- geometry

def gpen_reference_points(size: int = 512, inner_padding_factor: float = 0.25) -> np.ndarray:
    """GPEN's ``get_reference_facial_points((size,size), 0.25, (0,0), default_square=True)``.

    The 96x112 layout is made square (x shifted by 8), padded by ``inner_padding_factor``
    on each side (112 -> 168 for 0.25) and scaled to ``size``.
    """
    pts = _REFERENCE_96x112.copy()
    crop = np.array([96, 112])
    diff = crop.max() - crop
    pts += diff / 2
    crop = crop + diff
    pad = crop * inner_padding_factor * 2
    pts += pad / 2
    crop = crop + np.round(pad).astype(np.int64)
    return pts * (np.float32(size) / crop[0])


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True,
            scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Least-squares similarity ``dst ~ c R src + t`` (Umeyama 1991): (3,3) matrix and the scale.

    With ``estimate_scale=False`` the given ``scale`` is used (GPEN's inverse warp uses 1/c).

    Computed in the points' own dtype, as GPEN's ``_umeyama`` (it gets float32 points, so
    its means, ``A`` and SVD are float32; the matrix is float64): the warp rounds its
    coordinates to 1/32 px, so a float64 estimate moves some warped pixels by several
    grey levels against the official one (tests/test_reference_pipeline.py).
    """
    src = np.asarray(src)
    dst = np.asarray(dst)
    n, dim = src.shape
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_d, dst_d = src - src_mean, dst - dst_mean
    a = dst_d.T @ src_d / n
    d = np.ones(dim)
    if np.linalg.det(a) < 0:
        d[-1] = -1
    t = np.eye(dim + 1)
    u, s, vt = np.linalg.svd(a)
    rank = np.linalg.matrix_rank(a)
    if rank == 0:
        return np.full((dim + 1, dim + 1), np.nan), float("nan")
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            t[:dim, :dim] = u @ vt
        else:
            dd = d.copy()
            dd[-1] = -1
            t[:dim, :dim] = u @ np.diag(dd) @ vt
    else:
        t[:dim, :dim] = u @ np.diag(d) @ vt
    if estimate_scale:
        scale = float(1.0 / src_d.var(axis=0).sum() * (s @ d))
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean)
    t[:dim, :dim] *= scale
    return t, scale


def warp_and_crop_face(image: np.ndarray, points5: np.ndarray, reference: np.ndarray,
                       size: int) -> tuple[np.ndarray, np.ndarray]:
    """GPEN's similarity warp of the face to ``size``x``size``: (face, inverse 2x3 transform)."""
    src = np.float32(points5).reshape(5, 2)
    ref = np.float32(reference).reshape(5, 2)
    fwd, scale = umeyama(src, ref)
    inv, _ = umeyama(ref, src, False, scale=1.0 / scale)
    face = cv2.warpAffine(image, fwd[:2], (size, size), flags=cv2.INTER_AREA)
    return face, inv[:2]


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputMediaError(f"{what}: expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------- GPEN

class FaceEnhancer:
    """GPEN ``FaceEnhancement.process``: restore every detected face and paste it back under a parsed mask."""

    threshold = 0.9  # detection score below which a face is skipped

    def __init__(self, gpen_net: torch.nn.Module, parse_net: torch.nn.Module | Callable[[np.ndarray], np.ndarray],
                 detector: Detector, device: str | torch.device = "cpu") -> None:
        """``parse_net``: ParseNet, or any ``image RGB -> (S, S) class labels`` callable (seeded stand-in)."""
        self.gpen, self.parse_net, self.detector, self.device = gpen_net, parse_net, detector, device
        self.size = int(getattr(gpen_net, "size", 512))
        self.reference_5pts = gpen_reference_points(self.size)

    @staticmethod
    def mask_postprocess(mask: np.ndarray, thres: int = 20) -> np.ndarray:
        """Zero a ``thres``-pixel border, then blur twice (101x101, sigma 11): the soft paste mask (512 scale)."""
        mask = mask.copy()
        mask[:thres, :] = 0
        mask[-thres:, :] = 0
        mask[:, :thres] = 0
        mask[:, -thres:] = 0
        mask = cv2.GaussianBlur(mask, (101, 101), 11)
        mask = cv2.GaussianBlur(mask, (101, 101), 11)
        return mask.astype(np.float32)

    def _face_mask(self, face_rgb: np.ndarray) -> np.ndarray:
        """0/1 parsed face mask (GPEN's classes) at 512, as ``FaceParse.process(ef, mm)[0] / 255``."""
        from talkingface.face.parsing import labels_to_mask, parse_labels

        if isinstance(self.parse_net, torch.nn.Module):
            labels = parse_labels(self.parse_net, face_rgb, self.device)
        else:
            labels = self.parse_net(face_rgb)
        mask = labels_to_mask(labels, GPEN_FACE_CLASSES)
        if mask.shape[0] != 512:  # reduced test builds: the post-processing constants are for 512
            mask = cv2.resize(mask, (512, 512), interpolation=cv2.INTER_NEAREST)
        return mask / 255.0

    def process(self, img_rgb: np.ndarray, ori_img_rgb: np.ndarray, bbox: tuple[int, int, int, int] | None = None,
                face_enhance: bool = True, poisson_blending: bool = False) -> np.ndarray:
        """Faces found in ``img_rgb`` (restored when ``face_enhance``) pasted over ``ori_img_rgb``.

        ``bbox`` ``(y1, y2, x1, x2)`` limits the Laplacian ("poisson") blend to
        that box, as the reference. Without any face, ``ori_img_rgb`` is returned
        unchanged (the reference crashes there).
        """
        from talkingface.face.gpen import restore_face

        img = _check_image(img_rgb, "FaceEnhancer image")
        ori = _check_image(ori_img_rgb, "FaceEnhancer original image")
        if img.shape != ori.shape:
            raise InputMediaError(f"FaceEnhancer: image {img.shape} and original {ori.shape} differ in size")
        boxes, landmarks = self.detector(img.copy())
        height, width = img.shape[:2]
        full_mask = np.zeros((height, width), np.float32)
        full_img = np.zeros(ori.shape, np.uint8)
        mask_sharp = None
        for box, points in zip(np.asarray(boxes), np.asarray(landmarks)):
            if box[4] < self.threshold:
                continue
            fh, fw = box[3] - box[1], box[2] - box[0]
            of, tfm_inv = warp_and_crop_face(img, points, self.reference_5pts, self.size)
            ef = restore_face(self.gpen, of, self.device) if face_enhance else of
            sharp = self._face_mask(ef)
            soft = cv2.resize(self.mask_postprocess(sharp), ef.shape[:2])
            sharp = cv2.resize(sharp, ef.shape[:2])
            soft = cv2.warpAffine(soft, tfm_inv, (width, height), flags=cv2.INTER_AREA)
            mask_sharp = cv2.warpAffine(sharp, tfm_inv, (width, height), flags=cv2.INTER_AREA)
            if min(fh, fw) < 100:  # small faces: soften the restored detail
                ef = cv2.filter2D(ef, -1, _SMALL_FACE_KERNEL)
            warped = cv2.warpAffine(ef if face_enhance else of, tfm_inv, (width, height), flags=cv2.INTER_AREA)
            newer = soft - full_mask > 0
            full_mask[newer] = soft[newer]
            full_img[newer] = warped[newer]
        if mask_sharp is None:
            log.debug("FaceEnhancer: no face above %.2f; image unchanged", self.threshold)
            return ori.copy()
        mask_sharp = cv2.GaussianBlur(mask_sharp, (0, 0), sigmaX=1, sigmaY=1, borderType=cv2.BORDER_DEFAULT)
        full_mask3, sharp3 = full_mask[:, :, None], mask_sharp[:, :, None]
        if poisson_blending:
            from talkingface.face.blend import laplacian_blend

            if bbox is not None:
                y1, y2, x1, x2 = bbox
                box_mask = np.zeros_like(sharp3)
                box_mask[y1:y2 - 5, x1:x2] = 1
                parts = (full_img, ori, np.float32(sharp3 * box_mask))
            else:
                parts = (full_img, ori, full_mask)
            a, b, m = [cv2.resize(x, (512, 512)) for x in parts]
            out = np.clip(laplacian_blend(a, b, m, 6), 0, 255)
            return np.uint8(cv2.resize(out, (width, height)))
        out = cv2.convertScaleAbs(ori * (1 - full_mask3) + full_img * full_mask3)
        return cv2.convertScaleAbs(ori * (1 - sharp3) + out * sharp3)


# --------------------------------------------------------------------------- GFPGAN

def center_face_index(boxes: np.ndarray, height: int, width: int,
                      point: tuple[float, float] | None = None) -> int:
    """The face whose box centre is nearest ``point`` (x, y); by default the image centre
    (facexlib's ``only_center_face``)."""
    px, py = (width / 2, height / 2) if point is None else point
    centers = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return int(np.argmin(np.hypot(centers[:, 0] - px, centers[:, 1] - py)))


def soft_paste_mask(inverse_affine: np.ndarray, face_size: int, height: int,
                    width: int) -> tuple[np.ndarray, np.ndarray]:
    """facexlib's paste-back masks: (soft mask, eroded hard mask) of the warped face square.

    The soft one is the hard one shrunk by ~1/10 of the face side and blurred.
    """
    inv_mask = cv2.warpAffine(np.ones((face_size, face_size), np.float32), inverse_affine, (width, height))
    eroded = cv2.erode(inv_mask, np.ones((2, 2), np.uint8))
    w_edge = int(float(np.sum(eroded)) ** 0.5) // 20
    radius = w_edge * 2
    center = cv2.erode(eroded, np.ones((radius, radius), np.uint8)) if radius > 0 else eroded
    blur = w_edge * 2
    soft = cv2.GaussianBlur(center, (blur + 1, blur + 1), 0)
    return soft, eroded


class GFPGANRestorer:
    """``GFPGANer(upscale=1).enhance``: restore faces aligned to the FFHQ template and paste them back softly."""

    border_value_rgb = (132, 133, 135)  # facexlib's (135, 133, 132) BGR grey
    eye_dist_threshold = 5.0
    score_threshold = 0.8  # facexlib's RetinaFace default confidence

    def __init__(self, net: torch.nn.Module, detector: Detector, device: str | torch.device = "cpu", *,
                 noise: str = "stored", generator: torch.Generator | None = None) -> None:
        """``noise``: ``fresh`` draws new noise maps on every face from torch's global generator (GFPGANer's
        ``randomize_noise=True``), ``seeded`` draws them from ``generator`` (reproducible), ``stored`` uses the
        checkpoint's fixed noise buffers."""
        if noise not in ("fresh", "seeded", "stored"):
            raise ValueError(f"noise must be fresh, seeded or stored, got {noise!r}")
        if noise == "seeded" and generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        self.net, self.detector, self.device = net, detector, device
        self.noise, self.generator = noise, generator
        self.size = int(getattr(net, "size", 512))
        self.template = FFHQ_TEMPLATE_512 * (self.size / 512.0)

    def _faces(self, img: np.ndarray, only_center_face: bool,
               near: tuple[float, float] | None = None) -> list[np.ndarray]:
        boxes, landmarks = self.detector(img.copy())
        boxes, landmarks = np.asarray(boxes, np.float32).reshape(-1, 5), np.asarray(landmarks, np.float32)
        keep = [i for i in range(len(boxes)) if boxes[i, 4] >= self.score_threshold
                and np.linalg.norm(landmarks[i, 0] - landmarks[i, 1]) >= self.eye_dist_threshold]
        if not keep:
            return []
        if only_center_face:
            keep = [keep[center_face_index(boxes[keep], *img.shape[:2], point=near)]]
        return [landmarks[i].reshape(5, 2) for i in keep]

    @torch.inference_mode()
    def restore_aligned(self, face_rgb: np.ndarray) -> np.ndarray:
        """One aligned face (size x size RGB uint8) through the net; RGB uint8 (``tensor2img`` rounding)."""
        x = torch.from_numpy(face_rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        x = ((x - 0.5) / 0.5).to(self.device)
        if self.noise == "stored":
            out = self.net(x)
        else:
            # the draws randomize_noise=True would make (same RNG calls, same values: the caller's generator
            # -- the pipeline's per-call one, or the seeded one -- else torch's global one), made here and passed
            # as inputs: the call is then a pure function of tensors, which the ONNX backends can run
            out = self.net(x, *self.net.stylegan_decoder.draw_noise(x.shape[0], self.generator, x.device))
        out = out[0].float().clamp(-1, 1)
        out = ((out + 1) / 2).permute(1, 2, 0).cpu().numpy()
        return (out * 255.0).round().astype(np.uint8)

    def enhance(self, img_rgb: np.ndarray, only_center_face: bool = True, paste_back: bool = True, *,
                near: tuple[float, float] | None = None) -> np.ndarray:
        """The image with its (centre) face restored; without a face the input comes back unchanged.

        ``near`` (x, y): with ``only_center_face``, restore the face nearest this point
        instead of the image centre, so the person the pipeline edits is the one
        restored when a frame shows several.

        ``paste_back=False`` returns the restored aligned face (size x size) of the
        first kept face instead (input unchanged when there is none).
        """
        img = _check_image(img_rgb, "GFPGAN image")
        height, width = img.shape[:2]
        faces = self._faces(img, only_center_face, near)
        if not faces:
            return img.copy()
        result = img.astype(np.float32) if paste_back else None
        for points in faces:
            affine = cv2.estimateAffinePartial2D(points, self.template, method=cv2.LMEDS)[0]
            if affine is None:
                log.debug("GFPGAN: degenerate landmarks, face skipped")
                continue
            cropped = cv2.warpAffine(img, affine, (self.size, self.size), borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=self.border_value_rgb)
            restored = self.restore_aligned(cropped)
            if not paste_back:
                return restored
            inverse = cv2.invertAffineTransform(affine)
            inv_restored = cv2.warpAffine(restored, inverse, (width, height))
            soft, eroded = soft_paste_mask(inverse, self.size, height, width)
            pasted = eroded[:, :, None] * inv_restored
            result = soft[:, :, None] * pasted + (1 - soft[:, :, None]) * result
        return result.astype(np.uint8) if result is not None else img.copy()
