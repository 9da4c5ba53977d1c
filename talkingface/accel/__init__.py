"""Acceleration layer: how a loaded network is run (memory format, precision, backend), never what it computes.

Each lever is kept only where bench/bench_levers.py measured a gain at fp32
parity (<= 1e-3 per network, tests/test_accel.py); reduced precision is opt-in
(``precision: bf16``). The pipeline calls :func:`accelerate` once per loaded
network; ops for the CUDA path (resize, masks, Laplacian blend in torch) live in
:mod:`talkingface.accel.torch_ops`.
"""
from talkingface.accel.backends import AccelOptions, accelerate, autocast

__all__ = ["AccelOptions", "accelerate", "autocast"]
