"""Global colour statistics and the Reinhard colour transfer (numpy + OpenCV only): the
baseline row that a learned style must beat in the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE Lab (L in [0, 100])."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 CIE Lab -> uint8 RGB (out-of-gamut colours clipped)."""
    rgb = cv2.cvtColor(np.asarray(lab, np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class LabStats:
    """Per-channel mean and standard deviation of a set of frames in Lab."""
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, frames: Iterable[np.ndarray]) -> "LabStats":
        total = np.zeros(3)
        squares = np.zeros(3)
        count = 0
        for frame in frames:  # streamed: a clip never has to fit in memory
            lab = rgb_to_lab(frame).reshape(-1, 3).astype(np.float64)
            total += lab.sum(0)
            squares += (lab ** 2).sum(0)
            count += len(lab)
        if count == 0:
            raise ValueError("no frames to measure")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
        return cls(mean=mean, std=np.maximum(std, 1e-3))


def reinhard_transfer(rgb: np.ndarray, source: LabStats, target: LabStats) -> np.ndarray:
    """Reinhard et al. 2001: move each Lab channel's mean/std from `source` stats to `target`."""
    lab = rgb_to_lab(rgb)
    scale = (target.std / source.std).astype(np.float32)
    lab = (lab - source.mean.astype(np.float32)) * scale + target.mean.astype(np.float32)
    return lab_to_rgb(lab)
