"""Headless demo: build and install the extension, train a style, apply it to a clip in a .blend.

    .venv/bin/python scripts/demo.py [--minutes M]

Uses Blender as a Python module, the same as `blender -b --python scripts/demo.py` would, with
the real operators and worker process. Writes into out/demo/ (a new numbered folder if it exists):
demo.blend, the stylized frames beside it, and before_after.png.
Sample media: Debian's opencv-doc clip and painting when apt can fetch them, else generated.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
SAMPLES = os.path.join(ROOT, ".cache", "samples")


def unique_folder(base: str) -> str:
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}_{n}"
    os.makedirs(path)
    return path


def sample_media(folder: str) -> tuple[str, str]:
    """(footage video, style image): the opencv-doc samples, or generated stand-ins."""
    import cv2
    import numpy as np

    fetch = os.path.join(ROOT, "benchmarks", "fetch_samples.sh")
    clip, painting = os.path.join(SAMPLES, "vtest.avi"), os.path.join(SAMPLES, "starry_night.jpg")
    if not (os.path.isfile(clip) and os.path.isfile(painting)) and os.path.isfile(fetch):
        subprocess.run(["bash", fetch], capture_output=True)
    if os.path.isfile(clip) and os.path.isfile(painting):
        return clip, painting

    print("demo: opencv-doc samples unavailable, generating a clip and a painting")
    rng = np.random.default_rng(7)
    clip = os.path.join(folder, "generated_clip.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 24, (320, 240))
    for i in range(60):
        frame = np.full((240, 320, 3), (90, 140, 110), np.uint8)
        cv2.rectangle(frame, (0, 160), (320, 240), (70, 90, 120), -1)
        for k in range(4):
            x = int(40 + 70 * k + 3 * i * (1 if k % 2 else -1)) % 320
            cv2.circle(frame, (x, 130 + 10 * k), 18, (200, 180 - 30 * k, 60 + 40 * k), -1)
        writer.write(frame)
    writer.release()
    painting = os.path.join(folder, "generated_painting.png")
    canvas = np.zeros((256, 256, 3), np.uint8)
    for _ in range(400):  # brush strokes in a blue/yellow palette
        colour = [(160, 70, 20), (220, 180, 60), (40, 200, 230), (120, 40, 10)][rng.integers(4)]
        p = rng.integers(0, 256, 2)
        cv2.ellipse(canvas, (int(p[0]), int(p[1])), (int(rng.integers(6, 20)), 3),
                    float(rng.uniform(0, 180)), 0, 360, colour, -1)
    cv2.imwrite(painting, canvas)
    return clip, painting


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time (default 5)")
    parser.add_argument("--frames", type=int, default=48, help="length of the demo strip")
    args = parser.parse_args()

    out = unique_folder(os.path.join(ROOT, "out", "demo"))
    os.environ["BLENDER_USER_RESOURCES"] = os.path.join(out, "blender_user")
    os.environ["GAN_STYLE_DATA_DIR"] = os.path.join(out, "gan_style_data")  # nor your styles
    import bpy  # after BLENDER_USER_RESOURCES: the demo never touches your Blender settings
    import cv2
    import numpy as np
    from build_extension import build_extension

    clip, painting = sample_media(out)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    zip_path = build_extension(tempfile.mkdtemp(prefix="gan_style_build_"))
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                             enable_on_install=True)
    if "bl_ext.user_default.gan_style" not in sys.modules:
        print("demo: the extension did not install", file=sys.stderr)
        return 1

    scene = bpy.context.scene
    scene.sequence_editor_create()
    editor = scene.sequence_editor
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 4.2 / 4.4+
    movie = strips.new_movie(name="Clip", filepath=clip, channel=1, frame_start=1)
    # Match the scene to the clip (Blender's "Set Render Size" and frame rate), as an editor would.
    capture = cv2.VideoCapture(clip)
    scene.render.resolution_x = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    scene.render.resolution_y = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = round(movie.fps), round(movie.fps) / movie.fps
    movie.frame_offset_start = 10  # a trimmed strip: the style follows the visible frames
    movie.frame_offset_end = max(movie.frame_duration - 10 - args.frames, 0)
    scene.frame_start, scene.frame_end = movie.frame_final_start, movie.frame_final_end - 1
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out, "demo.blend"))

    print(f"demo: training 'Starry' for {args.minutes} min from {os.path.basename(painting)}")
    result = bpy.ops.sequencer.gan_style_train(
        name="Starry", style_path=painting, content_strips=[{"name": "Clip"}],
        preset='draft', minutes=args.minutes)
    if result != {'FINISHED'}:
        return 1
    for strip in strips:
        strip.select = strip.name == "Clip"
    scene.sequence_editor.active_strip = movie
    print("demo: applying the style to the clip")
    if bpy.ops.sequencer.gan_style_apply(style="Starry", mix=1.0) != {'FINISHED'}:
        return 1
    styled = next(s for s in strips if s.name != "Clip")
    bpy.ops.wm.save_mainfile()

    frame = movie.frame_final_start + min(20, args.frames - 1)
    source_index = movie.animation_offset_start + frame - movie.frame_start
    capture.set(cv2.CAP_PROP_POS_FRAMES, source_index)
    before = capture.read()[1]
    element = styled.strip_elem_from_frame(frame)
    after = cv2.imread(os.path.join(bpy.path.abspath(styled.directory), element.filename))
    after = cv2.resize(after, (before.shape[1], before.shape[0]))
    picture = np.hstack([before, np.full((before.shape[0], 8, 3), 255, np.uint8), after])
    cv2.imwrite(os.path.join(out, "before_after.png"), picture)
    print(f"demo: wrote {out}/demo.blend, its frames in {bpy.path.abspath(styled.directory)} "
          f"and {out}/before_after.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
