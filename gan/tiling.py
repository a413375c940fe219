"""How frames of one size go through the model: the plan (frames per call, tiles or not) from
the memory a call may use, and the geometry of overlapping tiles.

`FrameStylizer` (gan/stylize.py) runs the plan; nothing here calls the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MAX_BATCH = 8
CPU_BATCH_PIXELS = 2_000_000   # on a CPU, batching only saves per-call overhead: small frames
# Peak memory of a whole-frame call, per pixel, in fp32 (the part that scales with the model
# is half in bf16): (24 * ngf + 128) * element size / 4 + 32 bytes. The fixed part is the frame
# as float input and output and the colour path. Measured peaks above the idle process at
# 1024x1024 on CPU were 152/244/415 B/px (bf16, ngf 8/16/32) and 280/420/796 (fp32); this stays
# ~15% above them. (The former 32 * ngf alone let an 8K frame of an ngf-8 model run whole:
# 7.2 GB for a budget of 4 GB.)
ACTIVATION_BYTES_PER_PIXEL_PER_NGF = 24
FIXED_BYTES_PER_PIXEL = 128
FRAME_BYTES_PER_PIXEL = 32
DEFAULT_TILE = 1024


@dataclass
class Plan:
    """How frames of one size go through the model."""
    batch: int
    tile: int | None  # None: whole frames


def make_plan(height: int, width: int, fit: int, *, multiple: int, margin: int,
              batch: int | None, tile: int | None, on_cpu: bool) -> Plan:
    """The plan for frames of `height` x `width`, for a generator whose sides must be multiples
    of `multiple` and that needs `margin` pixels of context; `fit`: pixels per call that fit
    (`pixels_that_fit`); `batch`, `tile`: the job's own choice, if it made one."""
    if tile is None and height * width > fit:
        tile = DEFAULT_TILE
    if tile is not None:
        # Tiles overlap by 2 * margin; keep that overhead moderate.
        tile = max(round_up(tile, multiple), 4 * margin + multiple)
        if tile >= round_up(height, multiple) and tile >= round_up(width, multiple):
            tile = None
    pixels = max(1, tile * tile if tile else height * width)
    chosen = batch or max(1, min(MAX_BATCH, fit // pixels))
    if batch is None and on_cpu:
        chosen = max(1, min(chosen, CPU_BATCH_PIXELS // pixels))
    return Plan(batch=chosen, tile=tile)


def pixels_that_fit(ngf: int, dtype: torch.dtype, device: torch.device) -> int:
    """Pixels per model call that fit in about half the memory we may use."""
    per_pixel = ((ACTIVATION_BYTES_PER_PIXEL_PER_NGF * ngf + FIXED_BYTES_PER_PIXEL)
                 * _element_size(dtype) / 4 + FRAME_BYTES_PER_PIXEL)
    return max(256 * 256, int(memory_budget(device) / per_pixel))


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so the generator's strided layers line up; cropped off afterwards."""
    pad_h = round_up(x.shape[2], multiple) - x.shape[2]
    pad_w = round_up(x.shape[3], multiple) - x.shape[3]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: step tile - overlap; the last tile ends at the edge.

    Length, tile and overlap are multiples of the generator's stride, so every tile sees the
    same sampling grid as the whole frame would.
    """
    if tile >= length:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def ramp(size: int, fade_start: bool, fade_end: bool, overlap: int,
         device: torch.device) -> torch.Tensor:
    """1-D blend weight of a tile: 0 within overlap/4 of an inner edge (too little context),
    rising linearly to 1 at 3/4 of the overlap; 1 up to the frame border."""
    distance = torch.arange(size, dtype=torch.float32, device=device)
    weight = torch.ones(size, dtype=torch.float32, device=device)
    if overlap <= 0:
        return weight
    rise = lambda d: ((d + 0.5 - overlap / 4) / (overlap / 2)).clamp(0.0, 1.0)  # noqa: E731
    if fade_start:
        weight = torch.minimum(weight, rise(distance))
    if fade_end:
        weight = torch.minimum(weight, rise(size - 1 - distance))
    return weight


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def memory_budget(device: torch.device) -> int:
    """Bytes the activations of one model call may use."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() * 0.4)
    return min(_available_ram() // 4, 4 << 30)


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
