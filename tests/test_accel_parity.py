"""The accel layer keeps fp32 outputs within 1e-3 per network (seeded-v1 weights), and bf16 is opt-in only."""
from __future__ import annotations

import copy

import pytest
import torch

from talkingface.accel import AccelOptions, accelerate


def _small_nets():
    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen
    from talkingface.face.parsing import load_parsenet
    from talkingface.models.video_retalking.networks import build_networks

    g = torch.Generator().manual_seed(0)
    nets = build_networks("seeded", seed=0)
    x64 = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    return {
        "dnet": (nets.dnet, (torch.rand(1, 3, 256, 256, generator=g) * 2 - 1, torch.randn(1, 73, 26, generator=g)),
                 lambda o: o["fake_image"]),
        "gpen": (load_gpen(weights="seeded", size=64, narrow=0.125), (x64,), lambda o: o),
        "gfpgan": (load_gfpgan(weights="seeded", size=64, narrow=0.125, num_style_feat=64), (x64,),
                   lambda o: o[0] if isinstance(o, tuple) else o),
        "parsenet": (load_parsenet(weights="seeded", size=64), (x64,), lambda o: o[0]),
    }


@pytest.fixture(scope="module")
def nets():
    return _small_nets()


@pytest.mark.parametrize("name", ["dnet", "gpen", "gfpgan", "parsenet"])
def test_channels_last_within_fp32_parity(nets, name):
    module, args, pick = nets[name]
    with torch.inference_mode():
        ref = pick(module(*args)).float()
        fast = accelerate(copy.deepcopy(module), AccelOptions(device="cpu", channels_last="true", cpu_backend="torch"))
        out = pick(fast(*args)).float()
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= 1e-3
    assert ref.abs().max().item() > 0.1  # a real, non-trivial output


def test_defaults_are_fp32_on_cpu_and_bf16_is_opt_in(nets):
    module, args, pick = nets["gpen"]
    assert AccelOptions(device="cpu").autocast_dtype() is None
    assert not AccelOptions(device="cpu").channels_last_for("FullGenerator")  # slower on CPU (levers.md)
    assert AccelOptions(device="cpu").channels_last_for("ParseNet")  # 1.2x faster on CPU
    assert AccelOptions(device="cuda").autocast_dtype() == torch.float16
    assert AccelOptions(device="cuda").use_channels_last
    with torch.inference_mode():
        ref = pick(module(*args)).float()
        bf16 = accelerate(copy.deepcopy(module), AccelOptions(device="cpu", precision="bf16", cpu_backend="torch"))
        out = pick(bf16(*args)).float()
    diff = (out - ref).abs().max().item()
    assert 1e-3 < diff < 1.0  # really reduced precision, still the same image


def test_accelerate_is_idempotent_and_keeps_the_state_dict(nets):
    module = copy.deepcopy(nets["parsenet"][0])
    keys = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    opts = AccelOptions(device="cpu", channels_last="true")
    assert accelerate(accelerate(module, opts), opts) is module
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == keys  # strict loading unaffected


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("name", ["parsenet", "gfpgan", "gpen"])
def test_onnx_backends_within_fp32_parity_and_cached(nets, name, backend, tmp_path):
    pytest.importorskip(backend)
    module, args, pick = nets[name]
    with torch.inference_mode():
        ref = pick(module(*args)).float()
        opts = AccelOptions(device="cpu", cpu_backend=backend, accel_cache_dir=str(tmp_path))
        fast = accelerate(copy.deepcopy(module), opts)
        out = pick(fast(*args)).float()
        again = pick(fast(*args)).float()
    assert (out - ref).abs().max().item() <= 1e-3 and torch.equal(out, again)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1  # exported once, reused by the next run
    assert len(list((tmp_path / "onnx").glob("*.verified.json"))) == 1
    with torch.inference_mode():  # a new process would load the verified file: same numbers
        reloaded = accelerate(copy.deepcopy(module), opts)
        assert torch.equal(pick(reloaded(*args)).float(), out)


def test_gpen_unfused_modulated_conv_equals_the_fused_one(nets):
    """StyleGAN2's non-fused formulation (the ONNX export's) is the fused per-sample kernel up to fp32 rounding."""
    from talkingface.face.gpen import ModulatedConv2d

    module, (x,), _ = nets["gpen"]
    g = torch.Generator().manual_seed(3)
    batch = torch.cat([x, torch.rand(x.shape, generator=g) * 2 - 1])  # two samples: two different styles
    convs = [m for m in module.modules() if isinstance(m, ModulatedConv2d)]
    assert any(m.upsample for m in convs) and any(not m.demodulate for m in convs)
    with torch.inference_mode():
        fused = module(batch)
        try:
            for m in convs:
                m.fused = False
            unfused = module(batch)
        finally:
            for m in convs:
                del m.fused
        again = module(batch)
    assert torch.equal(again, fused)  # the class default (fused) is back
    diff = (unfused - fused).abs().max().item()
    assert diff <= 1e-4 and not torch.equal(unfused, fused)  # the same values by another arithmetic


def test_auto_backend_prefers_the_measured_fastest_installed_one():
    from talkingface.accel import onnx_backend

    opts = AccelOptions(device="cpu")
    expected_gpen = next((b for b in ("openvino", "onnxruntime") if onnx_backend.available(b)), None)
    assert opts.cpu_backend_for("FullGenerator") == expected_gpen
    assert opts.cpu_backend_for("DNet") == ("openvino" if onnx_backend.available("openvino") else None)
    assert opts.cpu_backend_for("ENet") is None  # the L-Net's FFT does not export: torch (its head: ENetHead)
    assert AccelOptions(device="cpu", cpu_backend="torch").cpu_backend_for("FullGenerator") is None
    assert AccelOptions(device="cpu", precision="bf16").cpu_backend_for("FullGenerator") is None  # fp32 only
    assert AccelOptions(device="cuda").cpu_backend_for("FullGenerator") is None


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_gfpgan_with_drawn_noise_runs_on_onnx_backends_within_fp32_parity(nets, backend, tmp_path):
    """GFPGAN's fresh / seeded noise passed as inputs: the same draws as randomize_noise, exported and run."""
    pytest.importorskip(backend)
    module, (x,), _ = nets["gfpgan"]
    with torch.inference_mode():
        ref = module(x, randomize_noise=True, generator=torch.Generator().manual_seed(11))[0]
        fast = accelerate(copy.deepcopy(module), AccelOptions(device="cpu", cpu_backend=backend,
                                                             accel_cache_dir=str(tmp_path)))
        noise = module.stylegan_decoder.draw_noise(1, torch.Generator().manual_seed(11))
        out = fast(x, *noise)
        out = out[0] if isinstance(out, tuple) else out
    assert len(noise) == module.stylegan_decoder.num_layers
    assert (out - ref).abs().max().item() <= 1e-3
    assert len(list((tmp_path / "onnx").glob("*verified.json"))) == 1  # exported, parity-checked, used


_EXPORT_IN_A_PROCESS = """
import sys, torch
from talkingface.accel.onnx_backend import OrtForward
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)).eval()
forward = OrtForward(net, net.forward, sys.argv[1], backend="onnxruntime")
with torch.inference_mode():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got, ref = forward(x), net(x)
assert not forward.failed and float((got - ref).abs().max()) < 1e-5
print("ok")
"""


def test_processes_exporting_into_one_cache_at_once_do_not_collide(tmp_path):
    """Ray workers share the accel cache: two first exports of the same network at the same time both finish
    with a complete file (each writes its own temporary name), and nothing temporary is left behind."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("onnxruntime")
    repo = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", _EXPORT_IN_A_PROCESS, str(tmp_path)], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert len(list(tmp_path.glob("*.onnx"))) == 1 and len(list(tmp_path.glob("*.verified.json"))) == 1
    assert not list(tmp_path.glob("*tmp*"))
