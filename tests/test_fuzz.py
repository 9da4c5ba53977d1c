"""Bounded fuzzing of the config parser and the media readers (seconds in CI; longer by hand:
TALKINGFACE_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py)."""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkingface.commands.common import parse_overrides
from talkingface.config import load_config
from talkingface.config.schema import KEYS
from talkingface.errors import ConfigError, InputMediaError
from talkingface.media import load_audio, read_video

EXAMPLES = int(os.environ.get("TALKINGFACE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

values = st.one_of(st.text(max_size=30), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.lists(st.text(max_size=5), max_size=3), st.sampled_from(["[1,2", "{a: b}", "!!python/object:os.system",
                                                                               "__import__('os')", "1e999", "-1", "~"]))


@FUZZ
@given(key=st.sampled_from(sorted(KEYS)), value=values)
def test_config_values_either_parse_or_raise_config_error(key, value):
    try:
        cfg = load_config(overrides={key: value})
    except ConfigError as exc:
        assert key in exc.message + (exc.hint or "")
        return
    assert key in cfg


@FUZZ
@given(args=st.lists(st.text(min_size=1, max_size=20), max_size=4))
def test_cli_parser_never_crashes_or_executes(args):
    try:
        out = parse_overrides(args)
    except ConfigError:
        return
    try:
        load_config(out.pop("model", None), out.pop("dataset", None), (), out)
    except Exception as exc:  # only user errors are allowed
        from talkingface.errors import TalkingFaceError

        assert isinstance(exc, TalkingFaceError), repr(exc)


@settings(max_examples=max(20, EXAMPLES // 5), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=0, max_size=2048), keep=st.integers(min_value=0, max_value=4000))
def test_media_readers_on_garbage(tmp_path_factory, blob, keep):
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking" / "astronaut_a.mp4"
    path = tmp_path_factory.mktemp("fuzz") / "clip.mp4"
    head = sample.read_bytes()[:keep]
    path.write_bytes(head + blob)
    for reader in (read_video, load_audio):
        try:
            out = reader(path)
        except InputMediaError as exc:
            assert "clip.mp4" in exc.message
            continue
        data = out.frames if hasattr(out, "frames") else out
        assert np.asarray(data).size > 0
