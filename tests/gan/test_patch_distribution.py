"""Patch-distribution matching (GPDM): the loss sees texture at several scales, and direct
optimisation paints a picture with another one's patches while keeping its layout."""

import numpy as np
import torch
import torch.nn.functional as F

from gan.patch_distribution import (PatchDistance, PatchDistributionLoss, patch_swd, pyramid,
                                    synthesize)


def stripes(period: int, size: int = 96, angle_deg: float = 0.0) -> torch.Tensor:
    """Grey stripes of a given period (pixels): a texture with one stroke size."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    angle = torch.tensor(angle_deg) * torch.pi / 180
    phase = (xs * torch.cos(angle) + ys * torch.sin(angle)) * 2 * torch.pi / period
    grey = 0.5 + 0.4 * torch.sin(phase)
    return grey.expand(1, 3, size, size).clone()


def test_the_distance_is_small_for_the_same_texture_and_large_for_another():
    torch.manual_seed(0)
    texture = stripes(8, 128)
    shifted = torch.roll(texture, shifts=3, dims=-1)  # same patches, other places
    flat = torch.full_like(texture, 0.5)
    same = patch_swd(shifted, texture, projections=64)
    other = patch_swd(flat, texture, projections=64)
    assert other > 20 * same


def test_coarse_levels_tell_stroke_sizes_apart_that_7_pixel_patches_alone_cannot():
    """Stripes of period 24 and 48 look alike through 7 x 7 patches at full size (both are
    smooth ramps there); the pyramid's 1/4 level sees the difference."""
    torch.manual_seed(0)
    small, large = stripes(24, 192), stripes(48, 192)
    one_level = PatchDistributionLoss(levels=1, projections=128, samples=None, stride=1)
    three_levels = PatchDistributionLoss(levels=3, projections=128, samples=None, stride=1)
    reference = stripes(24, 192).roll(5, -1)
    assert three_levels(large, reference) / three_levels(small, reference) > \
        one_level(large, reference) / one_level(small, reference)


def test_pyramid_halves_until_the_smallest_size():
    images = torch.rand(2, 3, 100, 80)
    levels = pyramid(images, 5, 14)
    assert [tuple(level.shape[-2:]) for level in levels] == [(100, 80), (50, 40), (25, 20)]


def test_the_loss_has_gradients_towards_the_style():
    torch.manual_seed(0)
    output = torch.full((2, 3, 64, 64), 0.5, requires_grad=True)
    loss = PatchDistributionLoss()(output, stripes(8, 64))
    loss.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_synthesis_paints_the_style_texture_and_keeps_the_layout():
    """A flat light frame with a dark square, painted with a style of fine stripes in light and
    dark areas: the result has the stripes' texture (high-frequency energy near theirs) and the
    square stays dark, where it was."""
    torch.manual_seed(0)
    content = torch.full((1, 3, 96, 96), 0.8)
    content[..., 30:66, 30:66] = 0.2
    style = (stripes(6, 128) - 0.5) * 0.4
    style[..., :64] += 0.8
    style[..., 64:] += 0.2
    out = synthesize(content, style, steps=150, levels=2, lr=0.03)
    assert out.shape == content.shape
    assert 0 <= out.min() and out.max() <= 1

    def detail(x):
        return (x - F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)).abs().mean()

    assert detail(out) > 0.3 * detail(style)
    assert detail(content) < 0.2 * detail(style)
    inside = out[..., 36:60, 36:60].mean()
    outside = torch.cat([out[..., :20, :].flatten(), out[..., -20:, :].flatten()]).mean()
    assert inside < outside - 0.1


def test_synthesis_stops_when_asked():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    content = torch.rand(1, 3, 64, 64)
    out = synthesize(content, torch.rand(1, 3, 64, 64), steps=1000, levels=1, should_stop=stop)
    assert len(calls) == 4 and out.shape == content.shape
    assert np.isfinite(out.numpy()).all()


def test_a_sampled_distance_measures_every_image_on_the_same_patches():
    """With `samples`, each level compares a subset of the patches, drawn alike for every batch
    of one size: the same images measure the same, a stronger texture farther, and the figure
    stays close to the distance over all patches."""
    reference = stripes(8, size=128)
    full = PatchDistance(reference, directions=32)
    sampled = PatchDistance(reference, directions=32, samples=1024)
    grain = torch.Generator().manual_seed(1)
    images = [(reference + 0.05 * torch.randn(reference.shape, generator=grain)).clamp(0, 1),
              (reference + 0.2 * torch.randn(reference.shape, generator=grain)).clamp(0, 1)]
    near, far = (sampled(image) for image in images)
    assert sampled(images[0]) == near and sampled(images[1]) == far
    assert near < far
    for image, value in zip(images, (near, far)):
        assert abs(value - full(image)) < 0.1 * full(image)
