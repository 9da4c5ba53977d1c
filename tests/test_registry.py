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


def test_register_decorator_and_unregister():
    @registry.register("metric", "dummy_for_test")
    class Dummy:
        pass

    try:
        assert registry.get("metric", "dummy_for_test") is Dummy
        assert "dummy_for_test" in registry.known("metric")
    finally:
        registry.unregister("metric", "dummy_for_test")
    assert "dummy_for_test" not in registry.known("metric")
    with pytest.raises(RegistryError):
        registry.get("metric", "dummy_for_test")


def test_registered_restores_the_previous_entry():
    builtin = registry.get("dataset", "lrs2")
    with registry.registered("dataset", "lrs2", object) as obj:
        assert registry.get("dataset", "lrs2") is obj is object
    assert registry.get("dataset", "lrs2") is builtin


def test_tests_leave_no_registration_behind(request):
    """conftest restores the registry after every test: this test registers, the next sees nothing."""
    registry.register("model", "leak_probe_for_test")(object)
    assert "leak_probe_for_test" in registry.known("model")


def test_previous_test_left_nothing():
    assert "leak_probe_for_test" not in registry.known("model")
