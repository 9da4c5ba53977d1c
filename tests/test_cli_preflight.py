"""Bad input stops every command before torch is imported, a network is loaded or a run folder exists.

Each case runs the real command in a fresh interpreter and asserts on
``sys.modules`` afterwards (not on time): ``torch`` absent means no network was
loaded and the minutes of work before the old late checks were never spent.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkingface.media import write_video, write_wav

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "dataset" / "video-retalking"
READ_ONLY = "/sys/talkingface-test"  # /sys refuses new files even to root


def _cli(*argv, probe=("torch",)):
    """Run ``python -m talkingface <argv>`` in a new process; report which of ``probe`` got imported."""
    code = ("import sys\nfrom talkingface.cli import module_main\n"
            f"rc = module_main({[str(a) for a in argv]!r})\n"
            f"print('IMPORTED', [m for m in {list(probe)!r} if m in sys.modules])\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    imported = json.loads(proc.stdout.rsplit("IMPORTED", 1)[-1].strip().replace("'", '"') or "null")
    return proc, imported


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    frames = np.full((5, 64, 64, 3), 120, np.uint8)
    write_video(root / "silent.mp4", frames, 25)  # video, no audio stream
    write_wav(root / "speech.wav", np.zeros(3200, np.float32))
    (root / "garbage.mp4").write_bytes(b"\x00\x01not a video" * 50)
    (root / "folder.mp4").mkdir()
    return root


def _infer(media, tmp_path, **change):
    args = {"face": SAMPLE / "astronaut_a.mp4", "audio": media / "speech.wav", "outfile": tmp_path / "out.mp4",
            **change}
    return ["infer", *[f"--{k}={v}" for k, v in args.items() if not k.startswith("-")],
            f"--saved_dir={tmp_path / 'saved'}", "--weights=seeded", *change.get("-extra", [])]


@pytest.mark.parametrize("change, needle", [
    ({"outfile": "{tmp}"}, "is a folder, not a file name"),
    ({"outfile": "{tmp}/out.txt"}, "unsupported file type '.txt'"),
    ({"outfile": READ_ONLY + "/out.mp4"}, "is not writable"),
    ({"face": "{tmp}/missing.mp4"}, "--face {tmp}/missing.mp4: no such file"),
    ({"face": "{media}/speech.wav"}, "it has no video stream"),
    ({"face": "{media}/garbage.mp4"}, "not a media file"),
    ({"face": "{media}/folder.mp4"}, "is a folder, not a file"),
    ({"audio": "{media}/silent.mp4"}, "--audio {media}/silent.mp4: it has no audio stream"),
    ({"audio": "{tmp}/none.wav"}, "no such file"),
    ({"-extra": ["--device=gpu"]}, "`device` must match"),
    ({"-extra": [f"--saved_dir={READ_ONLY}"]}, "--saved_dir: cannot write"),
    ({"-extra": ["--dataset=video-retalking"]}, "infer takes no dataset"),
    ({"-extra": ["--up_face=sad"]}, "up_face='sad' is not supported"),
    ({"-extra": ["--expression={tmp}/smile.png"]}, "--expression"),
    ({"-extra": ["--weights=official", "--checkpoint_dir={tmp}/none"]}, "checkpoints download"),
])
def test_infer_fails_fast_without_importing_torch(media, tmp_path, change, needle):
    fill = {"tmp": tmp_path, "media": media}
    change = {k: ([x.format(**fill) for x in v] if isinstance(v, list) else v.format(**fill))
              for k, v in change.items()}
    proc, imported = _cli(*_infer(media, tmp_path, **change))
    assert proc.returncode == 2, proc.stderr
    assert needle.format(**fill) in proc.stderr and "-> " in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert imported == []
    assert not (tmp_path / "saved").exists()


def test_cuda_without_cuda_stops_before_any_network(media, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc, imported = _cli(*_infer(media, tmp_path, **{"-extra": ["--device=cuda"]}),
                          probe=("talkingface.models.video_retalking.parts", "talkingface.face.croper", "torch"))
    assert proc.returncode == 2, proc.stderr
    assert "--device=cuda: no CUDA GPU is usable here" in proc.stderr and "--device=cpu" in proc.stderr
    from talkingface.run.preflight import _torch_gpu_build

    # neither the networks nor the face crop were touched; on a CPU-only wheel not even torch
    assert imported == ([] if _torch_gpu_build() is False else ["torch"])


def test_run_with_read_only_saved_dir_or_missing_files_leaves_no_run_folder(tmp_path):
    proc, imported = _cli("-m", "identity", f"--saved_dir={READ_ONLY}", "--metrics=psnr", "--weights=seeded")
    assert proc.returncode == 2 and "--saved_dir: cannot write" in proc.stderr and imported == []
    saved = tmp_path / "saved"
    proc, imported = _cli("-d", "lrs2", "--dataset_root=/nonexistent/LRS2", f"--saved_dir={saved}")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and imported == []
    proc, imported = _cli("-m", "video_retalking", f"--saved_dir={saved}", "--weights=official",
                          f"--checkpoint_dir={tmp_path / 'none'}")
    assert proc.returncode == 2 and "DNet.pt" in proc.stderr and imported == []
    assert not saved.exists()


@pytest.mark.parametrize("extra, needle", [
    (["--generated={tmp}/none"], "--generated {tmp}/none: no such file or folder"),
    (["--generated={media}/garbage.mp4"], "not a media file"),
    (["--generated={media}/silent.mp4", "--metrics=lse"], "it has no audio stream"),
    ([f"--generated={SAMPLE}", f"--reference={SAMPLE}", f"--run_dir={READ_ONLY}/x"], "--run_dir: cannot write"),
    ([f"--generated={SAMPLE}", "--metrics=fid"], "need reference videos"),
    ([f"--generated={SAMPLE}", "--device=gpu"], "`device` must match"),
])
def test_evaluate_fails_fast_without_importing_torch(media, tmp_path, extra, needle):
    fill = {"tmp": tmp_path, "media": media}
    proc, imported = _cli("evaluate", *[x.format(**fill) for x in extra], f"--saved_dir={tmp_path / 'saved'}")
    assert proc.returncode == 2, proc.stderr
    assert needle.format(**fill) in proc.stderr and "Traceback" not in proc.stderr
    assert imported == []
    assert not (tmp_path / "saved").exists()


def test_evaluate_without_references_does_not_ask_for_inception(tmp_path):
    proc, imported = _cli("evaluate", f"--generated={SAMPLE / 'astronaut_a.mp4'}", "--weights=official",
                          f"--checkpoint_dir={tmp_path}", f"--saved_dir={tmp_path / 'saved'}")
    assert proc.returncode == 2 and imported == []
    assert "syncnet_v2.model" in proc.stderr and "pt_inception" not in proc.stderr
