"""GPEN reference enhancement for a batch of images: GPEN and ParseNet run once per batch.

``FaceEnhancer.process(img, img, face_enhance=True, poisson_blending=False)``
per image costs two batch-1 network calls per face, which leaves a GPU idle;
here the CPU geometry (detection, 5-point warp, masks, paste) is the same code
path, and the two networks see every face of the batch at once.
tests/test_accel_enhance.py checks it equals the per-image enhancer.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from talkingface.face import restore


@torch.inference_mode()
def _restore_faces(net: Any, faces: list[np.ndarray], device: Any) -> list[np.ndarray]:
    """``gpen.restore_face`` for many faces: resize to the net size, one forward, uint8 RGB."""
    size = net.size
    x = np.stack([cv2.resize(np.ascontiguousarray(f), (size, size)) for f in faces])
    x = (torch.from_numpy(x).to(device).float() / 255.0 - 0.5) / 0.5
    out = net(x.permute(0, 3, 1, 2))
    out = (out * 0.5 + 0.5).permute(0, 2, 3, 1).float().cpu().numpy()
    return list((np.clip(out, 0, 1) * 255.0).astype(np.uint8))


@torch.inference_mode()
def _face_masks(net: Any, faces: list[np.ndarray], device: Any) -> list[np.ndarray]:
    """``FaceEnhancer._face_mask`` for many faces (0/1 float, at 512)."""
    from talkingface.face.parsing import labels_to_mask

    size = net.size
    x = np.stack([cv2.resize(np.ascontiguousarray(f), (size, size)) for f in faces])
    x = torch.from_numpy(x.astype(np.float64) / 255.0 * 2 - 1).permute(0, 3, 1, 2).float().to(device)
    logits, _ = net(x)
    masks = []
    for labels in logits.argmax(dim=1).cpu().numpy():
        mask = labels_to_mask(labels, restore.GPEN_FACE_CLASSES)
        if mask.shape[0] != 512:
            mask = cv2.resize(mask, (512, 512), interpolation=cv2.INTER_NEAREST)
        masks.append(mask / 255.0)
    return masks


def enhance_batch(enhancer: restore.FaceEnhancer, images: list[np.ndarray]) -> list[np.ndarray]:
    """``[enhancer.process(im, im, face_enhance=True) for im in images]`` with batched networks."""
    jobs = []  # (image index, box, warped face, inverse transform)
    for i, image in enumerate(images):
        img = np.ascontiguousarray(image)
        boxes, landmarks = enhancer.detector(img.copy())
        for box, points in zip(np.asarray(boxes), np.asarray(landmarks)):
            if box[4] < enhancer.threshold:
                continue
            face, inverse = restore.warp_and_crop_face(img, points, enhancer.reference_5pts, enhancer.size)
            jobs.append((i, box, face, inverse))
    if not jobs:
        return [np.array(im, copy=True) for im in images]
    restored = _restore_faces(enhancer.gpen, [j[2] for j in jobs], enhancer.device)
    sharps = _face_masks(enhancer.parse_net, restored, enhancer.device)
    state: dict[int, list[Any]] = {}
    for (i, box, _, tfm_inv), ef, sharp in zip(jobs, restored, sharps):
        height, width = images[i].shape[:2]
        full_mask, full_img, _ = state.setdefault(i, [np.zeros((height, width), np.float32),
                                                      np.zeros(images[i].shape, np.uint8), None])
        fh, fw = box[3] - box[1], box[2] - box[0]
        soft = cv2.resize(enhancer.mask_postprocess(sharp), ef.shape[:2])
        sharp = cv2.resize(sharp, ef.shape[:2])
        soft = cv2.warpAffine(soft, tfm_inv, (width, height), flags=cv2.INTER_AREA)
        state[i][2] = cv2.warpAffine(sharp, tfm_inv, (width, height), flags=cv2.INTER_AREA)
        if min(fh, fw) < 100:
            ef = cv2.filter2D(ef, -1, restore._SMALL_FACE_KERNEL)
        warped = cv2.warpAffine(ef, tfm_inv, (width, height), flags=cv2.INTER_AREA)
        newer = soft - full_mask > 0
        full_mask[newer] = soft[newer]
        full_img[newer] = warped[newer]
    out = []
    for i, image in enumerate(images):
        ori = np.ascontiguousarray(image)
        if i not in state:
            out.append(ori.copy())
            continue
        full_mask, full_img, mask_sharp = state[i]
        mask_sharp = cv2.GaussianBlur(mask_sharp, (0, 0), sigmaX=1, sigmaY=1, borderType=cv2.BORDER_DEFAULT)
        full_mask3, sharp3 = full_mask[:, :, None], mask_sharp[:, :, None]
        blended = cv2.convertScaleAbs(ori * (1 - full_mask3) + full_img * full_mask3)
        out.append(cv2.convertScaleAbs(ori * (1 - sharp3) + blended * sharp3))
    return out
