"""Awkward input through the real Apply operator and the real worker: tiny or broken movies,
holes and mixed sizes in image sequences, grey/RGBA/16-bit frames, an 8K frame that must be
tiled, paths with spaces and non-ASCII characters, and `//` paths after the .blend moved.

Every case ends either with a correct new strip or with one clear ERROR line and nothing
added; after every case `bl_helpers.Invariants` checks that the source media bytes, the
existing strips and every existing output file are unchanged and that no broken or temporary
file appeared.
"""

from __future__ import annotations

import os
import shutil

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

W, H = bl_helpers.W, bl_helpers.H


@pytest.fixture
def folder(blend):
    """A media folder beside the saved .blend (`//media`)."""
    path = os.path.join(os.path.dirname(bpy.data.filepath), "media")
    os.makedirs(path)
    return path


def write_movie(path, count, size=(W, H)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), bl_helpers.FPS, size)
    assert writer.isOpened()
    for i in range(count):
        writer.write(cv2.resize(bl_helpers.coded_frame(i, seed=7), size))
    writer.release()
    return str(path)


def write_png(path, image):
    assert cv2.imwrite(str(path), image), path
    return str(path)


def apply_ok(scene, strip, style, invariants, native=False, **options):
    """Apply to `strip`: one new strip over the same frames, every frame file present (8-bit
    RGB PNGs unless `native`: alpha and 16 bits pass through)."""
    bl_helpers.select_only(scene, strip)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, **options) == {'FINISHED'}
    (new,) = bl_helpers.new_strips(scene, before)
    assert (new.frame_final_start, new.frame_final_duration) == \
        (strip.frame_final_start, strip.frame_final_duration)
    files = bl_helpers.strip_files(new)
    assert len(files) == strip.frame_final_duration
    outputs = [cv2.imread(f, cv2.IMREAD_UNCHANGED) for f in files]
    assert all(o is not None for o in outputs)
    if not native:
        assert all(o.dtype == np.uint8 and o.ndim == 3 and o.shape[2] == 3 for o in outputs), \
            "every output frame is an 8-bit RGB PNG"
    invariants.check(scene)
    return new, outputs


def apply_fails(scene, strip, style, invariants, match):
    """Apply to `strip` fails with one ERROR line matching `match`; nothing is added, and a
    frame folder is left only with the frames finished before the failure (to resume)."""
    bl_helpers.select_only(scene, strip)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    with pytest.raises(RuntimeError, match=match) as failure:
        bpy.ops.sequencer.gan_style_apply(style=style)
    message = str(failure.value).strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert bl_helpers.new_strips(scene, before) == [], "a strip was added"
    root = bl_helpers.output_root()
    for name in os.listdir(root) if os.path.isdir(root) else []:
        frames = [n for n in os.listdir(os.path.join(root, name)) if n.startswith("frame_")]
        assert frames, f"an empty frame folder was left behind: {name}"
        assert f"finished frames are kept ({len(frames)} of " in message, message
    invariants.check(scene)
    return message


# -- tiny and broken movies ---------------------------------------------------------------------

@pytest.mark.lts
def test_one_frame_image_strip(blend, folder, style):
    image = write_png(os.path.join(folder, "only.png"), bl_helpers.coded_frame(3))
    strip = bl_helpers.add_images(blend, [image], "One", channel=1, frame_start=5)
    invariants = bl_helpers.Invariants(blend)
    _new, (out,) = apply_ok(blend, strip, style, invariants, mix=0.0)
    source = cv2.imread(image)
    assert np.abs(out.astype(int) - source.astype(int)).max() <= 1  # mix 0: the source pixels


def test_one_frame_movie(blend, folder, style):
    strip = bl_helpers.add_movie(blend, write_movie(os.path.join(folder, "one.avi"), 1),
                                 "One", channel=1, frame_start=1)
    assert strip.frame_final_duration == 1
    invariants = bl_helpers.Invariants(blend)
    _new, (out,) = apply_ok(blend, strip, style, invariants, mix=0.0)
    assert out.shape == (H, W, 3)


@pytest.mark.lts
def test_zero_frame_movie(blend, folder, style):
    """OpenCV writes a valid container with no frame; Blender still shows a 1-frame strip."""
    strip = bl_helpers.add_movie(blend, write_movie(os.path.join(folder, "zero.avi"), 0),
                                 "Zero", channel=1, frame_start=1)
    invariants = bl_helpers.Invariants(blend)
    apply_fails(blend, strip, style, invariants,
                r"^Error: Strip 'Zero': .*zero\.avi: the video has no frames")


def test_file_that_is_not_a_movie(blend, folder, style):
    path = os.path.join(folder, "noise.avi")
    with open(path, "wb") as handle:
        handle.write(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    strip = bl_helpers.add_movie(blend, path, "Noise", channel=1, frame_start=1)
    invariants = bl_helpers.Invariants(blend)
    apply_fails(blend, strip, style, invariants, r"noise\.avi")


def test_movie_truncated_after_the_strip_was_made(blend, folder, style):
    path = write_movie(os.path.join(folder, "cut.avi"), 12)
    strip = bl_helpers.add_movie(blend, path, "Cut", channel=1, frame_start=1)
    assert strip.frame_final_duration == 12
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:  # the file is damaged on disk (copy interrupted...)
        handle.write(data[:len(data) // 2])
    invariants = bl_helpers.Invariants(blend)
    apply_fails(blend, strip, style, invariants, r"cut\.avi")


# -- image sequences ----------------------------------------------------------------------------

@pytest.mark.lts
def test_image_sequence_with_a_missing_file_in_the_middle(blend, folder, style):
    paths = [write_png(os.path.join(folder, f"f_{i:03d}.png"), bl_helpers.coded_frame(i))
             for i in range(5)]
    strip = bl_helpers.add_images(blend, paths, "Holey", channel=1, frame_start=1)
    os.unlink(paths[2])
    invariants = bl_helpers.Invariants(blend)
    apply_fails(blend, strip, style, invariants,
                r"Strip 'Holey': media file not found: .*f_002\.png$")


def test_mixed_frame_sizes_keep_each_frame_size(blend, folder, style):
    sizes = [(W, H), (W, H), (40, 30), (W + 16, H), (W, H)]
    paths = [write_png(os.path.join(folder, f"m_{i:03d}.png"),
                       cv2.resize(bl_helpers.coded_frame(i), size))
             for i, size in enumerate(sizes)]
    strip = bl_helpers.add_images(blend, paths, "Mixed", channel=1, frame_start=1)
    invariants = bl_helpers.Invariants(blend)
    _new, outputs = apply_ok(blend, strip, style, invariants)
    assert [(o.shape[1], o.shape[0]) for o in outputs] == sizes


@pytest.mark.lts
def test_grey_rgba_and_16_bit_frames(blend, folder, style):
    base = bl_helpers.coded_frame(1)
    grey = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(base, cv2.COLOR_BGR2BGRA)
    rgba[:, :, 3] = 60  # mostly transparent: alpha and colours are kept
    deep = base.astype(np.uint16) * 257
    deep[0, 0] = (65535, 128, 1)  # levels that are not multiples of 257 survive too
    paths = [write_png(os.path.join(folder, "a_grey.png"), grey),
             write_png(os.path.join(folder, "b_rgba.png"), rgba),
             write_png(os.path.join(folder, "c_16bit.png"), deep)]
    assert cv2.imread(paths[2], cv2.IMREAD_UNCHANGED).dtype == np.uint16
    strip = bl_helpers.add_images(blend, paths, "Kinds", channel=1, frame_start=1)
    invariants = bl_helpers.Invariants(blend)
    _new, outputs = apply_ok(blend, strip, style, invariants, native=True, mix=0.0)
    # Grey becomes RGB; alpha and 16 bits pass through unchanged (mix 0: the source exactly).
    assert np.array_equal(outputs[0], cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert np.array_equal(outputs[1], rgba)
    assert outputs[2].dtype == np.uint16 and np.array_equal(outputs[2], deep)
    _new, outputs = apply_ok(blend, strip, style, invariants, native=True, mix=1.0)
    assert outputs[1].shape[2] == 4 and (outputs[1][:, :, 3] == 60).all()
    assert outputs[2].dtype == np.uint16


@pytest.mark.slow
def test_8k_frame_is_stylized_whole(blend, folder, style):
    """One 7680x4320 frame: stylized in tiles by the worker, written at full size."""
    big = cv2.resize(bl_helpers.coded_frame(2), (7680, 4320), interpolation=cv2.INTER_NEAREST)
    path = write_png(os.path.join(folder, "big.png"), big)
    strip = bl_helpers.add_images(blend, [path], "Big", channel=1, frame_start=1)
    invariants = bl_helpers.Invariants(blend)
    _new, (out,) = apply_ok(blend, strip, style, invariants)
    assert out.shape == (4320, 7680, 3)


# -- paths ----------------------------------------------------------------------------------

@pytest.mark.lts
def test_paths_with_spaces_and_non_ascii(addon, blend, style, tmp_path):
    project = tmp_path / "my project ÄÖÜ 東京"
    clips = project / "clips with spaces" / "été ünï"
    clips.mkdir(parents=True)
    paths = [write_png(clips / f"shot ä {i}.png", bl_helpers.coded_frame(i)) for i in range(3)]
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "schnitt ß.blend"))
    strip = bl_helpers.add_images(blend, paths, "Clip é 東", channel=1, frame_start=1)
    movie = bl_helpers.add_movie(blend, write_movie(clips / "film ö.avi", 3), "Film ö",
                                 channel=2, frame_start=10)
    invariants = bl_helpers.Invariants(blend)
    new, _ = apply_ok(blend, strip, style, invariants, mix=0.0)
    assert new.directory.startswith("//gan_style"), new.directory
    assert os.path.dirname(bl_helpers.strip_files(new)[0]).startswith(str(project))
    apply_ok(blend, movie, style, invariants, mix=0.0)


def test_relative_paths_after_save_as_elsewhere(addon, blend, folder, style, tmp_path):
    """Save As remaps `//` paths: the strip still finds its media, output goes beside the new
    file. A .blend copied by hand keeps the old `//` paths: a clear 'not found' naming the
    path it resolved to."""
    path = write_movie(os.path.join(folder, "clip.avi"), 4)
    strip = bl_helpers.add_movie(blend, path, "Rel", channel=1, frame_start=1)
    strip.filepath = "//media/clip.avi"
    bpy.ops.wm.save_mainfile()
    first_blend = bpy.data.filepath
    elsewhere = tmp_path / "other place" / "deeper"
    elsewhere.mkdir(parents=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(elsewhere / "moved.blend"))
    strip = bl_helpers.strips(blend)["Rel"]
    assert strip.filepath.startswith("//..") and os.path.isfile(bpy.path.abspath(strip.filepath))
    invariants = bl_helpers.Invariants(blend)
    new, _ = apply_ok(blend, strip, style, invariants, mix=0.0)
    assert bl_helpers.strip_files(new)[0].startswith(str(elsewhere / "gan_style"))

    copied = tmp_path / "copied by hand"
    copied.mkdir()
    shutil.copy(first_blend, copied / "copy.blend")
    bpy.ops.wm.open_mainfile(filepath=str(copied / "copy.blend"))
    scene = bpy.context.scene
    strip = bl_helpers.strips(scene)["Rel"]
    assert strip.filepath == "//media/clip.avi"
    invariants = bl_helpers.Invariants(scene, media=[path])
    apply_fails(scene, strip, style, invariants,
                "media file not found: " + str(copied / "media" / "clip.avi"))
