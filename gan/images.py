"""Pixels between OpenCV, numpy and torch, and image files written whole.

A frame in memory is RGB uint8 (H, W, 3); stylizing also carries native frames, RGB or RGBA in
uint8 or uint16 (see gan/frames.py). OpenCV decodes and encodes BGR(A). Generators take and
give float NCHW RGB in [0, 1]. Every conversion between these, and the one way to write an
image file (encoded, then `gan.fileio.atomic_write`), is here.

numpy and OpenCV only at import: torch is imported by the two tensor conversions, whose
callers have it loaded already (reading frames, `python -m gan frame`, needs no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .fileio import atomic_write

if TYPE_CHECKING:
    import torch

# OpenCV's own PNG default, spelled out because it is a deliberate choice: zlib level 1 with the
# RLE strategy and the SUB filter. Measured at 1080p on this project's CPU it encodes in ~50 ms
# and is as small as or smaller than IMWRITE_PNG_COMPRESSION=1 (~125 ms; giving a level switches
# OpenCV to the default strategy and adaptive filters) or 3 (~200 ms).
PNG_PARAMS = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95]
ENCODER_PARAMS = {".png": PNG_PARAMS, ".jpg": JPEG_PARAMS}


# -- channels and depth ---------------------------------------------------------------------------

def channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


def from_opencv(image: np.ndarray, keep_alpha: bool) -> np.ndarray:
    """OpenCV's grey, BGR or BGRA (any depth) -> RGB, or RGBA when `keep_alpha` (else the alpha
    is dropped). Other channel counts are a ValueError: the reader says which file."""
    count = channels(image)
    if count == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if count == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if count == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if keep_alpha else cv2.COLOR_BGRA2RGB)
    raise ValueError(f"unsupported image with {count} channels")


def to_opencv(image: np.ndarray) -> np.ndarray:
    """RGB or RGBA -> OpenCV's BGR or BGRA (what it encodes)."""
    return cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)


def to_8bit(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8, rounded to nearest so that 65535 is 255 exactly (a plain >> 8 would be
    darker by up to 1 level); uint8 is returned as it is."""
    if image.dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return image


def model_rgb(native: np.ndarray) -> np.ndarray:
    """The RGB uint8 picture a model sees of a native frame (the frame itself when it is one)."""
    if native.dtype == np.uint8 and native.shape[2] == 3:
        return native
    return np.ascontiguousarray(to_8bit(native[..., :3]))


def restore_native(styled: np.ndarray, rgb: np.ndarray, native: np.ndarray) -> np.ndarray:
    """A stylized RGB uint8 frame in the native frame's channels and depth: the alpha is the
    source's (the style changes colour, never coverage); a 16-bit frame gets the change the
    style made, so what the style left alone keeps all 16 bits."""
    if native.dtype == np.uint16:
        change = (styled.astype(np.int32) - rgb.astype(np.int32)) * 257
        styled = np.clip(native[..., :3].astype(np.int32) + change, 0, 65535).astype(np.uint16)
    if native.shape[2] == 4:
        styled = np.concatenate([styled, native[..., 3:]], axis=2)
    return styled


# -- tensors --------------------------------------------------------------------------------------

def to_tensor(images: np.ndarray | list[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 NHWC (an array, or a list of same-size frames) -> float32 NCHW in [0, 1] on the
    device. The permuted view of NHWC memory is already channels_last, the fast layout for
    convolutions. (x * (1 / 255): stylizing has always scaled so, and its files stay the same.)"""
    import torch
    if isinstance(images, list):
        images = images[0][None] if len(images) == 1 else np.stack(images)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    return x.float().mul_(1.0 / 255.0)


def to_images(tensor: torch.Tensor) -> np.ndarray:
    """float NCHW in [0, 1] (values outside are clipped) -> uint8 NHWC on the CPU, rounded to
    the nearest level. Converted on the tensor's device: a GPU sends a quarter of the bytes."""
    import torch
    y = tensor.detach().float().mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()


# -- files ----------------------------------------------------------------------------------------

def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    """An RGB or RGBA frame, uint8 or uint16, as the bytes of a .png (all of it kept) or a .jpg
    (RGB 8-bit: the alpha and the low 8 bits are dropped). ValueError if OpenCV refuses."""
    if ext == ".jpg" and (image.shape[2] == 4 or image.dtype != np.uint8):
        image = model_rgb(image)
    ok, data = cv2.imencode(ext, to_opencv(image), ENCODER_PARAMS[ext])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} {image.dtype} image as {ext}")
    return data.tobytes()


def write_image(path: str, image: np.ndarray, *, overwrite: bool, ext: str = ".png") -> None:
    """Encode `image` (see `encode`) and write it atomically: a file under `path` is always
    complete. overwrite=False never replaces a file (FileExistsError, even if one appears while
    writing). ValueError: not encodable; OSError: not writable (naming `path`)."""
    data = encode(image, ext)
    atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` (HWC) scaled by `scale`, at least 16 pixels a side: area average when shrinking,
    bicubic when enlarging, the image itself when the size does not change."""
    height, width = image.shape[:2]
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
