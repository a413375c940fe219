"""The benchmarks' colour-transfer baseline (benchmarks/colour_transfer.py)."""

import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from colour_transfer import LabStats, reinhard_transfer  # noqa: E402


def scene(seed: int, size=(96, 128)) -> np.ndarray:
    """A smooth random RGB picture."""
    small = np.random.default_rng(seed).integers(0, 256, (size[0] // 8, size[1] // 8, 3),
                                                 dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def test_reinhard_transfer_matches_statistics():
    source, target = scene(seed=1), (scene(seed=2) * 0.5 + 60).astype(np.uint8)
    moved = reinhard_transfer(source, LabStats.of([source]), LabStats.of([target]))
    got, want = LabStats.of([moved]), LabStats.of([target])
    assert np.allclose(got.mean, want.mean, atol=1.5)
    assert np.allclose(got.std, want.std, rtol=0.1, atol=1.0)
