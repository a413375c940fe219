"""Quality figures, colour statistics and distribution losses (numpy/cv2 and small tensors)."""

import cv2
import numpy as np
import pytest
import torch

from gan import losses
from gan.flow import occlusion_mask
from gan.metrics import gap_closure, psnr, ssim, warping_error


def scene(shift=0, size=(96, 128), seed=0):
    """A smooth random RGB picture, moved right by `shift` pixels (wrapping)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    image = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.roll(image, shift, axis=1))


def test_gap_closure_ends():
    inp, target = scene(seed=1), scene(seed=2)
    assert gap_closure(target, target, inp) == 1.0
    assert gap_closure(inp, target, inp) == 0.0
    halfway = ((inp.astype(float) + target) / 2).round().astype(np.uint8)
    assert 0.45 < gap_closure(halfway, target, inp) < 0.55
    with pytest.raises(ValueError):
        gap_closure(inp, inp, inp)


def test_gap_closure_accepts_floats_and_stacks():
    inp, target = scene(seed=1), scene(seed=2)
    as_uint8 = gap_closure(target, target, inp)
    as_float = gap_closure(target / 255.0, target / 255.0, inp / 255.0)
    assert as_uint8 == pytest.approx(as_float)
    stack = np.stack([inp, inp])
    assert gap_closure(stack, np.stack([target, target]), stack) == 0.0


def test_psnr():
    image = scene()
    assert psnr(image, image) == float("inf")
    brighter = image.astype(np.float64) / 255 + 0.1
    assert psnr(image / 255.0, brighter) == pytest.approx(20.0, abs=1e-6)  # mse 0.01 -> 20 dB


def test_ssim():
    image = scene()
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 25, image.shape), 0, 255).astype(np.uint8)
    very_noisy = np.clip(image + np.random.default_rng(0).normal(0, 60, image.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(image, noisy) > ssim(image, very_noisy) > 0.0
    assert ssim(image, noisy) == pytest.approx(ssim(noisy, image))
    with pytest.raises(ValueError):
        ssim(image, image[:10])


def test_warping_error_sees_flicker_not_motion():
    frames = [scene(shift=2 * t) for t in range(5)]  # a pan: motion the flow explains
    assert warping_error(frames, frames) < 1e-3
    flicker = [np.clip(f.astype(int) + (30 if t % 2 else -30), 0, 255).astype(np.uint8)
               for t, f in enumerate(frames)]
    assert warping_error(flicker, frames) > 10 * warping_error(frames, frames) + 1e-3


def test_occlusion_mask_flags_inconsistent_flow():
    still = np.zeros((20, 30, 2), np.float32)
    assert occlusion_mask(still, still).mean() == 1.0
    forward = still.copy()
    forward[:, :, 0] = 5.0  # moves right, but the backward flow does not come back
    mask = occlusion_mask(forward, still)
    assert mask.mean() == 0.0


def test_sliced_wasserstein():
    torch.manual_seed(0)
    points = torch.rand(500, 3)
    assert losses.sliced_wasserstein(points, points[torch.randperm(500)]).item() < 1e-10
    shifted = losses.sliced_wasserstein(points, points + 0.5).item()
    assert shifted == pytest.approx(0.25, rel=0.5)  # E[(0.5 * sum(d))^2] over unit directions d
    # different sizes: quantiles are compared
    assert losses.sliced_wasserstein(points, torch.rand(2000, 3)).item() < 0.01


def test_patch_nce_prefers_matching_features():
    torch.manual_seed(0)
    nce = losses.PatchNCE([8], patches=64)
    features = torch.randn(2, 8, 16, 16)
    same = nce([features], [features]).item()
    other = nce([torch.randn(2, 8, 16, 16)], [features]).item()
    assert same < other
