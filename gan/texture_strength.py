"""The strength of a trained texture path, fitted to the style at the size a viewer sees.

The texture path trains on crops at its own scale, and the style file holds the moving average
of its weights; the enlargement to full size and the averaging both soften the residual, so a
model trained to match the style's strokes shows them weaker than the style has them
(docs/decisions.md, "session 8"). After training, one number is fitted: the gain on the
texture residual whose full-size output, on a few footage crops, has the patch distribution
(zero-mean 7 x 7 patches at four pyramid levels: texture, not palette) nearest the style's,
among the gains that keep the output steady on consecutive footage frames (stronger strokes
also flicker more: their warping error against the footage's own stays within STEADY, or
within the trained strength's when that is above). `Generator.scale_texture` folds the gain
into the weights, so the style file's format and the cost of applying it are unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from . import images
from .images import to_tensor
from .metrics import aligned_error
from .patch_distribution import PatchDistance
from .stabilize import Stabilizer

GAINS = tuple(float(g) for g in np.round(np.arange(0.75, 2.0001, 0.125), 3))
DIRECTIONS = 32
CROPS, CROP_SIDE = 4, 384  # a 7 x 7 patch at the coarsest level sees 56 pixels of a crop's 384
STEADY = 1.2  # the warping error of the output / the footage's, at most (benchmarks/painting.py)
MOTION_PAIRS = 3
# Among gains whose distance is within this fraction of the best, the one nearest 1 (the
# trained strength) is kept: a flat curve is no reason to move.
TOLERANCE = 0.005

# (frame t, frame t-1, flow from t to t-1, mask of the pixels it is trusted on): sampling.MotionPairs
Pair = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Fit:
    gain: float
    distances: dict[float, float]  # patch distance to the style, per gain
    flicker: dict[float, float] = field(default_factory=dict)  # warping error ratio, per gain


def footage_crops(frames: list[np.ndarray], scale: float, rng: np.random.Generator
                  ) -> list[np.ndarray]:
    """CROPS square crops of the footage at full size, from frames spread over `frames`. The
    side grows with the texture path's scale, so that the path still sees 96 of its pixels."""
    side = min(max(CROP_SIDE, int(96 * scale)), *(min(f.shape[:2]) for f in frames))
    crops = []
    for n in range(CROPS):
        frame = frames[n * len(frames) // CROPS]
        height, width = frame.shape[:2]
        y, x = rng.integers(height - side + 1), rng.integers(width - side + 1)
        crops.append(frame[y:y + side, x:x + side])
    return crops


@torch.no_grad()
def flicker(model: nn.Module, pairs: list[Pair], device: torch.device, stabilize: float
            ) -> dict[float, float]:
    """The warping error ratio (output's / footage's) of every gain on consecutive frames, the
    output stabilized at `stabilize` as Apply would (gan.stabilize)."""
    ratios = {}
    footage = np.mean([aligned_error(frame, previous, flow, mask)
                       for frame, previous, flow, mask in pairs])
    parts = [[model.parts(to_tensor(image[None], device)) for image in pair[:2]] for pair in pairs]
    motions = [Stabilizer(stabilize).measure(previous, frame) for frame, previous, _, _ in pairs]
    for gain in GAINS:
        errors = []
        for (now, before), motion, (_, _, flow, mask) in zip(parts, motions, pairs):
            now_out, before_out = (images.to_images((c + gain * r).clamp(0, 1))[0]
                                   for c, r in (now, before))
            stabilizer = Stabilizer(stabilize)
            before_out = stabilizer.blend(before_out, None)  # the first frame: as it is
            now_out = stabilizer.blend(now_out, motion)
            errors.append(aligned_error(now_out, before_out, flow, mask))
        ratios[gain] = float(np.mean(errors) / max(footage, 1e-12))
    return ratios


@torch.no_grad()
def fit_gain(model: nn.Module, crops: list[np.ndarray], style: np.ndarray,
             device: torch.device, pairs: list[Pair] = (), stabilize: float = 0.0) -> Fit:
    """The gain of GAINS whose output on the footage `crops` is nearest `style` (at the scale its
    strokes should have in the footage), among those steady on the consecutive footage
    frames `pairs` (all, without pairs), stabilized at `stabilize`. `model` has `parts(x)`: models.Generator or
    models.StrokeScaled."""
    distance = PatchDistance(to_tensor(style[None], device), directions=DIRECTIONS)
    colour, residual = model.parts(to_tensor(np.stack(crops), device))
    distances = {g: distance((colour + g * residual).clamp(0, 1)) for g in GAINS}
    ratios = flicker(model, list(pairs)[:MOTION_PAIRS], device, stabilize) if pairs else {}
    allowed = [g for g in GAINS if not ratios or ratios[g] <= max(STEADY, ratios[1.0]) or g <= 1]
    best = min(distances[g] for g in allowed)
    close = [g for g in allowed if distances[g] <= best * (1 + TOLERANCE)]
    return Fit(min(close, key=lambda g: abs(g - 1.0)), distances, ratios)


def with_gain(generator: nn.Module, gain: float) -> nn.Module:
    """A copy of `generator` (models.Generator) whose texture residual is `gain` times as strong."""
    fitted = copy.deepcopy(generator)
    fitted.scale_texture(gain)
    return fitted
