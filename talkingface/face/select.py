"""Which face to use when a frame shows several: the ``face_select`` option.

The reference takes the detector's best-scoring face in every frame, so with two
people on screen the crop, the landmarks and the L-Net boxes can each land on a
different person, and the boxes can jump between them from frame to frame.
Here one rule picks *one person* for the whole clip:

* ``largest`` (default): the biggest face;
* ``center``: the face nearest the frame centre;
* ``left`` / ``right``: the leftmost / rightmost face;
* an integer ``N``: the N-th face counted from the left (0 = leftmost).

On a single image (:func:`pick`) the rule is applied to that image's faces.
Over a clip (:func:`choose_track`) detections are first linked into tracks
(overlapping boxes in nearby frames), tracks into people (tracks never seen in
the same frame are one person who moved while undetected), the rule picks a
person from the median box of each, and every frame gets that person's box or
``None`` -- a frame where the chosen person is not detected is a gap (filled
from its neighbours later), never a jump to somebody else who is on screen at
the same time. An *anchor* box (the clip crop, which the croper chose with
the same rule) makes the box stage follow the face the crop stage chose, even
when the two detectors see the faces differently.

Weak extra detections are not faces: a detection counts only when its score is
at least :data:`RELATIVE_SCORE` of the frame's best (dlib's HOG gives
the astronaut's face 1.16 and a false hit on her suit 0.12 at 2x upsampling,
nearly the same size; "largest" must not pick the suit).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Union

import numpy as np

from talkingface.errors import ConfigError, NoFaceError

log = logging.getLogger(__name__)

RULES = ("largest", "center", "left", "right")
#: a detection is a face candidate when its score >= this fraction of the frame's best score
RELATIVE_SCORE = 0.5
#: boxes of one person in nearby frames overlap at least this much (IoU)
TRACK_IOU = 0.2
#: a track may skip this many frames without a detection and still continue
TRACK_GAP = 25
#: people seen in fewer than this fraction of the frames of the most-seen one are not chosen (spurious hits)
MIN_TRACK_FRACTION = 0.25
#: tracks of fewer frames (and under MIN_TRACK_FRACTION of the longest) are spurious hits, not people
MIN_PERSON_FRAMES = 3

Rule = Union[str, int]
Box = tuple[int, int, int, int]


def parse_rule(value: object) -> Rule | None:
    """``"largest"|"center"|"left"|"right"`` or a face index (int or digit string); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"face_select must be one of {', '.join(RULES)} or a face index, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if index < 0:
            raise ConfigError(f"face_select index must be >= 0, got {index}")
        return index
    if isinstance(value, str) and value.strip().lower() in RULES:
        return value.strip().lower()
    raise ConfigError(f"face_select must be one of {', '.join(RULES)} or a face index (0 = leftmost), "
                      f"got {value!r}", hint="e.g. face_select: largest")


def describe(rule: Rule) -> str:
    return f"face #{rule} from the left" if isinstance(rule, int) else f"the {rule} face"


def candidate_rows(dets: np.ndarray) -> np.ndarray:
    """Indices of the rows of (K, 5) ``x1, y1, x2, y2, score`` that count as faces.

    A row counts when its score is at least :data:`RELATIVE_SCORE` of the best
    one (the best always counts).
    """
    dets = np.asarray(dets, np.float64).reshape(-1, 5)
    if len(dets) < 2:
        return np.arange(len(dets))
    best = dets[:, 4].max()
    return np.flatnonzero(dets[:, 4] >= RELATIVE_SCORE * best) if best > 0 else np.flatnonzero(dets[:, 4] == best)


def candidates(dets: np.ndarray) -> np.ndarray:
    """The rows of ``dets`` that count as faces (see :func:`candidate_rows`)."""
    dets = np.asarray(dets, np.float64).reshape(-1, 5)
    return dets[candidate_rows(dets)]


def _order(boxes: np.ndarray, rule: Rule, frame_size: tuple[int, int]) -> np.ndarray | int | None:
    """Index into ``boxes`` (K, 4) chosen by ``rule``; None when an index rule has too few faces."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return None
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    if isinstance(rule, int):
        order = np.argsort(cx, kind="stable")
        return int(order[rule]) if rule < len(order) else None
    if rule == "largest":
        return int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    if rule == "center":
        height, width = frame_size
        return int(np.argmin(np.hypot(cx - width / 2, cy - height / 2)))
    if rule == "left":
        return int(np.argmin(cx))
    if rule == "right":
        return int(np.argmax(cx))
    raise ConfigError(f"unknown face_select rule {rule!r}", hint=f"use one of {', '.join(RULES)} or an index")


def pick(dets: np.ndarray, rule: Rule | None, frame_size: tuple[int, int]) -> int | None:
    """Row of ``dets`` (K, 5, best score first or not) to use in one image; None if none fits.

    ``rule=None`` is the reference: the best-scoring detection.
    """
    dets = np.asarray(dets, np.float64).reshape(-1, 5)
    if len(dets) == 0:
        return None
    if rule is None:
        return int(np.argmax(dets[:, 4]))
    keep = candidate_rows(dets)
    chosen = _order(dets[keep, :4], rule, frame_size)
    return None if chosen is None else int(keep[chosen])


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each of (K, 4) ``boxes`` with one ``box`` (x1, y1, x2, y2)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box = np.asarray(box, np.float64)
    w = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = w * h
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def build_tracks(per_frame: Sequence[np.ndarray], min_iou: float = TRACK_IOU,
                 max_gap: int = TRACK_GAP) -> list[dict[int, np.ndarray]]:
    """Link per-frame face candidates into tracks: ``[{frame: (x1, y1, x2, y2)}, ...]``.

    Greedy, best overlap first: a detection joins the track whose last box (seen
    at most ``max_gap`` frames before) overlaps it most, with IoU >= ``min_iou``;
    otherwise it starts a new track. One detection per track and frame.
    """
    tracks: list[dict[int, np.ndarray]] = []
    last: list[tuple[int, np.ndarray]] = []  # (frame, box) per track
    for t, dets in enumerate(per_frame):
        boxes = candidates(dets)[:, :4]
        live = [k for k, (f, _) in enumerate(last) if t - f <= max_gap + 1]
        pairs = sorted(((float(o), k, j) for k in live
                        for j, o in enumerate(iou(boxes, last[k][1])) if o >= min_iou), reverse=True)
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for _, k, j in pairs:
            if k in used_tracks or j in used_dets:
                continue
            used_tracks.add(k)
            used_dets.add(j)
            tracks[k][t] = boxes[j]
            last[k] = (t, boxes[j])
        for j in range(len(boxes)):
            if j not in used_dets:
                tracks.append({t: boxes[j]})
                last.append((t, boxes[j]))
    return tracks


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def group_people(tracks: Sequence[dict[int, np.ndarray]], min_frames: int = MIN_PERSON_FRAMES
                 ) -> list[dict[int, np.ndarray]]:
    """Join tracks of one person that were split by a gap: ``[{frame: box}, ...]``, most frames first.

    Two tracks seen in the same frame are two people. A track never seen
    together with a person's tracks is taken as that person re-found after a
    gap (moved while undetected); with several such people, the one whose box
    nearest in time is closest. Tracks shorter than ``min_frames`` frames and
    than a quarter of the longest track are spurious hits and left out.
    """
    if not tracks:
        return []
    longest = max(len(tr) for tr in tracks)
    shortest = min(min_frames, max(1, int(np.ceil(MIN_TRACK_FRACTION * longest))))
    people: list[dict[int, np.ndarray]] = []
    for track in sorted((tr for tr in tracks if len(tr) >= shortest), key=len, reverse=True):
        first, last = min(track), max(track)
        best, best_distance = None, np.inf
        for person in people:
            if person.keys() & track.keys():
                continue
            frames = np.array(sorted(person))
            before, after = frames[frames < first], frames[frames > last]
            gaps = []
            if len(before):
                gaps.append(np.hypot(*(_centre(person[int(before[-1])]) - _centre(track[first]))))
            if len(after):
                gaps.append(np.hypot(*(_centre(person[int(after[0])]) - _centre(track[last]))))
            distance = min(gaps) if gaps else np.inf  # interleaved without overlap: still joinable
            if best is None or distance < best_distance:
                best, best_distance = person, distance
        if best is None:
            people.append(dict(track))
        else:
            best.update(track)
    return sorted(people, key=len, reverse=True)


def _containment(person: dict[int, np.ndarray], anchor: np.ndarray) -> float:
    """Mean fraction of the person's boxes that lies inside ``anchor``."""
    boxes = np.stack(list(person.values()))
    w = np.clip(np.minimum(boxes[:, 2], anchor[2]) - np.maximum(boxes[:, 0], anchor[0]), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], anchor[3]) - np.maximum(boxes[:, 1], anchor[1]), 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    return float(np.mean(w * h / area))


def choose_track(per_frame: Sequence[np.ndarray], rule: Rule | None, frame_size: tuple[int, int],
                 anchor: Sequence[float] | None = None) -> list[Box | None]:
    """One face per frame, the same person throughout: int (x1, y1, x2, y2) or None (not detected).

    ``per_frame`` holds (K, 5) detections per frame; they are linked into
    tracks (:func:`build_tracks`) and tracks into people (:func:`group_people`).
    With ``anchor`` (x1, y1, x2, y2, e.g. the clip crop box) the person lying
    most inside it is used; without one, or when nobody touches it, ``rule``
    (None = ``largest``) picks among the people seen in at least
    :data:`MIN_TRACK_FRACTION` as many frames as the most-seen one, by their
    median boxes. Raises :class:`NoFaceError` when an index rule asks for more
    faces than there are.
    """
    people = group_people(build_tracks(per_frame))
    if not people:
        return [None] * len(per_frame)
    rule = "largest" if rule is None else rule
    eligible = [person for person in people if len(person) >= MIN_TRACK_FRACTION * len(people[0])]
    chosen: dict[int, np.ndarray] | None = None
    how = describe(rule)
    if anchor is not None:
        anchor_box = np.asarray(anchor, np.float64)
        inside = [_containment(person, anchor_box) for person in eligible]
        if max(inside) > 0:  # the person of the crop; the more often seen on a tie
            chosen = eligible[max(range(len(eligible)), key=lambda k: (round(inside[k], 2), len(eligible[k])))]
            how = "the one inside the face crop"
        else:
            log.warning("face boxes: no detected face overlaps the face crop; choosing %s instead", describe(rule))
    if chosen is None:
        medians = np.stack([np.median(np.stack(list(person.values())), axis=0) for person in eligible])
        index = _order(medians, rule, frame_size)
        if index is None:
            raise NoFaceError(f"face_select={rule} asks for face #{rule} from the left, but only "
                              f"{len(eligible)} face(s) were found in the clip",
                              hint=f"use face_select between 0 and {len(eligible) - 1}, or largest|center|left|right")
        chosen = eligible[int(index)]
    if len(people) > 1:
        frames = sorted(chosen)
        log.info("face boxes: %d faces in the clip; using %s (detected in %d frame(s) of %d-%d)", len(people),
                 how, len(frames), frames[0], frames[-1])
    return [tuple(int(v) for v in np.rint(chosen[t])) if t in chosen else None  # type: ignore[misc]
            for t in range(len(per_frame))]


def ranges(indices: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` for log lines and messages."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
