"""The texture strength fitted after training: the gains of the residual's two bands go into the
model exactly (and tile like any model), the fit finds a known strength, and it stays within the
steadiness bar on flickering footage."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan import models, texture_strength
from gan.stylize import FrameStylizer


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
    its 17 x 17 average) on top of that average, in two bands split as models.Generator's."""

    def bands(self, x):
        base = F.avg_pool2d(F.pad(x, (8, 8, 8, 8), mode="reflect"), 17, stride=1)
        fine = models.HighPass(models.BAND_SIGMA)(x - base)
        return base, x - base - fine, fine


def trained_generator(seed=0):
    torch.manual_seed(seed)
    gen = models.build_generator(models.generator_arch("draft", paired=True)).eval()
    last = gen.decoder[-1]
    with torch.no_grad():  # trained weights instead of the "add nothing" start
        last.weight.normal_(0, 0.02)
        last.bias.normal_(0, 0.02)
    return gen


def parts(gen, x):
    """(recoloured frame, texture residual) of a models.Generator, float32."""
    colour = gen.recolour(x)
    return colour.float(), gen.texture(colour).float()


def test_the_gains_scale_the_texture_bands_and_nothing_else():
    gen = trained_generator()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        colour, coarse, fine = gen.bands(x)
        trained = parts(gen, x)[1]
        assert torch.allclose(trained, coarse + fine, atol=1e-6)
        both = texture_strength.with_gains(gen, (1.7, 1.7))
        apart = texture_strength.with_gains(gen, (0.75, 2.0))
        again = parts(gen, x)[1]
        scaled = models.StrokeScaled(apart, 2.0).parts(x)[1]
        _, plain_coarse, plain_fine = models.StrokeScaled(gen, 2.0).bands(x)
        assert fine.abs().mean() > 1e-3 and coarse.abs().mean() > 1e-3  # both bands are there
        assert torch.equal(parts(both, x)[0], colour)
        assert torch.allclose(parts(both, x)[1], 1.7 * (coarse + fine), atol=1e-6)
        assert torch.allclose(parts(apart, x)[1], 0.75 * coarse + 2.0 * fine, atol=1e-6)
        assert torch.allclose(scaled, 0.75 * plain_coarse + 2.0 * plain_fine, atol=1e-6)
    assert torch.equal(again, trained)  # the trained generator is left as it was
    # the fine band's gain is part of the model's description: older add-ons refuse it
    assert apart.arch["version"] == 4
    assert apart.arch["fine_gain"] == pytest.approx(2.0 / 0.75)
    assert "fine_gain" not in both.arch and both.arch["version"] == 2
    with pytest.raises(models.UserError):
        models.build_generator({**apart.arch, "fine_gain": -1.0})


def test_a_model_with_a_fine_gain_tiles_like_the_whole_frame():
    """The fine band's blur widens the context each pixel needs: the tile margin grows by it."""
    fitted = texture_strength.with_gains(trained_generator(1), (1.0, 2.0))
    assert fitted.receptive_margin > trained_generator(1).receptive_margin
    image = np.random.default_rng(0).integers(0, 256, (150, 190, 3), dtype=np.uint8)
    image = (F.avg_pool2d(torch.from_numpy(image).permute(2, 0, 1)[None].float(), 3, 1, 1)[0]
             .permute(1, 2, 0).numpy().astype(np.uint8))
    stylizer = FrameStylizer(fitted, torch.device("cpu"), torch.float32,
                             margin=fitted.receptive_margin, multiple=fitted.alignment, ngf=16)
    whole = stylizer([image])[0].astype(int)
    stylizer = FrameStylizer(fitted, torch.device("cpu"), torch.float32,
                             margin=fitted.receptive_margin, multiple=fitted.alignment, ngf=16,
                             tile=48)
    tiled = stylizer([image])[0].astype(int)
    assert np.abs(whole - image).mean() > 1  # the texture path does change the frame
    assert np.abs(tiled - whole).max() <= 1


def test_the_fit_finds_the_strength_of_the_styles_texture():
    """The footage's grain at one strength, the style's (another draw) at 1.5 times it: the
    gains that match them are 1.5 for the fine band, where the grain is."""
    crops = [fine_texture(seed) for seed in range(4)]
    style = fine_texture(10, side=256, amplitude=0.15)
    fit = texture_strength.fit_gains(Detail(), crops, style, torch.device("cpu"))
    assert fit.gains[1] == pytest.approx(1.5, abs=0.25)
    assert fit.distances[fit.gains] < 0.5 * fit.distances[texture_strength.TRAINED]
    assert fit.flicker == {}


def test_the_fit_finds_a_strength_between_the_grids_steps():
    """The style's grain at 1.375 times the footage's, between the grid's quarter steps: the fit
    ends on the eighth step between them."""
    frames = [fine_texture(seed) for seed in range(4)]
    style = fine_texture(10, side=256, amplitude=0.1375)
    fit = texture_strength.fit_gains(Detail(), frames, style, torch.device("cpu"))
    assert fit.gains[1] not in texture_strength.GAINS
    assert fit.gains[1] == pytest.approx(1.375, abs=texture_strength.STEP)


def test_the_fit_looks_at_whole_frames_within_a_pixel_budget():
    sd = [np.full((576, 768, 3), n, np.uint8) for n in range(10)]
    picked = texture_strength.footage_frames(sd)
    assert [int(f[0, 0, 0]) for f in picked] == [0, 3, 6]  # spread over the pool, whole
    assert all(f.shape == (576, 768, 3) for f in picked)
    uhd = [np.zeros((2160, 3840, 3), np.uint8) for _ in range(3)]
    assert len(texture_strength.footage_frames(uhd)) == 1
    # one batch: the frames of the first one's size (a pool may hold several sources)
    mixed = [sd[0], *(np.zeros((480, 640, 3), np.uint8) for _ in range(3))]
    assert len(texture_strength.footage_frames(mixed)) == 1


def test_the_fit_keeps_the_output_steady_on_flickering_footage():
    """The grain changes from frame to frame (noise, not motion): a gain g multiplies the
    output's flicker by about g squared, so stronger strokes than the steadiness bar allows
    are not chosen, however near the style they are."""
    crops = [fine_texture(seed) for seed in range(4)]
    style = fine_texture(10, side=256, amplitude=0.15)
    still = np.zeros((192, 192, 2), np.float32)
    trusted = np.ones((192, 192), np.float32)
    pairs = [(fine_texture(20 + n), fine_texture(30 + n), still, trusted) for n in range(2)]
    fit = texture_strength.fit_gains(Detail(), crops, style, torch.device("cpu"), pairs)
    nearest = min(fit.distances, key=fit.distances.get)  # what the fit would choose unchecked
    assert max(nearest) > 1 and fit.flicker[nearest] > texture_strength.STEADY
    assert fit.gains != nearest
    assert max(fit.gains) <= 1 or fit.flicker[fit.gains] <= texture_strength.STEADY
