"""Bounded fuzzing of the config parser and the media readers (seconds in CI; longer by hand:
TALKINGFACE_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py)."""
import os

import numpy as np
import pytest
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


def _fits_schema(key, value) -> bool:
    """A loaded value has the schema's type (after coercion), choices, minimum and pattern."""
    import re

    spec = KEYS[key]
    if value is None:
        return spec.nullable
    kind = spec.type
    checks = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, float), "bool": lambda v: isinstance(v, bool),
              "str": lambda v: isinstance(v, str), "path": lambda v: isinstance(v, str), "any": lambda v: True}
    if kind.startswith("list["):
        return isinstance(value, list) and all(checks[kind[5:-1]](v) for v in value)
    if not checks[kind](value):
        return False
    if spec.choices is not None and value not in spec.choices:
        return False
    if spec.minimum is not None and isinstance(value, (int, float)) and value < spec.minimum:
        return False
    return spec.pattern is None or re.fullmatch(spec.pattern, str(value)) is not None


def _same(a, b) -> bool:
    return repr(a) == repr(b)  # NaN-safe equality of loaded values


@FUZZ
@given(key=st.sampled_from(sorted(KEYS)), value=values)
def test_config_values_either_parse_or_raise_config_error(key, value):
    """Accepted: the value fits the schema and loading it again gives it back unchanged (idempotent).
    Refused: a ConfigError that names the key and says what to do."""
    try:
        cfg = load_config(overrides={key: value})
    except ConfigError as exc:
        assert key in exc.message + (exc.hint or "")
        assert exc.hint, f"no hint for {key}={value!r}: {exc.message}"
        return
    assert key in cfg
    assert _fits_schema(key, cfg[key]), f"{key}={value!r} loaded as {cfg[key]!r}"
    again = load_config(overrides={key: cfg[key]})
    assert _same(again[key], cfg[key])


@FUZZ
@given(args=st.lists(st.text(min_size=1, max_size=20), max_size=4))
def test_cli_parser_never_crashes_or_executes(args):
    """Any argv: parsed into known keys only (values as typed, or True for a bare flag), or one
    ConfigError naming the argument; loading the parsed keys raises only user errors."""
    try:
        out = parse_overrides(args)
    except ConfigError as exc:
        message = exc.message
        named = (lambda a: a in message or repr(a) in message
                 or a.lstrip("-").partition("=")[0].replace("-", "_") in message)
        assert any(named(a) for a in args), (args, message)
        return
    assert set(out) <= set(KEYS)
    try:
        load_config(out.pop("model", None), out.pop("dataset", None), (), out)
    except Exception as exc:  # only user errors are allowed
        from talkingface.errors import TalkingFaceError

        assert isinstance(exc, TalkingFaceError), repr(exc)


@FUZZ
@given(key=st.sampled_from(sorted(KEYS)), value=st.text(max_size=20).filter(lambda v: "\n" not in v))
def test_cli_key_value_round_trip(key, value):
    """``--key=value`` and ``--key value`` (and dashes for underscores) are ``{key: <value as YAML>}``,
    whatever the value holds (``=``, spaces, dashes); a value YAML refuses is a ConfigError naming it.
    ``--config_files`` stays the text given (its one parser, ``config_file_list``, splits it later)."""
    from talkingface.cli import parse_cli_value

    try:
        expected = value if key == "config_files" else parse_cli_value(value)
    except ConfigError:
        with pytest.raises(ConfigError):
            parse_overrides([f"--{key}={value}"])
        return
    assert _same(parse_overrides([f"--{key}={value}"]), {key: expected})
    assert _same(parse_overrides([f"--{key.replace('_', '-')}={value}"]), {key: expected})
    if not value.startswith("-"):
        assert _same(parse_overrides([f"--{key}", value]), {key: expected})


@FUZZ
@given(value=st.text(max_size=30).filter(lambda v: "\n" not in v))
def test_config_files_text_splits_on_commas_into_stripped_names(value):
    from talkingface.config.loader import config_file_list

    assert config_file_list(value) == [p.strip() for p in value.split(",") if p.strip()]


@settings(max_examples=max(20, EXAMPLES // 5), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=0, max_size=2048), keep=st.integers(min_value=0, max_value=4000))
def test_media_readers_on_garbage(tmp_path_factory, blob, keep):
    """A damaged file: an InputMediaError naming it, or media with the documented shapes and ranges,
    the same on a second read."""
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking" / "astronaut_a.mp4"
    path = tmp_path_factory.mktemp("fuzz") / "clip.mp4"
    head = sample.read_bytes()[:keep]
    path.write_bytes(head + blob)
    for reader in (read_video, load_audio):
        try:
            out = reader(path)
        except InputMediaError as exc:
            assert "clip.mp4" in exc.message and exc.hint
            continue
        if reader is read_video:
            assert out.frames.dtype == np.uint8 and out.frames.ndim == 4 and out.frames.shape[-1] == 3
            assert out.num_frames > 0 and min(out.frames.shape[1:3]) > 0 and out.fps > 0
            assert np.array_equal(read_video(path).frames, out.frames)
        else:
            assert out.dtype == np.float32 and out.ndim == 1 and out.size > 0
            assert np.isfinite(out).all()
            assert np.array_equal(load_audio(path), out)
