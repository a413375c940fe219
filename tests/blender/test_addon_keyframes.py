"""Video-grade styles in Blender: painted keyframes, export-frame, temporal and stabilize options.

Real media made here with OpenCV (a 64x48 MJPG movie and a PNG sequence), the real extension
and real worker processes.
"""

from __future__ import annotations

import json
import os

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers
import test_addon_ui as ui_test  # the recording layout (module import: no tests collected)

FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An MJPG movie and a PNG sequence, every frame different."""
    folder = tmp_path_factory.mktemp("keyframe_media")
    movie = str(folder / "shot.avi")
    writer = cv2.VideoWriter(movie, cv2.VideoWriter_fourcc(*"MJPG"), bl_helpers.FPS,
                             (bl_helpers.W, bl_helpers.H))
    assert writer.isOpened(), "OpenCV cannot write MJPG"
    for i in range(FRAMES):
        writer.write(bl_helpers.coded_frame(i, seed=7))
    writer.release()
    images = []
    os.makedirs(folder / "seq")
    for i in range(FRAMES):
        path = str(folder / "seq" / f"seq_{i:04d}.png")
        cv2.imwrite(path, bl_helpers.coded_frame(i, seed=8))
        images.append(path)
    decoded = bl_helpers.movie_frames(movie)  # BGR, as OpenCV (and so the engine) decodes
    assert len(decoded) == FRAMES
    return {"folder": str(folder), "movie": movie, "images": images, "decoded": decoded}


def painted(folder, name: str, bgr: np.ndarray) -> str:
    """A 'painting' of a frame: its colours inverted and tinted."""
    path = os.path.join(str(folder), name)
    art = 255 - bgr
    art[:, :, 2] = np.maximum(art[:, :, 2], 180)
    assert cv2.imwrite(path, art)
    return path


def add_still(scene, path, name, channel, frame):
    strip = bl_helpers.add_images(scene, [path], name, channel=channel, frame_start=frame)
    assert strip.frame_final_duration == 1
    return strip


def keyframes_module(addon):
    return addon.vse.keyframes


def exported_strip(scene, before):
    (new,) = bl_helpers.new_strips(scene, before)
    assert new.type == 'IMAGE' and len(new.elements) == 1
    return new


# -- (a) export-frame writes the exact source frame ---------------------------------------------

@pytest.mark.lts
def test_export_frame_of_trimmed_movie_is_the_exact_source_frame(addon, blend, clip):
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=1, frame_start=5)
    movie.frame_offset_start = 2   # visible from timeline frame 7
    movie.frame_offset_end = 1
    bl_helpers.select_only(blend, movie)
    blend.frame_current = 10       # shows source frame 10 - 5 = 5
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_export_frame() == {'FINISHED'}

    new = exported_strip(blend, before)
    (path,) = bl_helpers.strip_files(new)
    assert path == os.path.join(os.path.dirname(bpy.data.filepath), "Shot_frame_000010.png")
    assert new.directory.startswith("//"), "beside the .blend: a relative path"
    written = cv2.imread(path)
    assert np.array_equal(written, clip["decoded"][5])
    assert not np.array_equal(written, clip["decoded"][4])
    # the new strip is a one-frame keyframe strip above the footage at the current frame
    assert (new.channel, new.frame_final_start, new.frame_final_duration) == (2, 10, 1)
    (found,) = keyframes_module(addon).find(blend, movie)
    assert (found.strip_name, found.frame, found.footage, found.painted) == (
        new.name, 5, os.path.normpath(clip["movie"]), path)
    assert blend.sequence_editor.active_strip == movie, "the footage stays active"

    # again at the same frame: a new file, the first one untouched, the next free channel
    digest = bl_helpers.file_digest(path)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_export_frame() == {'FINISHED'}
    again = exported_strip(blend, before)
    (second,) = bl_helpers.strip_files(again)
    assert second.endswith("Shot_frame_000010_2.png") and again.channel == 3
    assert bl_helpers.file_digest(path) == digest
    assert np.array_equal(cv2.imread(second), clip["decoded"][5])


def test_export_frame_of_image_strip_never_overwrites(addon, blend, clip):
    images = bl_helpers.add_images(blend, clip["images"], "Seq", channel=2, frame_start=1)
    images.frame_offset_start = 3
    bl_helpers.select_only(blend, images)
    blend.frame_current = 6  # element 5
    taken = os.path.join(os.path.dirname(bpy.data.filepath), "Seq_frame_000006.png")
    with open(taken, "wb") as handle:
        handle.write(b"not to be replaced")
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_export_frame(add_strip=False) == {'FINISHED'}
    assert {s.name for s in bl_helpers.strips_all(blend)} == before, "add_strip=False adds none"
    with open(taken, "rb") as handle:
        assert handle.read() == b"not to be replaced"
    written = taken.replace(".png", "_2.png")
    assert np.array_equal(cv2.imread(written), cv2.imread(clip["images"][5]))

    assert bpy.ops.sequencer.gan_style_export_frame() == {'FINISHED'}
    new = exported_strip(blend, before)
    assert bl_helpers.strip_files(new)[0].endswith("Seq_frame_000006_3.png")
    assert (new.channel, new.frame_final_start) == (3, 6)
    (found,) = keyframes_module(addon).find(blend, images)
    assert found.footage == [os.path.normpath(p) for p in clip["images"]] and found.frame == 5


def test_export_frame_refuses_what_it_cannot_export(addon, blend, clip):
    colour = bl_helpers.add_effect(blend, "Flat", 'COLOR', channel=1, frame_start=1, length=5)
    bl_helpers.select_only(blend, colour)
    assert not bpy.ops.sequencer.gan_style_export_frame.poll()
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=2, frame_start=1)
    bl_helpers.select_only(blend, movie)
    blend.frame_current = 40  # after the strip
    assert not bpy.ops.sequencer.gan_style_export_frame.poll()
    blend.frame_current = 3
    with pytest.raises(RuntimeError, match="Painted image not found"):
        bpy.ops.sequencer.gan_style_export_frame(filepath="//missing.png")
    lines = addon.ui.panels.keyframe_lines(blend, [colour, movie])
    assert any("'Flat' is a color strip: painted keyframes belong to movie and image strips"
               in text for text, _ in lines), lines


# -- (b) painted keyframe strips are discovered ------------------------------------------------

@pytest.mark.lts
def test_painted_keyframes_are_discovered_and_listed(addon, blend, clip, tmp_path):
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=1, frame_start=1)
    movie.frame_offset_start = 2   # visible 3 .. 10
    movie.frame_offset_end = 2
    art5 = painted(tmp_path, "paint_a.png", clip["decoded"][4])
    art8 = painted(tmp_path, "paint_b.png", clip["decoded"][7])
    # the user's painted file, added through the operator at the current frame
    bl_helpers.select_only(blend, movie)
    blend.frame_current = 5
    assert bpy.ops.sequencer.gan_style_export_frame(filepath=art5) == {'FINISHED'}
    add_still(blend, art8, "Key8", channel=4, frame=8)
    add_still(blend, art8, "Before", channel=2, frame=2)      # before the visible range
    add_still(blend, art8, "After", channel=2, frame=11)      # after it
    add_still(blend, art8, "Muted", channel=2, frame=9).mute = True
    keys = keyframes_module(addon).find(blend, movie)
    assert [(k.timeline_frame, k.frame, os.path.basename(k.painted)) for k in keys] == [
        (5, 4, "paint_a.png"), (8, 7, "paint_b.png")]
    assert keys[0].spec() == {"footage": os.path.normpath(clip["movie"]), "frame": 4,
                              "painted": art5}

    movie.use_reverse_frames = True  # the same mapping as stylizing: 11 - (t - 1)
    assert [k.frame for k in keyframes_module(addon).find(blend, movie)] == [7, 4]
    movie.use_reverse_frames = False

    lines = addon.ui.panels.keyframe_lines(blend, [movie])
    assert lines == [("Keyframes: 2 found: frame 5 (paint_a.png), frame 8 (paint_b.png)",
                      'KEYFRAME_HLT')]
    # the Train panel lists them (and the keyframe strips are not taken as content)
    added = next(s for s in bl_helpers.strips_all(blend) if s.name.startswith("paint_a"))
    bl_helpers.select_only(blend, movie, added, bl_helpers.strips(blend)["Key8"])
    texts = ui_test.texts(ui_test.draw(addon.ui.panels.SEQUENCER_PT_gan_style_train))
    assert "Content: 1 selected strips" in texts
    assert any(t.startswith("Keyframes: 2 found: frame 5 (paint_a.png)") for t in texts), texts

    os.remove(art8)
    lines = addon.ui.panels.keyframe_lines(blend, [movie])
    assert any(icon == 'ERROR' and "'Key8'" in text and "not found" in text
               for text, icon in lines), lines
    with pytest.raises(RuntimeError, match="Keyframe strip 'Key8'.*painted image not found"):
        bpy.ops.sequencer.gan_style_train(name="kf_missing", steps=1,
                                          content_strips=[{"name": "Shot"}])


# -- (c) training from painted keyframes alone ----------------------------------------------

def test_train_from_keyframes_alone(addon, blend, clip, tmp_path, runner):
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=1, frame_start=1)
    movie.frame_offset_start = 1   # trimmed: timeline frame t shows source frame t - 1
    art = painted(tmp_path, "key_3.png", clip["decoded"][3])
    art9 = painted(tmp_path, "key_9.png", clip["decoded"][9])
    add_still(blend, art, "K3", channel=2, frame=4)
    add_still(blend, art9, "K9", channel=3, frame=10)
    bl_helpers.select_only(blend, movie)
    result = bpy.ops.sequencer.gan_style_train(name="kf_keys_only", steps=bl_helpers.TRAIN_STEPS)
    assert result == {'FINISHED'}
    job = runner.job_for(blend).steps[0].job
    assert job["style"] == []
    assert job["temporal_weight"] == addon.gan.protocol.DEFAULT_TEMPORAL_WEIGHT
    footage = os.path.normpath(clip["movie"])
    assert job["keyframes"] == [{"footage": footage, "frame": 3, "painted": art},
                                {"footage": footage, "frame": 9, "painted": art9}]
    assert job["content"][0]["path"] == footage
    out = os.path.join(addon.vse.storage.library_dir(), "kf_keys_only.ganstyle")
    info = addon.gan.stylefile.read_style_info(out)
    assert info.meta["keyframes"] == 2 and info.meta["steps"] == bl_helpers.TRAIN_STEPS

    # use_keyframes=False: no style source left
    with pytest.raises(RuntimeError, match="Choose a style source"):
        bpy.ops.sequencer.gan_style_train(name="kf_off", steps=1, use_keyframes=False)


# -- (d, e) a single-image style trains and applies; stabilize reaches the worker --------------

@pytest.fixture(scope="module")
def image_style(addon, clip, tmp_path_factory) -> str:
    """A style trained through the operator from one PNG (no keyframes, temporal term off)."""
    bpy.ops.wm.open_mainfile(filepath=addon.test_template)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    movie = bl_helpers.add_movie(scene, clip["movie"], "Footage", channel=1, frame_start=1)
    bl_helpers.select_only(scene, movie)
    look = painted(tmp_path_factory.mktemp("look"), "look.png", clip["decoded"][0])
    result = bpy.ops.sequencer.gan_style_train(name="kf_single_image", style_path=look,
                                               steps=bl_helpers.TRAIN_STEPS, temporal_weight=0.0)
    assert result == {'FINISHED'}
    job = addon.vse.scheduler.job_for(scene).steps[0].job
    assert job["style"] == [{"path": look, "frames": None}] and job["keyframes"] == []
    assert job["temporal_weight"] == 0.0
    return os.path.join(addon.vse.storage.library_dir(), "kf_single_image.ganstyle")


def test_single_image_style_trains_and_applies(addon, blend, clip, image_style):
    info = addon.gan.stylefile.read_style_info(image_style)
    assert info.meta["keyframes"] == 0 and "look.png" in json.dumps(info.meta["sources"])
    images = bl_helpers.add_images(blend, clip["images"][:4], "Seq", channel=1, frame_start=1)
    bl_helpers.select_only(blend, images)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style="kf_single_image") == {'FINISHED'}
    (new,) = bl_helpers.new_strips(blend, before)
    files = bl_helpers.strip_files(new)
    assert len(files) == 4 and all(cv2.imread(f).shape == (48, 64, 3) for f in files)
    # Apply stabilizes by default
    assert new["gan_style"]["stabilize"] == addon.gan.protocol.DEFAULT_STABILIZE > 0


def test_apply_with_stabilize_reaches_the_worker(addon, blend, clip, image_style, runner):
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=1, frame_start=1)
    movie.frame_offset_end = 6
    bl_helpers.select_only(blend, movie)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style="kf_single_image", stabilize=0.75) == \
        {'FINISHED'}
    assert runner.job_for(blend).steps[0].job["stabilize"] == 0.75
    (new,) = bl_helpers.new_strips(blend, before)
    assert (new.frame_final_start, new.frame_final_duration, new.channel) == (1, 6, 2)
    record = new["gan_style"]
    assert record["stabilize"] == 0.75 and json.loads(record["settings"])["stabilize"] == 0.75
    assert len(bl_helpers.strip_files(new)) == 6

    # the same from Blender's command line (`blender -c gan_style apply ... --stabilize S`)
    bpy.ops.wm.save_mainfile()
    code = addon.ui.cli.main(["apply", bpy.data.filepath, "--style", "kf_single_image",
                                     "--strip", "Shot", "--stabilize", "0.25", "--no-save"])
    assert code == 0
    assert runner.job_for(bpy.context.scene).steps[0].job["stabilize"] == 0.25


def test_stroke_scale_reaches_the_worker_and_the_strip(addon, blend, clip, image_style, runner):
    """Stroke Scale from the panel's settings, the operator and `blender -c gan_style apply`
    reaches the stylize job, and the new strip records it; frames keep the source's size."""
    movie = bl_helpers.add_movie(blend, clip["movie"], "Shot", channel=1, frame_start=1)
    movie.frame_offset_end = 8
    bl_helpers.select_only(blend, movie)
    blend.gan_style.stroke_scale = 2.0
    assert blend.gan_style.stroke_scale == 2.0
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style="kf_single_image",
                                             stroke_scale=blend.gan_style.stroke_scale) == \
        {'FINISHED'}
    assert runner.job_for(blend).steps[0].job["stroke_scale"] == 2.0
    (new,) = bl_helpers.new_strips(blend, before)
    record = new["gan_style"]
    assert record["stroke_scale"] == 2.0 and json.loads(record["settings"])["stroke_scale"] == 2.0
    files = bl_helpers.strip_files(new)
    assert len(files) == 4 and all(cv2.imread(f).shape[:2] == (48, 64) for f in files)

    bpy.ops.wm.save_mainfile()
    code = addon.ui.cli.main(["apply", bpy.data.filepath, "--style", "kf_single_image",
                                     "--strip", "Shot", "--stroke-scale", "0.5", "--no-save"])
    assert code == 0
    assert runner.job_for(bpy.context.scene).steps[0].job["stroke_scale"] == 0.5


def test_train_stroke_scale_and_learn_strokes_reach_the_worker(addon, blend, clip, tmp_path,
                                                               runner):
    movie = bl_helpers.add_movie(blend, clip["movie"], "Footage", channel=1, frame_start=1)
    bl_helpers.select_only(blend, movie)
    look = painted(tmp_path, "look.png", clip["decoded"][0])
    assert bpy.ops.sequencer.gan_style_train(name="kf_scaled", style_path=look, steps=2,
                                             temporal_weight=0.0, stroke_scale=1.5,
                                             use_keyframes=False) == {'FINISHED'}
    job = runner.job_for(blend).steps[0].job
    assert job["stroke_scale"] == 1.5 and job["auto_keyframes"] is None  # the engine decides

    blend.gan_style.train_name = "kf_scaled_panel"
    blend.gan_style.train_style_path = look
    blend.gan_style.train_minutes = 0.05
    blend.gan_style.train_stroke_scale = 0.75
    blend.gan_style.train_temporal_weight = 0.0
    blend.gan_style.train_learn_strokes = False
    assert bpy.ops.sequencer.gan_style_train(use_scene_settings=True) == {'FINISHED'}
    job = runner.job_for(blend).steps[0].job
    assert job["stroke_scale"] == 0.75 and job["auto_keyframes"] == 0
