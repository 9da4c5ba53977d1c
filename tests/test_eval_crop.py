"""Face-track crops for LSE (run_pipeline.py behaviour) with a scripted detector, plus dlib on a real face."""
import numpy as np
import pytest
from scipy import signal

from talkingface.evaluation.lse_crop import (TrackConfig, crop_window, face_tracks, frame_crops, link_tracks,
                                             scene_cuts, track_crops, track_geometry)

CFG = TrackConfig(scene_threshold=None)


def moving_face(n=130, size=140.0, start=(100.0, 60.0), step=0.5):
    """One box per frame drifting right: what a detector returns on a steady talking head."""
    return [np.array([[start[0] + step * i, start[1], start[0] + step * i + size, start[1] + size, 0.99]])
            for i in range(n)]


def test_one_face_makes_one_interpolated_track():
    dets = moving_face()
    for i in range(40, 50):  # 10 missed detections, bridged (<= 25)
        dets[i] = np.zeros((0, 5))
    report = face_tracks(None, detections=dets, config=CFG)
    assert report.reason is None and len(report.tracks) == 1
    track = report.tracks[0]
    assert track.start == 0 and track.end == 130 and len(track) == 130
    # the gap is linearly interpolated between frames 39 and 50
    np.testing.assert_allclose(track.boxes[45, 0], 100.0 + 0.5 * 45)
    half, cx, cy = track_geometry(track.boxes)
    np.testing.assert_allclose(track.half_size, signal.medfilt(np.full(130, 70.0), 13))
    np.testing.assert_allclose(cx, track.centre_x)
    assert track.half_size[0] == 70.0 and track.half_size[6] == 70.0  # medfilt zero-padding keeps the ends


def test_short_tracks_small_faces_and_empty_clips_are_reported():
    short = face_tracks(None, detections=moving_face(n=100), config=CFG)  # needs MORE than 100
    assert short.tracks == [] and "not longer than min_track=100" in short.reason
    small = face_tracks(None, detections=moving_face(size=60.0), config=CFG)
    assert small.tracks == [] and "not larger than min_face_size=100" in small.reason
    empty = face_tracks(None, detections=[np.zeros((0, 5))] * 120, config=CFG)
    assert empty.reason == "no face detected in any of 120 frames"


def test_a_jump_starts_a_new_track_and_a_long_gap_ends_one():
    dets = moving_face(n=240)
    for i in range(120, 240):  # the face jumps far away at frame 120
        dets[i] = dets[i].copy()
        dets[i][0, [0, 2]] += 400
    tracks, dropped = link_tracks(dets, 0, 240, CFG)
    assert [(t.start, t.end) for t in tracks] == [(0, 120), (120, 240)] and dropped == []
    dets = moving_face(n=260)
    for i in range(110, 140):  # 30 missed frames > num_failed_det=25
        dets[i] = np.zeros((0, 5))
    tracks, _ = link_tracks(dets, 0, 260, CFG)
    assert [(t.start, t.end) for t in tracks] == [(0, 110), (140, 260)]


def _reference_crop(frame, half, cx, cy, cs=0.4):
    """run_pipeline.crop_video written out literally: pad the whole frame with 110, then slice."""
    bsi = int(half * (1 + 2 * cs))
    padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
    my, mx = cy + bsi, cx + bsi
    return padded[int(my - half):int(my + half * (1 + 2 * cs)), int(mx - half * (1 + cs)):int(mx + half * (1 + cs))]


@pytest.mark.parametrize("half,cx,cy", [(70.0, 170.3, 130.9), (70.5, 10.0, 8.0), (90.2, 250.0, 190.0),
                                        (30.0, 128.0, 96.0), (120.0, 5.5, 180.0)])
def test_crop_window_equals_pad_and_slice(half, cx, cy):
    frame = np.random.default_rng(1).integers(111, 255, (192, 256, 3), dtype=np.uint8)  # never the pad value
    ours = crop_window(frame, half, cx, cy)
    ref = _reference_crop(frame, half, cx, cy)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    # fidelity crops clip to the frame instead: exactly the non-grey part of the padded crop
    clipped = crop_window(frame, half, cx, cy, pad_value=None)
    mask = (ref != 110).any(axis=2)
    np.testing.assert_array_equal(clipped, ref[mask.any(axis=1)][:, mask.any(axis=0)])


def test_track_crops_are_224_and_frame_crops_resize_whole_frames():
    import cv2
    from skimage import data

    still = cv2.resize(data.astronaut(), (160, 120))
    frames = np.stack([np.roll(still, i // 10, axis=1) for i in range(130)])  # a steady shot, no cuts
    report = face_tracks(frames, detections=moving_face(size=101.0, start=(20.0, 10.0), step=0.1),
                         config=TrackConfig())
    assert len(report.tracks) == 1 and report.scenes == [(0, 130)]
    crops = track_crops(frames, report.tracks[0])
    assert crops.shape == (130, 224, 224, 3) and crops.dtype == np.uint8
    assert frame_crops(frames[:3]).shape == (3, 224, 224, 3)


def test_scene_cut_splits_tracks():
    frames = np.zeros((40, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = 200
    frames[20:] = [20, 40, 200]  # red -> blue: mean HSV change ~47 > 30
    assert scene_cuts(frames, 30.0, min_scene_len=15) == [(0, 20), (20, 40)]
    assert scene_cuts(frames, 30.0, min_scene_len=25) == [(0, 20), (20, 40)]  # the first cut has no minimum
    frames[30:] = [200, 0, 0]  # back to red 10 frames later: too soon after the cut at 20
    assert scene_cuts(frames, 30.0, min_scene_len=15) == [(0, 20), (20, 40)]
    assert scene_cuts(frames, 30.0, min_scene_len=10) == [(0, 20), (20, 30), (30, 40)]
    assert scene_cuts(frames, None) == [(0, 40)]
    wide = np.zeros((3, 8, 900, 3), np.uint8)
    wide[2, :, ::4] = 255  # changes only in columns the 0.5.1 subsampling (every 4th at 900 px) looks at
    assert scene_cuts(wide, 30.0) == [(0, 2), (2, 3)]
    wide[2] = 0
    wide[2, :, 1::4] = 255  # the same change in columns it skips: no cut
    assert scene_cuts(wide, 30.0) == [(0, 3)]


def test_dlib_finds_the_astronaut():
    from skimage import data

    from talkingface.evaluation.lse_crop import make_detector

    boxes = make_detector("dlib")(data.astronaut())
    assert boxes.shape == (1, 5)
    x1, y1, x2, y2, _ = boxes[0]
    assert 150 < x1 < 200 and 60 < y1 < 110 and 240 < x2 < 290 and 150 < y2 < 200
    assert make_detector("dlib")(np.full((64, 64, 3), 128, np.uint8)).shape == (0, 5)
