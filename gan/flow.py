"""Optical flow between frames (OpenCV's DIS) and what temporal stability is built on.

Used by training (the temporal term ties the output of frame t to the warped output of t-1),
by stylizing (optional flow-guided stabilization) and by the warping-error metric. Frames are
RGB uint8 (H, W, 3); flows are (H, W, 2) float32 in pixels: flow(p) says where pixel p of the
first frame is found in the second.
"""

from __future__ import annotations

import cv2
import numpy as np


def optical_flow(frame0: np.ndarray, frame1: np.ndarray,
                 preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> np.ndarray:
    """Dense flow from frame0 to frame1 (DIS on grey levels)."""
    dis = cv2.DISOpticalFlow_create(preset)
    return dis.calc(_grey(frame0), _grey(frame1), None)


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p): with the flow from frame t to frame u, brings frame u's
    pixels back onto frame t."""
    return remap(image, sampling_maps(flow))


def sampling_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's maps of warp(): the point p + flow(p) each pixel p is sampled at."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def remap(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """warp() with its maps made beforehand (they can be made on another thread)."""
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """1.0 where the forward and backward flows agree (Sundaram et al. 2010), 0.0 where the
    pixel is occluded or leaves the frame (float32, (H, W))."""
    bw_at_target = warp(flow_bw, flow_fw)
    round_trip = flow_fw + bw_at_target
    tolerance = 0.01 * ((flow_fw ** 2).sum(-1) + (bw_at_target ** 2).sum(-1)) + 0.5
    valid = (round_trip ** 2).sum(-1) < tolerance
    h, w = flow_fw.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
    target_x, target_y = grid_x + flow_fw[..., 0], grid_y + flow_fw[..., 1]
    inside = (target_x >= 0) & (target_x <= w - 1) & (target_y >= 0) & (target_y <= h - 1)
    return (valid & inside).astype(np.float32)


def trusted_flow(frame: np.ndarray, other: np.ndarray,
                 preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> tuple[np.ndarray, np.ndarray]:
    """Flow from `frame` to `other` and the mask of pixels it can be trusted on (occlusion
    check), so that warp(anything_aligned_with_other, flow) lines it up with `frame`."""
    to_other = optical_flow(frame, other, preset)
    return to_other, occlusion_mask(to_other, optical_flow(other, frame, preset))
