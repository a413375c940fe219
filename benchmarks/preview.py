"""Preview Frame speed: the first and the following previews of a 1080p frame, through the real
operator in the bpy module with the extension installed from this checkout.

    .venv/bin/python benchmarks/preview.py [--style Starry_Night] [--previews 5]

The first preview starts the serving worker (Python, torch, the style); the following ones reuse
it. Each time is the operator call in background mode (it blocks until the image datablock
shows the frame): planning the strip, the worker's decode + model + PNG encode, loading the
image. The frame is a 1080p MJPG movie made from vtest.avi (or random texture without it).
Target: previews after the first within 2 s with the draft preset on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="gan_preview_bench_")

import bpy  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from build_extension import build_extension  # noqa: E402

MODULE = "bl_ext.user_default.gan_style"


def make_clip(folder: str, frames: int = 8) -> str:
    path = os.path.join(folder, "clip_1080p.avi")
    sample = os.path.join(ROOT, ".cache", "samples", "vtest.avi")
    capture = cv2.VideoCapture(sample) if os.path.isfile(sample) else None
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 24, (1920, 1080))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        ok, frame = capture.read() if capture is not None else (False, None)
        if not ok:
            frame = cv2.resize(rng.integers(0, 256, (68, 120, 3), np.uint8), (1920, 1080),
                               interpolation=cv2.INTER_CUBIC)
        writer.write(cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_CUBIC))
    writer.release()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style", default="Starry_Night", help="library name (a shipped style)")
    parser.add_argument("--previews", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="worker Python (needs torch)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="gan_preview_")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=build_extension(work), repo="user_default",
                                             enable_on_install=True)
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python_path, prefs.device = args.python, 'CPU'
    worker = sys.modules[MODULE].vse.worker
    scene = bpy.context.scene
    scene.sequence_editor_create()
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    editor = scene.sequence_editor
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    strip = strips.new_movie(name="Clip", filepath=make_clip(work), channel=1, frame_start=1)
    editor.active_strip = strip
    times = []
    try:
        for number in range(args.previews):
            scene.frame_set(1 + number % 8)
            start = time.perf_counter()
            result = bpy.ops.sequencer.gan_style_preview(style=args.style)
            times.append(time.perf_counter() - start)
            assert result == {'FINISHED'}, result
            print(f"preview {number + 1}: {times[-1]:.2f} s (worker pid {worker.server_pid()})",
                  flush=True)
        image = bpy.data.images["GAN Style Preview"]
        print(f"image {tuple(image.size)}; first {times[0]:.2f} s, then median "
              f"{statistics.median(times[1:]):.2f} s, max {max(times[1:]):.2f} s")
    finally:
        worker.stop_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
