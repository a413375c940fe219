"""Keyframes painted by the machine: a few footage frames repainted with the style's patches
(GPDM's direct optimisation, patch_distribution.synthesize), then learned like keyframes an
artist painted (the few-shot route of Texler et al. 2020). A painting offers no pairs, and an
adversarial or patch loss on a generator learns its strokes slowly; a painted frame shows the
generator at once what the strokes look like on this footage.

The painted frames are PNG files in the training's work folder: the artist can look at them,
and a resumed training reads them instead of painting again.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from .frames import FrameSourceError
from .images import resized, to_images, to_tensor, write_image
from .patch_distribution import synthesize
from .protocol import CancelledError, CancelToken, KeyframeSpec, Reporter, SourceSpec
from .sampling import FramePool

FOLDER = "auto_keyframes"
PAINT_SIDE = 288  # short side (pixels) at which frames are painted; enlarged to the footage's
PAINT_LR = 0.05  # how far the pixels move from the footage: strokes over the content
PAINT_LEVELS = 4  # pyramid levels: at 288 px, 7 x 7 patches at 1/8 size span 56 pixels
STYLE_FRAMES = 4  # style frames whose patches are matched (a clip offers many; one suffices)
# Of each side of a style image, this fraction is left out: photographs and scans of paintings
# carry a rim of frame, wall or unpainted canvas, whose patches would paint dark borders.
STYLE_RIM = 0.03


def frame_choice(pool: FramePool, count: int) -> list[tuple[int, int, np.ndarray]]:
    """`count` (source, index, frame) spread evenly over the footage; a frame that cannot be
    read (a video shorter than its header says) gives way to the nearest earlier one."""
    entries = pool.entries
    picks = np.linspace(0, len(entries) - 1, min(count, len(entries))).round().astype(int)
    chosen: dict[tuple[int, int], np.ndarray] = {}
    for pick in dict.fromkeys(picks.tolist()):
        for source, index in reversed(entries[:pick + 1]):
            if (source, index) in chosen:
                break
            try:
                chosen[(source, index)] = pool.read(source, index)
                break
            except FrameSourceError:
                continue
    return [(source, index, frame) for (source, index), frame in chosen.items()]


def style_images(pool: FramePool, side: int, stroke_scale: float, device: torch.device
                 ) -> torch.Tensor:
    """Up to STYLE_FRAMES style frames at the painting scale: short side `side` x stroke_scale
    (the style image fitted to the footage frame, as training sees it), as one NCHW batch."""
    frames = []
    for frame in pool.frames[:STYLE_FRAMES]:
        rim_y, rim_x = round(frame.shape[0] * STYLE_RIM), round(frame.shape[1] * STYLE_RIM)
        frames.append(frame[rim_y:frame.shape[0] - rim_y, rim_x:frame.shape[1] - rim_x])
    height, width = frames[0].shape[:2]
    scale = side * stroke_scale / min(height, width)
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    resized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
               for f in frames]
    return to_tensor(np.stack(resized), device)


def paint_frame(frame: np.ndarray, style: torch.Tensor, steps: int, cancel: CancelToken
                ) -> np.ndarray:
    """One footage frame repainted with the style's patches, at the frame's own size."""
    height, width = frame.shape[:2]
    small = resized(frame, min(1.0, PAINT_SIDE / min(height, width)))
    painted = synthesize(to_tensor(small[None], style.device), style, steps=steps, lr=PAINT_LR,
                         levels=PAINT_LEVELS, should_stop=lambda: cancel.requested)
    if cancel.requested:
        raise CancelledError("training stopped while painting keyframes; resume to continue")
    image = to_images(painted)[0]
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    return image


def paint_keyframes(footage: list[SourceSpec], content: FramePool, style: FramePool, count: int,
                    work_dir: str, stroke_scale: float, steps: int, reporter: Reporter,
                    cancel: CancelToken, device: torch.device
                    ) -> list[KeyframeSpec]:
    """Paint `count` footage frames with `steps` optimisation steps each on `device` (or reuse
    those painted before in `work_dir`): the keyframes to learn from."""
    folder = os.path.join(work_dir, FOLDER)
    os.makedirs(folder, exist_ok=True)
    choice = frame_choice(content, count)
    style_batch = None
    specs = []
    for n, (source, index, frame) in enumerate(choice):
        path = os.path.join(folder, f"source{source}_frame{index:06d}.png")
        if not os.path.isfile(path):
            if style_batch is None:
                style_batch = style_images(style, PAINT_SIDE, stroke_scale, device)
            reporter.emit("log", message=f"painting keyframe {n + 1} of {len(choice)} with the "
                                         "style's patches")
            painted = paint_frame(frame, style_batch, steps, cancel)
            write_image(path, painted, overwrite=True)
        specs.append(KeyframeSpec(footage[source].path, index, path))
    return specs
