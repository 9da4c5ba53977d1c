import pytest

from talkingface import registry
from talkingface.errors import RegistryError


def test_builtin_names_resolve():
    assert registry.get("dataset", "lrs2").__name__ == "LRS2Dataset"
    assert registry.get("dataset", "video-retalking").__name__ == "SampleDataset"
    assert registry.get("model", "video_retalking").__name__ == "VideoReTalking"
    assert {"lse", "fid", "psnr", "ssim"} <= set(registry.known("metric"))


def test_unknown_name_lists_known():
    with pytest.raises(RegistryError) as err:
        registry.get("dataset", "lrs3")
    assert "lrs2" in err.value.hint and "hdtf" in err.value.hint and "did you mean 'lrs2'" in err.value.hint


def test_register_decorator():
    @registry.register("metric", "dummy_for_test")
    class Dummy:
        pass

    assert registry.get("metric", "dummy_for_test") is Dummy
    assert "dummy_for_test" in registry.known("metric")
