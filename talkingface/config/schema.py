"""Every config key the toolkit knows: type, allowed values, one line of help.

Values live in the YAML layers (overall < model < dataset < --config_files <
command line); this table decides what a key may hold, so a typo or a wrong type
is caught before any work starts, with the closest known key suggested.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # int | float | bool | str | path | list[str] | list[int] | any
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    minimum: float | None = None
    pattern: str | None = None  # a str value must match this regular expression in full
    #: generate: changes what a run generates (part of the run folder's fingerprint);
    #: evaluate: changes only scores (scores are keyed by their own settings);
    #: runtime: changes neither (threads, workers, logging, where files go)
    scope: str = "generate"

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"config key {self.name!r}: scope {self.scope!r} is not one of {SCOPES}")


SCOPES = ("generate", "evaluate", "runtime")


KEYS: dict[str, Key] = {k.name: k for k in [
    # --- run ---
    Key("model", "str", "model name from the registry"),
    Key("dataset", "str", "dataset name from the registry"),
    Key("config_files", "list[str]", "extra YAML files layered after the dataset config", scope="runtime"),
    Key("device", "str", "auto | cpu | cuda | cuda:N | mps", pattern=r"auto|cpu|cuda|cuda:[0-9]+|mps", scope="runtime"),
    Key("num_threads", "int", "CPU threads per process for torch and OpenCV (0: their default, one per core; "
                              "Ray workers use 1)", minimum=0, scope="runtime"),
    Key("seed", "int", "seed for pairing and seeded weights", minimum=0),
    Key("weights", "str", "official: the release files (missing -> error); seeded: deterministic test weights; "
                          "auto: official if present, else seeded with a banner", choices=("official", "seeded", "auto")),
    Key("checkpoint_dir", "path", "folder with the official checkpoint files"),
    Key("checkpoint_mirror", "str", "base URL that serves the checkpoint files by file name, used instead of "
                                    "their official URLs (also TALKINGFACE_CHECKPOINT_MIRROR)", nullable=True, scope="runtime"),
    Key("saved_dir", "path", "where run folders are created"),
    Key("run_dir", "path", "reuse this run folder (resume) instead of a new timestamped one", nullable=True, scope="runtime"),
    Key("resume", "bool", "skip items whose result already exists in the run folder", scope="runtime"),
    Key("stage", "str", "generate | evaluate | all", choices=("generate", "evaluate", "all"), scope="runtime"),
    Key("num_workers", "int", "0: in-process; N: Ray workers", minimum=0, scope="runtime"),
    Key("ray_address", "str", "join a Ray cluster (auto | ray://host:10001) instead of a local one", nullable=True, scope="runtime"),
    Key("num_gpus_per_worker", "float", "GPUs each Ray worker requests when CUDA is present", minimum=0, scope="runtime"),
    Key("max_retries", "int", "retries of a failing item before it is recorded as failed", minimum=0, scope="runtime"),
    Key("metrics", "list[str]", "metrics to compute: lse, fid, psnr, ssim", scope="evaluate"),
    Key("debug", "bool", "show tracebacks", scope="runtime"),
    Key("log_level", "str", "DEBUG | INFO | WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"), scope="runtime"),
    Key("fps", "float", "frame rate every video is resampled to", minimum=1),
    Key("sample_rate", "int", "audio sample rate (Hz) every audio is resampled to", minimum=8000),
    # --- dataset ---
    Key("dataset_root", "path", "dataset folder", nullable=True),
    Key("split", "str", "split file name without .txt (LRS2: test, val, train, pretrain)", nullable=True),
    Key("subset", "any", "N first clips of the split (int), or a file listing clip ids", nullable=True),
    Key("pairing", "str", "unpaired: audio of another clip (seeded derangement); paired: own audio",
        choices=("unpaired", "paired")),
    Key("audio_fit", "str", "how foreign audio is fitted to the video length: loop | pad (silence)",
        choices=("loop", "pad")),
    Key("max_seconds", "float", "cut clips to at most this many seconds (null: whole clip)", nullable=True, minimum=0),
    # --- model: video_retalking ---
    Key("batch_size", "int", "frames per L-Net/E-Net batch", minimum=1, scope="runtime"),
    Key("face_det_batch_size", "int", "frames per face-detector batch", minimum=1, scope="runtime"),
    Key("compat", "str", "reference: set every key below that changes an output frame to the official "
                         "inference.py (fresh unseeded noise included; see README); default: the keys as given",
        choices=("default", "reference")),
    Key("landmarks", "str", "68-point landmarks: fan (official: face-alignment's 2DFAN4 on S3FD boxes) or dlib",
        choices=("dlib", "fan")),
    Key("landmark_gaps", "str", "frames before the first landmark detection: previous (official: the no-face "
                                "marker, mean-face placement) | nearest (the first detection's landmarks)",
        choices=("previous", "nearest")),
    Key("expression", "str", "expression template: neutral | smile | path to an image"),
    Key("up_face", "str", "upper-face edit (only 'original' is supported)"),
    Key("one_shot", "bool", "use the first frame as the only reference"),
    Key("without_rl1", "bool", "skip the reference-image L1 refinement (ENet ref = D-Net output)"),
    Key("static", "bool", "treat the face input as a single still image"),
    Key("crop", "list[int]", "top bottom left right crop of the input frames (-1: edge)"),
    Key("pads", "list[int]", "face box padding top bottom left right (px)"),
    Key("nosmooth", "bool", "do not smooth face boxes over 5 frames"),
    Key("re_preprocess", "bool", "ignore cached per-clip stage results", scope="runtime"),
    Key("enhancer", "str", "gpen: GPEN on the references + GFPGAN on the output (the reference); none: skip both",
        choices=("gpen", "none")),
    Key("face_detector", "str", "face boxes for L-Net/E-Net crops: s3fd (the official) or dlib (offline weights)",
        choices=("s3fd", "dlib")),
    Key("face_select", "str", "null (official): each detector's best-scoring face in every frame; or one person "
                              "in every stage and frame: largest | center | left | right | N (N-th from the left)",
        pattern=r"largest|center|left|right|[0-9]+", nullable=True),
    Key("compose", "str", "official: re-detect and re-parse the face, blend whole frames at 512 px; box: parse "
                          "once, blend inside a padded box (pixels outside it stay the input's)",
        choices=("official", "box")),
    Key("resample_fps", "bool", "resample the input video to `fps` first (false, official: keep its frame rate; "
                                "the mel windows follow it)"),
    Key("noise", "str", "E-Net and GFPGAN noise, drawn fresh on every call: seeded (from `seed`, reproducible) | "
                        "fresh (the official: unseeded)", choices=("seeded", "fresh")),
    Key("seeded_stand_ins", "list[str]", "weights=seeded only: dlib stand-ins for what random weights cannot do: "
                                         "boxes (S3FD), five_points (RetinaFace), parsing (ParseNet); [] for none"),
    Key("precision", "str", "fp32 (official) | auto (fp16 autocast on CUDA, fp32 on CPU) | fp16 | bf16; bf16 on "
                            "CPU is an opt-in with a measured quality cost (bench/RESULTS.md)",
        choices=("auto", "fp32", "fp16", "bf16")),
    Key("channels_last", "str", "NHWC memory format for the networks: auto (where measured faster) | true | false",
        choices=("auto", "true", "false"), scope="runtime"),
    Key("compile", "bool", "torch.compile the networks (inductor; kernels cached in accel_cache_dir)", scope="runtime"),
    Key("cpu_backend", "str", "CPU runtime of the networks: auto (for ReconNet/ParseNet/GFPGAN/GPEN the fastest "
                              "installed one measured at fp32 parity: OpenVINO, then ONNX Runtime) | torch | "
                              "onnxruntime | openvino",
        choices=("auto", "torch", "onnxruntime", "openvino"), scope="runtime"),
    Key("accel_cache_dir", "path", "compiled kernels and exported ONNX files (null: ~/.cache/talkingface/accel)",
        nullable=True, scope="runtime"),
    Key("compose_on_device", "str", "the GPU path: GPEN references and the compose stage batched, compose "
                                    "(GFPGAN paste, parsing, blends) in torch on the device: auto (CUDA only) | "
                                    "true | false (per frame, OpenCV on the CPU)",
        choices=("auto", "true", "false"), scope="runtime"),
    Key("cache_dir", "path", "per-clip stage cache (null: <saved_dir>/cache)", nullable=True, scope="runtime"),
    # --- evaluation (defaults: config/evaluation.yaml, the reference tools' settings) ---
    Key("lse_protocol", "str", "reference: the reference tools' ffmpeg media chain (JPEG/XVID re-encodes; "
                               "comparable with published tables); direct: lossless decoding",
        choices=("reference", "direct"), scope="evaluate"),
    Key("lse_aggregation", "str", "per_clip: mean over clips (a clip's tracks averaged first); "
                                  "per_track: mean over face tracks, as syncnet_python prints them",
        choices=("per_clip", "per_track"), scope="evaluate"),
    Key("lse_facedet_scale", "float", "frames are scaled by this for the S3FD face detector (run_pipeline "
                                      "--facedet_scale)", minimum=0.01, scope="evaluate"),
    Key("lse_crop_scale", "float", "face crop margin (run_pipeline --crop_scale)", minimum=0, scope="evaluate"),
    Key("lse_num_failed_det", "int", "missed detections bridged inside a face track (run_pipeline "
                                     "--num_failed_det)", minimum=0, scope="evaluate"),
    Key("lse_crop", "str", "face: detect+track face crops (real videos); frame: whole frame (LRS2)",
        choices=("face", "frame"), scope="evaluate"),
    Key("lse_detector", "str", "face detector for lse_crop=face", choices=("s3fd", "dlib"), scope="evaluate"),
    Key("vshift", "int", "SyncNet offsets searched: -vshift..vshift frames", minimum=1, scope="evaluate"),
    Key("lse_batch_size", "int", "SyncNet windows per batch", minimum=1, scope="evaluate"),
    Key("lse_min_track", "int", "shortest face track scored (frames); shorter clips are reported as skipped",
        minimum=5, scope="evaluate"),
    Key("lse_scene_threshold", "float", "scene-cut threshold of the face-track pipeline (PySceneDetect content rule)",
        minimum=0, scope="evaluate"),
    Key("lse_min_face_size", "float", "smallest face scored (px); smaller faces are reported as skipped", minimum=0, scope="evaluate"),
    Key("fid_crop", "str", "face crops or whole frames for FID", choices=("face", "frame"), scope="evaluate"),
    Key("fidelity_crop", "str", "face crops or whole frames for PSNR/SSIM", choices=("face", "frame"), scope="evaluate"),
    Key("fid_batch_size", "int", "Inception images per batch", minimum=1, scope="evaluate"),
    Key("fid_frame_stride", "int", "use every N-th frame for FID (1: all frames)", minimum=1, scope="evaluate"),
    Key("plots", "bool", "write per-clip sync-offset plots and the HTML report", scope="evaluate"),
]}


def keys_in_scope(*scopes: str) -> frozenset[str]:
    """Names of the keys whose scope is one of ``scopes`` (e.g. what a run's fingerprint covers)."""
    return frozenset(name for name, key in KEYS.items() if key.scope in scopes)
