"""Applying a style: new strips, exact frame mapping, nothing of the source touched."""

from __future__ import annotations

import os

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def apply(**options):
    return bpy.ops.sequencer.gan_style_apply(**options)


def output_images(strip) -> list[np.ndarray]:
    files = bl_helpers.strip_files(strip)
    images = [cv2.imread(f) for f in files]
    assert all(img is not None for img in images), "an output frame is missing or unreadable"
    return images


def test_mix_zero_reproduces_the_exact_source_frame_of_every_timeline_frame(blend, media, style):
    scene = blend
    movie = bl_helpers.add_movie(scene, media.movie, "Movie", channel=1, frame_start=5)
    movie.animation_offset_start = 2   # trimmed source
    movie.animation_offset_end = 1
    movie.frame_offset_start = 3       # trimmed handles
    movie.frame_offset_end = 2
    images = bl_helpers.add_images(scene, media.images, "Images", channel=2, frame_start=1)
    images.frame_offset_end = 2
    # Channel 3 is free over most of the movie's range but not at its end (frames 28-30).
    bl_helpers.add_effect(scene, "Blocker", 'COLOR', channel=3, frame_start=28, length=3)
    bl_helpers.select_only(scene, movie, images)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    states = {s.name: bl_helpers.strip_state(s) for s in (movie, images)}
    digests = {p: bl_helpers.file_digest(p) for p in [media.movie, *media.images]}

    assert apply(style=style, mix=0.0) == {'FINISHED'}

    created = {s["gan_style"]["source_strip"]: s for s in bl_helpers.new_strips(scene, before)}
    assert set(created) == {"Movie", "Images"}
    decoded = bl_helpers.movie_frames(media.movie)
    for source in (movie, images):
        new = created[source.name]
        assert new.type == 'IMAGE'
        assert style in new.name and source.name in new.name
        assert new.frame_final_start == source.frame_final_start
        assert new.frame_final_duration == source.frame_final_duration
        assert new.directory.startswith("//gan_style")  # beside the saved .blend
        props = new["gan_style"]
        assert props["mix"] == 0.0 and props["source_strip"] == source.name
        assert os.path.isfile(props["style_file"]) and props["style_file"].endswith(".ganstyle")
        outputs = output_images(new)
        assert len(outputs) == source.frame_final_duration
        for position, image in enumerate(outputs):
            t = source.frame_final_start + position
            if source == movie:
                expected = decoded[int(movie.animation_offset_start) + t - int(movie.frame_start)]
            else:
                expected = cv2.imread(media.images[t - int(images.frame_start)])
            assert np.array_equal(image, expected), f"{source.name}: timeline frame {t}"
    # The lowest channel above each source that is free over the strip's whole range.
    assert (movie.frame_final_start, movie.frame_final_end) == (8, 30)
    assert created["Movie"].channel == 4   # 2: Images at 8-10, 3: Blocker at 28-29
    assert created["Images"].channel == 3  # 3 is free over frames 1-10
    assert bl_helpers.state_changes(states, (movie, images)) == set()
    assert {p: bl_helpers.file_digest(p) for p in digests} == digests


def test_reversed_movie_over_a_frame_range_keeps_the_placement(blend, media, style):
    scene = blend
    movie = bl_helpers.add_movie(scene, media.movie, "Rev", channel=3, frame_start=1)
    movie.use_reverse_frames = True
    movie.transform.offset_x = 7
    movie.transform.scale_x = 1.5
    movie.crop.min_x = 2
    movie.use_flip_x = True
    bl_helpers.select_only(scene, movie)
    before = {s.name for s in bl_helpers.strips_all(scene)}

    assert apply(style=style, mix=0.0, use_frame_range=True, frame_start=10,
                 frame_end=14) == {'FINISHED'}

    (new,) = bl_helpers.new_strips(scene, before)
    assert (new.frame_final_start, new.frame_final_end) == (10, 15) and new.channel == 4
    assert (new.transform.offset_x, new.transform.scale_x, new.crop.min_x, new.use_flip_x) == (
        7, 1.5, 2, True)
    decoded = bl_helpers.movie_frames(media.movie)
    outputs = output_images(new)
    # Reversed: timeline frame t shows source frame (length - 1) - (t - frame_start).
    assert all(np.array_equal(img, decoded[29 - (t - 1)])
               for img, t in zip(outputs, range(10, 15)))


def test_full_style_gives_readable_frames_of_the_source_size(blend, media, style):
    scene = blend
    images = bl_helpers.add_images(scene, media.images, "Images", channel=1, frame_start=1)
    bl_helpers.select_only(scene, images)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    assert apply(style=style, mix=1.0) == {'FINISHED'}
    (new,) = bl_helpers.new_strips(scene, before)
    outputs = output_images(new)
    assert len(outputs) == bl_helpers.IMAGE_FRAMES
    assert all(img.shape == (bl_helpers.H, bl_helpers.W, 3) for img in outputs)


def test_strips_blender_must_draw_are_rendered_first(blend, media, style):
    scene = blend
    bl_helpers.add_movie(scene, media.movie, "Below", channel=1, frame_start=1)
    colour = bl_helpers.add_effect(scene, "Blue", 'COLOR', channel=2, frame_start=3, length=4)
    colour.color = (0.0, 0.0, 1.0)
    text = bl_helpers.add_effect(scene, "Title", 'TEXT', channel=3, frame_start=1, length=2)
    bl_helpers.select_only(scene, colour, text)
    before = {s.name for s in bl_helpers.strips_all(scene)}

    assert apply(style=style, mix=0.0) == {'FINISHED'}

    created = {s["gan_style"]["source_strip"]: s for s in bl_helpers.new_strips(scene, before)}
    assert created["Blue"]["gan_style"]["source_pixels"] == "RENDER"
    blue = output_images(created["Blue"])
    assert len(blue) == 4
    assert all((img[:, :, 0] == 255).all() and (img[:, :, 1:] == 0).all() for img in blue)
    assert created["Title"].frame_final_duration == 2
    assert created["Title"].transform.offset_x == 0


def test_applying_twice_never_overwrites(blend, media, style):
    scene = blend
    images = bl_helpers.add_images(scene, media.images[:3], "Short", channel=1, frame_start=1)
    bl_helpers.select_only(scene, images)
    assert apply(style=style, mix=0.0) == {'FINISHED'}
    before = {s.name for s in bl_helpers.strips_all(scene)}
    first = next(s for s in bl_helpers.strips_all(scene) if s.name != "Short")
    first_files = {f: bl_helpers.file_digest(f) for f in bl_helpers.strip_files(first)}
    bl_helpers.select_only(scene, images)
    assert apply(style=style, mix=1.0) == {'FINISHED'}
    (second,) = bl_helpers.new_strips(scene, before)
    assert second.channel == first.channel + 1
    assert second.directory != first.directory
    assert {f: bl_helpers.file_digest(f) for f in first_files} == first_files


def test_unsaved_file_writes_frames_to_the_data_folder(addon, blend, media, style):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    images = bl_helpers.add_images(scene, media.images[:2], "Unsaved", channel=1, frame_start=1)
    bl_helpers.select_only(scene, images)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    assert apply(style=style, mix=0.0) == {'FINISHED'}
    (new,) = bl_helpers.new_strips(scene, before)
    # the data folder outlives the extension: saved strips keep pointing to existing frames
    frames = os.path.join(os.environ["GAN_STYLE_DATA_DIR"], "frames") + os.sep
    assert os.path.abspath(new.directory).startswith(frames)
    assert len(output_images(new)) == 2
