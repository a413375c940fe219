"""Image and video quality figures for benchmarks and tests (numpy + OpenCV only).

Frames are RGB arrays, uint8 (H, W, 3) or float in [0, 1]; stacks (N, H, W, 3) are accepted
wherever a single frame is.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np


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

def optical_flow(frame0: np.ndarray, frame1: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
                 ) -> np.ndarray:
    """Dense flow from frame0 to frame1 (DIS on grey levels): (H, W, 2) float32 in pixels."""
    dis = cv2.DISOpticalFlow_create(preset)
    grey0 = cv2.cvtColor(_uint8(frame0), cv2.COLOR_RGB2GRAY)
    grey1 = cv2.cvtColor(_uint8(frame1), cv2.COLOR_RGB2GRAY)
    return dis.calc(grey0, grey1, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p): brings the next frame back onto the current one."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """1 where the forward/backward flows agree (Sundaram et al. 2010), 0 where occluded or
    leaving the frame."""
    bw_at_target = warp(flow_bw, flow_fw)
    round_trip = flow_fw + bw_at_target
    tolerance = 0.01 * ((flow_fw ** 2).sum(-1) + (bw_at_target ** 2).sum(-1)) + 0.5
    valid = (round_trip ** 2).sum(-1) < tolerance
    h, w = flow_fw.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    target_x, target_y = grid_x + flow_fw[..., 0], grid_y + flow_fw[..., 1]
    inside = (target_x >= 0) & (target_x <= w - 1) & (target_y >= 0) & (target_y <= h - 1)
    return (valid & inside).astype(np.float64)


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
            flow_fw = optical_flow(prev_in, inp)
            flow_bw = optical_flow(inp, prev_in)
            mask = occlusion_mask(flow_fw, flow_bw)
            warped = warp(out.astype(np.float32), flow_fw)
            squared = ((prev_out - warped) ** 2).mean(-1)
            errors.append(float((mask * squared).sum() / max(mask.sum(), 1.0)))
        prev_out, prev_in = out, inp
    if not errors:
        raise ValueError("warping_error needs at least two frames")
    return float(np.mean(errors))
