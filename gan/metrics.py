"""Image and video quality figures for benchmarks and tests (numpy + OpenCV only).

Frames are RGB arrays, uint8 (H, W, 3) or float in [0, 1]; stacks (N, H, W, 3) are accepted
wherever a single frame is.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from .flow import trusted_flow, warp


def _unit(image: np.ndarray) -> np.ndarray:
    """float64 in [0, 1], so that uint8 and float inputs give the same figures."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def gap_closure(out, target, inp) -> float:
    """1 - L1(out, target) / L1(inp, target): 0 = no better than the input, 1 = exact target."""
    out, target, inp = _unit(out), _unit(target), _unit(inp)
    gap = np.abs(inp - target).mean()
    if gap == 0:
        raise ValueError("gap_closure is undefined when the input already equals the target")
    return float(1.0 - np.abs(out - target).mean() / gap)


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (uint8 is scaled); inf if equal."""
    mse = np.mean((_unit(a) - _unit(b)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim(a, b) -> float:
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), mean over
    pixels, channels and frames."""
    a, b = _unit(a), _unit(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {a.shape} and {b.shape}")
    if a.ndim == 2:
        a, b = a[None, ..., None], b[None, ..., None]
    elif a.ndim == 3:
        a, b = a[None], b[None]
    return float(np.mean([_ssim_map(x, y).mean() for x, y in zip(a, b)]))


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(image):
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


# -- temporal stability -------------------------------------------------------------------------

def aligned_error(image: np.ndarray, other: np.ndarray, flow: np.ndarray, mask: np.ndarray
                  ) -> float:
    """Mean squared difference between `image` and `other` brought onto it by `flow` (from
    flow.trusted_flow), over the pixels its `mask` trusts; channels averaged, [0, 1] scale."""
    warped = warp(_unit(other).astype(np.float32), flow)
    squared = ((_unit(image) - warped) ** 2).mean(-1)
    return float((mask * squared).sum() / max(float(mask.sum()), 1.0))


def warping_error(outputs: Iterable[np.ndarray], inputs: Sequence[np.ndarray] | Iterable[np.ndarray]
                  ) -> float:
    """Temporal warping error (Lai et al. 2018) of a stylized sequence.

    For consecutive frames t, t+1: flow and occlusion mask M come from the *input* frames;
    E_t = sum M * |O_t - W(O_t+1)|^2 / sum M (squared error averaged over channels, [0, 1]
    scale). Returns the mean over pairs. Frames stream through, two at a time.
    """
    errors = []
    prev_out = prev_in = None
    for out, inp in zip(outputs, inputs):
        out, inp = _unit(out), _uint8(inp)
        if prev_out is not None:
            errors.append(aligned_error(prev_out, out, *trusted_flow(prev_in, inp)))
        prev_out, prev_in = out, inp
    if not errors:
        raise ValueError("warping_error needs at least two frames")
    return float(np.mean(errors))
