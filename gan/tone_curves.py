"""Tone curves: after training, per-channel curves that give the model's output on the footage
exactly the style's distribution of each channel (1-D optimal transport: histogram matching).

The colour path is a small per-pixel MLP matched to the style by a sliced Wasserstein distance.
It learns smooth grades, but not hard steps in a channel's tones (posterization, crushed blacks,
clipped highlights). Per channel the optimal transport between two distributions is known in
closed form: the style's quantile function after our output's distribution function. A style
whose colours are learned from the style's distribution alone (no keyframes) gets these curves
on its output (models.ToneCurves); where the channels already match they are near the identity.
A style learned from an artist's keyframes gets them where they bring its output on the
keyframes closer to the painted frames (docs/decisions.md, "Tone curves").
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from . import models
from .images import to_tensor

STYLE_PIXELS = 1 << 20  # style pixels drawn for the curves (a quantile is then within ~0.1%)
# The footage frames stylized for the fit, spread over the pool, at full size (what a viewer sees:
# an abstraction's lines, or a texture path's detail, differ on a reduced frame); of each, a grid
# of at most FRAME_PIXELS pixels (docs/decisions.md, "Abstraction").
FRAMES, FRAME_PIXELS = 8, 1 << 17


@torch.no_grad()
def fit_curves(outputs: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """(3, models.TONE_KNOTS) curves that take each channel of `outputs` ((N, 3) in [0, 1]) to
    the distribution of the same channel of `style` ((M, 3) in [0, 1])."""
    knots = torch.linspace(0, 1, models.TONE_KNOTS, dtype=torch.float64)
    curves = []
    for channel in range(3):
        ours = outputs[:, channel].double().sort().values
        theirs = style[:, channel].double()
        # the share of our values below each knot, ties counted half (clamped 0s and 1s)
        below = torch.searchsorted(ours, knots) + torch.searchsorted(ours, knots, right=True)
        curves.append(torch.quantile(theirs, below.double() / (2 * len(ours))))
    return torch.stack(curves).float()


@torch.no_grad()
def fitted(generator: models.Generator, model: nn.Module, frames: list[np.ndarray],
           style_pixels: np.ndarray, device: torch.device) -> models.Generator:
    """A copy of `generator` with tone curves that take the output of `model` (the generator as
    it stylizes: models.stroke_scaled) on the footage `frames` to the colours `style_pixels`
    ((M, 3) uint8): FRAMES of them, spread over the list. Whole frames, not crops: a few crops
    are a spatially biased sample of the footage, and the curves would "correct" that bias
    (docs/decisions.md, "Tone curves")."""
    count = min(FRAMES, len(frames))
    outputs = torch.cat([pixels(_thinned(model(to_tensor(frames[n * len(frames) // count][None],
                                                         device))))
                         for n in range(count)])
    style = torch.from_numpy(style_pixels.reshape(-1, 3)).double() / 255
    return _with_curves(generator, fit_curves(outputs, style), device)


@torch.no_grad()
def fitted_to_keyframes(generator: models.Generator, model: nn.Module, inputs: list[np.ndarray],
                        painted: list[np.ndarray], device: torch.device
                        ) -> models.Generator | None:
    """A copy of `generator` with tone curves that take the output of `model` on the keyframes'
    footage frames `inputs` to the colours of their `painted` versions; None where the curves
    would not bring that output closer to the painted frames (mean absolute difference).

    Keyframes pin colours pixel by pixel, so the curves are kept only where they help there: a
    painted look with hard tone steps gains from them, and where the model already follows the
    painted frames closely, matching their histogram would trade detail for the distribution
    (docs/decisions.md, "Tone curves")."""
    outputs = torch.cat([pixels(_thinned(model(to_tensor(frame[None], device))))
                         for frame in inputs])
    targets = torch.cat([pixels(_thinned(to_tensor(frame[None], device))) for frame in painted])
    curves = fit_curves(outputs, targets)
    tone = models.ToneCurves()
    tone.values.copy_(curves)
    toned = tone(outputs.T.reshape(1, 3, -1, 1))  # the pixels as a 1 x 3 x N x 1 image
    if (toned - targets.T.reshape(1, 3, -1, 1)).abs().mean() >= (outputs - targets).abs().mean():
        return None
    return _with_curves(generator, curves, device)


def _thinned(images: torch.Tensor) -> torch.Tensor:
    """Of NCHW `images`, the pixels on a grid of at most FRAME_PIXELS per image: enough for a
    channel's quantiles."""
    stride = math.ceil((images.shape[-2] * images.shape[-1] / FRAME_PIXELS) ** 0.5)
    return images[..., ::stride, ::stride]


def pixels(images: torch.Tensor) -> torch.Tensor:
    """NCHW -> (N * H * W, 3) float32 on the CPU."""
    return images.float().permute(0, 2, 3, 1).reshape(-1, 3).cpu()


def _with_curves(generator: models.Generator, curves: torch.Tensor, device: torch.device
                 ) -> models.Generator:
    toned = models.build_generator(models.with_tone_curves(generator.arch))
    toned.load_state_dict({**generator.state_dict(), "tone.values": curves})
    return toned.to(device).train(generator.training)
