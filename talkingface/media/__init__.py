"""Media I/O: video/audio decode, resample, encode (PyAV), in one place."""
from talkingface.media.audio import SAMPLE_RATE, fit_length, load_audio, samples_for_frames, write_wav
from talkingface.media.video import DEFAULT_FPS, VideoClip, probe, read_video, write_video

__all__ = ["SAMPLE_RATE", "DEFAULT_FPS", "VideoClip", "fit_length", "load_audio", "probe", "read_video",
           "samples_for_frames", "write_video", "write_wav"]
