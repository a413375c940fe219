"""Abstraction: how much a style flattens regions and draws outlines.

Cartoon looks and filters such as OpenCV's stylization flatten regions and draw dark lines where
the flattened frame changes. Learned from a stylized clip without pairs, the texture path learns
neither in minutes: a discriminator or a patch distribution says how flat and how dark, but not
where (docs/decisions.md, "Abstraction"). Those lines and flat regions follow the frame's own
edges, so their places need no learning: models.Abstraction puts them there, and two strengths
are fitted. Without keyframes, after training: those whose output on a few whole footage frames,
through tone curves fitted to it (as the style file will have them), has the patch distribution
nearest the style's. From an artist's keyframes, before training: those that take the footage
frames nearest their painted versions. A style with neither, a grade, keeps none."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from . import models, tone_curves
from .images import to_tensor
from .patch_distribution import PatchDistance
from .texture_strength import DIRECTIONS, SAMPLES

RADII = (0, 2, 4, 8)  # the smoothing's, in pixels (0: none)
OUTLINES = (0.0, 0.15, 0.3, 0.45, 0.6)  # the outlines' darkness per unit of gradient (0: none)
# Among strengths whose distance is within this fraction of the best, the weakest is kept.
TOLERANCE = 0.02
NONE = (0, 0.0)
KEYFRAME_CROP = 512  # the side of the keyframes' centres that measure the abstraction

Strengths = tuple[int, float]  # (radius, outline)


@dataclass
class Fit:
    strengths: Strengths
    distances: dict[Strengths, float]  # distance to the style, per pair measured


@torch.no_grad()
def fit(model: nn.Module, frames: list[np.ndarray], style_frames: list[np.ndarray],
        style_pixels: np.ndarray, device: torch.device) -> Fit:
    """The abstraction whose output of `model` (the generator as it stylizes) on the footage
    `frames` (whole, of one size), through tone curves to `style_pixels` ((M, 3) uint8), is
    nearest the style's `style_frames` (of one size) in patch distribution, by a coordinate
    search (each measure stylizes whole frames)."""
    distance = PatchDistance(to_tensor(np.stack(style_frames), device), directions=DIRECTIONS,
                             samples=SAMPLES)
    outputs = model(to_tensor(np.stack(frames), device)).float()
    style = torch.from_numpy(style_pixels.reshape(-1, 3)).double() / 255
    return _search(lambda strengths: distance(_toned(strengths, outputs, style, device)))


@torch.no_grad()
def fit_to_keyframes(inputs: list[np.ndarray], painted: list[np.ndarray], device: torch.device
                     ) -> Fit:
    """The abstraction that takes the keyframes' footage frames `inputs`, through tone curves,
    nearest their `painted` versions (mean absolute difference), measured on the frames'
    centres at full size for every pair of RADII and OUTLINES. Chosen before training: the
    model then learns through it what the lines and flat regions leave (docs/decisions.md,
    "Abstraction from keyframes")."""
    side = min(KEYFRAME_CROP, *(min(frame.shape[:2]) for frame in inputs))
    x = to_tensor(np.stack([_centre(frame, side) for frame in inputs]), device)
    targets = to_tensor(np.stack([_centre(frame, side) for frame in painted]), device)
    target_pixels = tone_curves.pixels(targets).double()
    distances = {strengths: float((_toned(strengths, x, target_pixels, device) - targets
                                   ).abs().mean())
                 for strengths in itertools.product(RADII, OUTLINES)}
    return _weakest_close_to_best(distances)


def _toned(strengths: Strengths, outputs: torch.Tensor, target_pixels: torch.Tensor,
           device: torch.device) -> torch.Tensor:
    """`outputs` abstracted, then through tone curves to the (M, 3) `target_pixels`' channels
    (as the style file will have them)."""
    abstracted = models.Abstraction(*strengths).to(device)(outputs)
    curves = models.ToneCurves().to(device)
    curves.values.copy_(tone_curves.fit_curves(tone_curves.pixels(abstracted), target_pixels))
    return curves(abstracted)


def _search(distance: Callable[[Strengths], float]) -> Fit:
    """Coordinate search: the outlines first, then the smoothing with them, then the outlines
    again with that smoothing; the weakest strengths within TOLERANCE of the best."""
    distances: dict[Strengths, float] = {}

    def measured(strengths: Strengths) -> float:
        if strengths not in distances:
            distances[strengths] = distance(strengths)
        return distances[strengths]

    best = min(((0, outline) for outline in OUTLINES), key=measured)
    best = min(((radius, best[1]) for radius in RADII), key=measured)
    for outline in OUTLINES:
        measured((best[0], outline))
    return _weakest_close_to_best(distances)


def _weakest_close_to_best(distances: dict[Strengths, float]) -> Fit:
    """The weakest strengths (the outlines first) within TOLERANCE of the best measured."""
    best = min(distances.values())
    close = [s for s, d in distances.items() if d <= best * (1 + TOLERANCE)]
    return Fit(min(close, key=lambda s: (s[1], s[0])), distances)


def _centre(frame: np.ndarray, side: int) -> np.ndarray:
    """The frame's central side x side square."""
    height, width = frame.shape[:2]
    top, left = (height - side) // 2, (width - side) // 2
    return frame[top:top + side, left:left + side]


def with_abstraction(generator: models.Generator, strengths: Strengths) -> models.Generator:
    """A copy of `generator` whose output goes through models.Abstraction(*strengths)."""
    fitted = models.build_generator(models.with_abstraction(generator.arch, *strengths))
    fitted.load_state_dict(generator.state_dict())
    return fitted.to(next(generator.parameters()).device).train(generator.training)
