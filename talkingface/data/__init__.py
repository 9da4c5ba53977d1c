"""Datasets: clip lists + the shared pairing rule."""
from talkingface.data.base import Clip, Dataset, Pair, derangement, make_pairs

__all__ = ["Clip", "Dataset", "Pair", "derangement", "make_pairs"]
