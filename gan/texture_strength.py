"""The strength of a trained texture path, fitted to the style at the size a viewer sees.

The texture path trains on crops at its own scale, and the style file holds the moving average
of its weights; the enlargement to full size and the averaging both soften the residual, so a
model trained to match the style's strokes shows them weaker than the style has them
(docs/decisions.md, "session 8"), and the fine grain more so than the strokes' shapes
("session 9"). After training, two numbers are fitted: the gains on the residual's coarse and
fine bands (models.BAND_SIGMA) whose full-size output, on a few whole footage frames, has the
patch distribution (zero-mean 7 x 7 patches at four pyramid levels: texture, not palette)
nearest the style's, among the gains that keep the output steady on consecutive footage frames
(stronger strokes also flicker more: their warping error against the footage's own stays within
STEADY, or within the trained strength's when that is above). The coarse gain folds into the
weights (`Generator.scale_texture`), the fine one into the model description
(`models.with_fine_gain`), so applying the style costs one small blur more and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from . import images, models
from .images import to_tensor
from .metrics import aligned_error
from .patch_distribution import PatchDistance
from .stabilize import Stabilizer

GAINS = tuple(float(g) for g in np.arange(0.75, 2.2501, 0.25))  # for each band
# then the nearest gains around the best of GAINS, this far apart
STEP = 0.125
DIRECTIONS = 32
# Whole frames: a crop shows part of the scene, and the gains that suit one part do not suit the
# whole (docs/decisions.md, "session 13"). At most FRAMES frames, at most FRAME_PIXELS pixels
# (but one frame at least); of each pyramid level, at most SAMPLES patches are compared.
FRAMES, FRAME_PIXELS, SAMPLES = 3, 2 * 1920 * 1080, 65536
STEADY = 1.2  # the warping error of the output / the footage's, at most (benchmarks/painting.py)
MOTION_PAIRS = 3
# Among gains whose distance is within this fraction of the best, the pair nearest (1, 1) (the
# trained strength) is kept: a flat curve is no reason to move.
TOLERANCE = 0.005
TRAINED = (1.0, 1.0)

# (frame t, frame t-1, flow from t to t-1, mask of the pixels it is trusted on): sampling.MotionPairs
Pair = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Gains = tuple[float, float]  # (coarse band, fine band)


@dataclass
class Fit:
    gains: Gains
    distances: dict[Gains, float]  # patch distance to the style, per pair of gains
    # warping error ratio, for the pairs that were checked (the nearest first, until one passed)
    flicker: dict[Gains, float] = field(default_factory=dict)


def output(bands: tuple[torch.Tensor, torch.Tensor, torch.Tensor], gains: Gains) -> torch.Tensor:
    """The model's output with its residual's bands at `gains`, from its `bands(x)`."""
    colour, coarse, fine = bands
    return (colour + gains[0] * coarse + gains[1] * fine).clamp(0, 1)


def footage_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Whole footage frames spread over `frames`: FRAMES, fewer where they would hold more than
    FRAME_PIXELS pixels."""
    height, width = frames[0].shape[:2]
    same_size = [f for f in frames if f.shape[:2] == (height, width)]  # one batch
    count = max(1, min(FRAMES, len(same_size), FRAME_PIXELS // (height * width)))
    return [same_size[n * len(same_size) // count] for n in range(count)]


class Flicker:
    """The warping error ratio (output's / footage's) of a pair of gains on consecutive frames,
    the output stabilized at `stabilize` as Apply would (gan.stabilize)."""

    def __init__(self, model: nn.Module, pairs: list[Pair], device: torch.device,
                 stabilize: float):
        self.pairs, self.stabilize = pairs, stabilize
        self.footage = np.mean([aligned_error(frame, previous, flow, mask)
                                for frame, previous, flow, mask in pairs])
        with torch.no_grad():
            self.bands = [[model.bands(to_tensor(image[None], device)) for image in pair[:2]]
                          for pair in pairs]
        self.motions = [Stabilizer(stabilize).measure(previous, frame)
                        for frame, previous, _, _ in pairs]

    def __call__(self, gains: Gains) -> float:
        errors = []
        for (now, before), motion, (_, _, flow, mask) in zip(self.bands, self.motions,
                                                             self.pairs):
            now_out, before_out = (images.to_images(output(b, gains))[0] for b in (now, before))
            stabilizer = Stabilizer(self.stabilize)
            before_out = stabilizer.blend(before_out, None)  # the first frame: as it is
            now_out = stabilizer.blend(now_out, motion)
            errors.append(aligned_error(now_out, before_out, flow, mask))
        return float(np.mean(errors) / max(self.footage, 1e-12))


@torch.no_grad()
def fit_gains(model: nn.Module, frames: list[np.ndarray], style: np.ndarray,
              device: torch.device, pairs: list[Pair] = (), stabilize: float = 0.0) -> Fit:
    """The gains (coarse, fine) whose output on the footage `frames` (same size) is nearest
    `style` (at the scale its strokes should have in the footage), among those steady on the
    consecutive footage frames `pairs` (all, without pairs), stabilized at `stabilize`: the best
    of GAINS, then of it and its neighbours STEP away. `model` has `bands(x)`:
    models.Generator or models.StrokeScaled."""
    distance = PatchDistance(to_tensor(style[None], device), directions=DIRECTIONS,
                             samples=SAMPLES)
    bands = model.bands(to_tensor(np.stack(frames), device))
    distances = {(c, f): distance(output(bands, (c, f))) for c in GAINS for f in GAINS}
    ratios: dict[Gains, float] = {}
    if pairs:
        flicker = Flicker(model, list(pairs)[:MOTION_PAIRS], device, stabilize)
        bar = max(STEADY, flicker(TRAINED))

        def steady(gains: Gains) -> bool:
            if max(gains) <= 1:  # never stronger than trained
                return True
            if gains not in ratios:
                ratios[gains] = flicker(gains)
            return ratios[gains] <= bar
    else:
        def steady(gains: Gains) -> bool:
            return True

    def choice() -> Gains:
        # The nearest first: the flicker, which costs more, is measured only until one is
        # steady and the rest lie beyond the tolerance.
        close: list[Gains] = []
        for gains in sorted(distances, key=distances.get):
            if close and distances[gains] > distances[close[0]] * (1 + TOLERANCE):
                break
            if steady(gains):
                close.append(gains)
        return min(close, key=lambda g: (abs(g[0] - 1) + abs(g[1] - 1), g))

    best = choice()
    for c in (best[0] - STEP, best[0], best[0] + STEP):
        for f in (best[1] - STEP, best[1], best[1] + STEP):
            if (c, f) not in distances and min(GAINS) <= min(c, f) and max(c, f) <= max(GAINS):
                distances[(c, f)] = distance(output(bands, (c, f)))
    return Fit(choice(), distances, ratios)


def with_gains(generator: nn.Module, gains: Gains) -> nn.Module:
    """A copy of `generator` (a models.Generator as trained: fine_gain 1) whose texture residual
    has its coarse and fine bands `gains` times as strong."""
    coarse, fine = gains
    fitted = models.build_generator(models.with_fine_gain(generator.arch, fine / coarse))
    fitted.load_state_dict(generator.state_dict())
    fitted.scale_texture(coarse)
    return fitted.to(next(generator.parameters()).device).train(generator.training)
