"""Stabilize: flow-guided blending of the previous output against flicker, and the pre-roll
that lets a chunk of a stabilized run meet the single run.

Stylizing (gan/stylize.py) carries no state from frame to frame except this one: with
`stabilize` > 0 each output blends in the previous output moved by the optical flow between
the input frames (`Stabilizer`). A chunk that knows where its run starts therefore stylizes
`preroll_frames(strength)` frames before its first one without writing them, and then meets
the single run within half a grey level before rounding (see docs/decisions.md for the
measured difference). `Stabilizer.measure` needs the input frames alone, so the pipeline runs
it on motion threads while the model works; `Stabilizer.blend` is the sequential rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .flow import remap, sampling_maps, trusted_flow, warp

STABILIZE_FLOW_SIDE = 640  # flow for stabilization is measured at this size (motion is smooth)
# After motion compensation, a pixel whose input changed by c (of 255) is blended with weight
# strength * (1 - c / STABILIZE_FADE): noise and flicker are calmed, light changes and new content
# are not. Measured on vtest.avi (benchmarks/quality.py, a colour grade) at strength 0.7: a hard
# cut-off at 24 lowered the warping error by 19%, this ramp by 43%, for 0.013 of gap closure.
STABILIZE_FADE = 96.0
# A frame where less than STABILIZE_CUT_MATCH of the pixels match the previous one (within
# STABILIZE_MATCH of 255) is a cut: nothing of the previous shot is blended into it.
STABILIZE_MATCH = 24.0
STABILIZE_CUT_MATCH = 0.5
# A chunk of a stabilized run starts this many frames early at most (see preroll_frames).
MAX_PREROLL = 60


def preroll_frames(strength: float) -> int:
    """Frames a chunk of a stabilized run stylizes before its first one, without writing them.

    Each frame keeps at most `strength` of the previous output (`Stabilizer`), so whatever a
    cold start leaves in the state shrinks by that factor per frame: after K frames at most
    255 * strength**K grey levels of it are left. K is the smallest with that below half a level
    (strength 0.5: 9 frames, 0.7: 18, 0.9: 60), capped at MAX_PREROLL (above 0.9 the bound is
    then 255 * strength**60, e.g. 1.2 levels at 0.92; on real footage the blend weight is
    mostly well below `strength`, see docs/decisions.md).
    """
    if strength <= 0:
        return 0
    if strength >= 1:
        return MAX_PREROLL
    return min(MAX_PREROLL, math.ceil(math.log(0.5 / 255) / math.log(strength)))


@dataclass
class Motion:
    """How the previous output is carried onto a frame: where each pixel samples it (remap maps)
    and how much of it is blended in (full size)."""
    maps: tuple[np.ndarray, np.ndarray]
    alpha: np.ndarray
    keep: np.ndarray  # 1 - alpha (made on the motion thread, not in the sequential blend)


class Stabilizer:
    """Flow-guided temporal smoothing of the output: out_t = (1 - a) * styled_t + a * W(out_t-1)
    with a = strength where the flow between the input frames is trusted (forward/backward
    consistent), fading to 0 as the input itself changes after warping (STABILIZE_FADE).
    Recursive, so the strength sets how long a detail persists; occlusions, new content and
    cuts are not blended. The motion is measured at STABILIZE_FLOW_SIDE: the full-size work is
    one warp and one blend.

    `measure` depends on the input frames alone, so the pipeline runs it on other threads while
    the model works; `blend` is the sequential rest. Calling the stabilizer does both.
    """

    def __init__(self, strength: float):
        self.strength = strength
        self.previous_frame: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None

    def measure(self, previous: np.ndarray | None, frame: np.ndarray) -> Motion | None:
        """The motion from input `previous` to input `frame`; None where nothing is to be
        blended (first frame, a new size, a cut)."""
        if previous is None or previous.shape != frame.shape:
            return None
        height, width = frame.shape[:2]
        scale = min(1.0, STABILIZE_FLOW_SIDE / max(height, width))
        # Each frame is shrunk twice (as `frame`, then as the next one's `previous`): ~1 ms, and
        # it keeps the measurements of a batch independent of each other, so they run at once.
        small, previous_small = (image if scale == 1.0 else cv2.resize(
            image, (max(8, round(width * scale)), max(8, round(height * scale))),
            interpolation=cv2.INTER_AREA) for image in (frame, previous))
        flow, trusted = trusted_flow(small, previous_small)
        input_change = cv2.absdiff(warp(previous_small, flow), small).max(-1).astype(np.float32)
        if float((trusted * (input_change < STABILIZE_MATCH)).mean()) < STABILIZE_CUT_MATCH:
            return None  # a cut
        alpha = self.strength * trusted * np.clip(1 - input_change / STABILIZE_FADE, 0, 1)
        if scale != 1.0:
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / scale
            alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        return Motion(sampling_maps(flow), alpha, 1 - alpha)

    def blend(self, styled: np.ndarray, motion: Motion | None) -> np.ndarray:
        """Blend the previous output, carried by `motion`, into this frame's styled output.

        The state is kept in float32 and only the returned frame is rounded to 8 bits: with an
        8-bit state, each frame's rounding kept off-by-one (and two) differences alive for as
        long as the blend weight stays high, so a chunk that started early never quite met a
        single run (at 0.7 on vtest.avi, 11% of the values differed by up to 2 levels).
        """
        previous = self.previous_output
        state = styled.astype(np.float32)
        self.previous_output = state
        if motion is None or previous is None or previous.shape != state.shape:
            return styled
        state = cv2.blendLinear(state, remap(previous, motion.maps), motion.keep, motion.alpha)
        self.previous_output = state
        return cv2.convertScaleAbs(state)  # rounded to the nearest level (state >= 0)

    def __call__(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        motion = self.measure(self.previous_frame, frame)
        self.previous_frame = frame
        return self.blend(styled, motion)
