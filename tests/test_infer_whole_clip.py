"""`infer` re-dubs the whole input clip: no dataset config layer (the sample set's
``max_seconds: 0.6``) may cut the user's clip and loop its first frames.

The full pipeline runs (seeded networks, real dlib) on a short clip whose
frames each carry a distinct marker outside the face: output frame i must show
input frame i's marker. The clip is recorded at 2 fps and run at ``--fps=2`` so
that 1 s (longer than 0.6 s) is only two frames of CPU work; the assertion is on
frames of the input at its own rate.
"""
import json
from pathlib import Path

import numpy as np

from talkingface.cli import module_main
from talkingface.commands.infer import infer_config
from talkingface.media import load_audio, read_video, write_video, write_wav

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"
MARKERS = (30, 220)  # one grey level per input frame, in a corner far from the face


def test_infer_config_has_no_dataset_layer():
    config = infer_config(["--batch_size=2"])
    assert config["max_seconds"] is None
    assert not any(origin.startswith("dataset/") for origin in config.origin.values()), config.origin


def test_every_input_frame_is_used(tmp_path):
    clip = read_video(SAMPLE / "astronaut_a.mp4").frames
    frames = np.full((len(MARKERS), 320, 320, 3), 128, np.uint8)
    for i, level in enumerate(MARKERS):
        frames[i, :256, :256] = clip[i * 12]
        frames[i, 272:, 272:] = level
    face = tmp_path / "face.mp4"
    write_video(face, frames, 2)
    speech = load_audio(SAMPLE / "astronaut_b.wav")
    audio = tmp_path / "speech.wav"
    write_wav(audio, speech[:16000])  # 1 s: as long as the clip
    out = tmp_path / "out.mp4"
    code = module_main(["infer", f"--face={face}", f"--audio={audio}", f"--outfile={out}", "--fps=2",
                        "--weights=seeded", "--enhancer=none", "--face_detector=dlib", "--device=cpu",
                        "--batch_size=2", f"--saved_dir={tmp_path / 'saved'}"])
    assert code == 0
    result = read_video(out, None)
    # one output frame per mel window, as the official: 1 s at 2 fps gives windows at mel 0, 40 and the
    # clipped last one (80 + 16 > 81), so 3 frames; the face video loops after its 2 frames
    assert result.num_frames == 3
    seen = [float(result.frames[i, 280:312, 280:312].mean()) for i in range(result.num_frames)]
    expected = [MARKERS[i % len(MARKERS)] for i in range(result.num_frames)]
    assert np.allclose(seen, expected, atol=8), json.dumps(seen)  # frame 1 is input frame 1, not frame 0 again
