"""Which device and number format a job runs on."""

from __future__ import annotations

import functools
import os

import torch

from .protocol import UserError, is_device_name

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU for "auto"; "cuda:N" is GPU N of several; a named device
    that is missing is a UserError."""
    if not is_device_name(name):
        raise UserError(f"unknown device {name!r}: use one of {', '.join(DEVICE_NAMES)} "
                        "or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for, but this torch has no usable CUDA GPU")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise UserError(f"device {name!r} was asked for, but this computer has "
                        f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    if name == "mps" and not _mps_available():
        raise UserError("device 'mps' was asked for, but Apple Metal (MPS) is not available here")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16 or AMX). Elsewhere torch emulates bf16,
    which is slower than fp32, so the flag has to be read from the CPU itself."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:  # not Linux: no reliable way to tell, fp32 is the safe choice
        pass
    return False


def pick_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the hardware computes it natively (2-3x faster than fp32), else float32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    return torch.float32  # MPS: bf16 support depends on the macOS version; fp32 always works


def leave_cores_free(count: int = 1) -> int:
    """Run torch's CPU work on all cores but `count` (at least one thread); returns the number.

    The worker uses this so that an interactive Blender beside it gets a core (in background
    mode Blender only waits, and the worker takes them all). It also matters for speed: OpenMP
    threads spin while they wait for each other, so when another process takes one of their
    cores they crawl. Measured on a 2-core machine with one other busy process: a training step
    took 3.5 s with 2 threads and 0.2 s with 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    threads = max(1, cores - count)
    torch.set_num_threads(threads)
    return threads


def start_fields(device: torch.device, dtype: torch.dtype) -> dict:
    """Where a job runs, as its "start" event says it (threads: torch's CPU threads)."""
    return {"device": device.type, "dtype": str(dtype).replace("torch.", ""),
            "threads": torch.get_num_threads()}
