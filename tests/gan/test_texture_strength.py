"""The texture strength fitted after training: the gain folds into the weights exactly, the fit
finds a known strength, and it stays within the steadiness bar on flickering footage."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan import models, texture_strength


def fine_texture(seed: int, side: int = 192, amplitude: float = 0.1) -> np.ndarray:
    """A grey picture with fine random grain (noise blurred a little), uint8 RGB."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.standard_normal((1, 3, side, side)).astype(np.float32))
    grain = F.avg_pool2d(F.pad(noise, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    grain = grain / grain.std() * amplitude
    image = (0.5 + grain).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return (image * 255 + 0.5).astype(np.uint8)


class Detail(nn.Module):
    """A stand-in texture path with a known residual: the picture's own detail (itself minus
    its 17 x 17 average) on top of that average."""

    def parts(self, x):
        base = F.avg_pool2d(F.pad(x, (8, 8, 8, 8), mode="reflect"), 17, stride=1)
        return base, x - base


def test_the_gain_scales_the_texture_residual_and_nothing_else():
    torch.manual_seed(0)
    gen = models.build_generator(models.generator_arch("draft", paired=True)).eval()
    last = gen.decoder[-1]
    with torch.no_grad():  # trained weights instead of the "add nothing" start
        last.weight.normal_(0, 0.02)
        last.bias.normal_(0, 0.02)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        colour, residual = gen.parts(x)
        fitted = texture_strength.with_gain(gen, 1.7)
        fitted_colour, fitted_residual = fitted.parts(x)
        again = gen.parts(x)[1]
        scaled = models.StrokeScaled(fitted, 2.0).parts(x)[1]
        plain_scaled = models.StrokeScaled(gen, 2.0).parts(x)[1]
    assert residual.abs().mean() > 1e-3  # there is a residual to scale
    assert torch.equal(fitted_colour, colour)
    assert torch.allclose(fitted_residual, 1.7 * residual, atol=1e-6)
    assert torch.equal(again, residual)  # the trained generator is left as it was
    assert torch.allclose(scaled, 1.7 * plain_scaled, atol=1e-6)


def test_the_fit_finds_the_strength_of_the_styles_texture():
    """The footage's grain at one strength, the style's (another draw) at 1.5 times it: the
    gain that matches them is 1.5."""
    crops = [fine_texture(seed) for seed in range(4)]
    style = fine_texture(10, side=256, amplitude=0.15)
    fit = texture_strength.fit_gain(Detail(), crops, style, torch.device("cpu"))
    assert fit.gain == pytest.approx(1.5, abs=0.13)
    assert fit.distances[fit.gain] < 0.5 * fit.distances[1.0]
    assert fit.flicker == {}


def test_the_fit_keeps_the_output_steady_on_flickering_footage():
    """The grain changes from frame to frame (noise, not motion): a gain g multiplies the
    output's flicker by about g squared, so stronger strokes than the steadiness bar allows
    are not chosen, however near the style they are."""
    crops = [fine_texture(seed) for seed in range(4)]
    style = fine_texture(10, side=256, amplitude=0.15)
    still = np.zeros((192, 192, 2), np.float32)
    trusted = np.ones((192, 192), np.float32)
    pairs = [(fine_texture(20 + n), fine_texture(30 + n), still, trusted) for n in range(2)]
    fit = texture_strength.fit_gain(Detail(), crops, style, torch.device("cpu"), pairs)
    assert fit.flicker[1.5] > texture_strength.STEADY >= fit.flicker[1.0]
    assert fit.flicker[fit.gain] <= texture_strength.STEADY
    assert fit.gain == 1.0
