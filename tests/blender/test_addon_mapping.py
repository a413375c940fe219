"""Timeline frame -> source frame, checked against what Blender itself draws.

The add-on's own `render_strip` renders the strip alone with the 'Standard' view transform; the
media are lossless (FFV1, PNG), so Blender's render of a timeline frame equals the decoded
source frame the mapping names exactly, and differs from every other frame.
"""

from __future__ import annotations

import os

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def mapping(addon):
    return addon.vse.strip_source


def rendered(mapping, scene, strip, tmp_path, start=None, end=None):
    start = strip.frame_final_start if start is None else start
    end = strip.frame_final_end if end is None else end
    folder = tmp_path / f"render_{strip.name}"
    folder.mkdir()
    files = mapping.render_strip(scene, strip, start, end, str(folder))
    return [cv2.imread(f) for f in files]


def check_against_render(mapping, scene, strip, tmp_path):
    """The plan's source frame of every timeline frame is what Blender draws there."""
    plan = mapping.plan(scene, strip)
    assert plan.method in ("MOVIE", "IMAGE")
    assert plan.count == strip.frame_final_duration
    if plan.method == "MOVIE":
        decoded = bl_helpers.movie_frames(plan.path)
    else:
        decoded = [cv2.imread(p) for p in plan.path]
    renders = rendered(mapping, scene, strip, tmp_path)
    for position, image in enumerate(renders):
        expected = decoded[plan.frames[position]]
        assert np.array_equal(image, expected), (
            f"timeline frame {plan.start + position}: Blender shows another source frame than "
            f"{plan.frames[position]}")
    return plan


@pytest.mark.parametrize("reverse", [False, True])
def test_movie_with_trims_and_offsets(mapping, blend, media, tmp_path, reverse):
    scene = blend
    strip = bl_helpers.add_movie(scene, media.movie, "Movie", channel=2, frame_start=7)
    strip.animation_offset_start = 3   # source trim
    strip.animation_offset_end = 2
    strip.frame_offset_start = 4       # handles
    strip.frame_offset_end = 5
    strip.use_reverse_frames = reverse
    plan = check_against_render(mapping, scene, strip, tmp_path)
    assert plan.path == os.path.normpath(media.movie)
    assert plan.start == 11 and plan.end == 7 + 25 - 5
    first = 23 if reverse else 7
    assert plan.frames[0] == first
    step = -1 if reverse else 1
    assert plan.frames == list(range(first, first + step * plan.count, step))


def test_movie_held_frames_repeat_the_ends(mapping, blend, media, tmp_path):
    scene = blend
    strip = bl_helpers.add_movie(scene, media.movie, "Held", channel=1, frame_start=10)
    strip.frame_offset_start = -3  # holds the first frame for three frames
    plan = check_against_render(mapping, scene, strip, tmp_path)
    assert plan.frames[:4] == [0, 0, 0, 0]


@pytest.mark.parametrize("reverse", [False, True])
def test_image_sequence_with_trims(mapping, blend, media, tmp_path, reverse):
    scene = blend
    strip = bl_helpers.add_images(scene, media.images, "Images", channel=1, frame_start=3)
    strip.frame_offset_start = 2
    strip.frame_offset_end = 3
    strip.use_reverse_frames = reverse
    plan = check_against_render(mapping, scene, strip, tmp_path)
    shown = [os.path.basename(plan.path[i]) for i in plan.frames]
    # Timeline frames 5..11 show content positions 2..8; reversed, position p shows 11 - p.
    indices = [11 - p for p in range(2, 9)] if reverse else list(range(2, 9))
    assert shown == [f"img_{i:04d}.png" for i in indices]


def test_relative_media_paths_are_resolved(mapping, blend, media):
    scene = blend
    relative = bpy.path.relpath(media.movie)
    assert relative.startswith("//")
    strip = bl_helpers.add_movie(scene, relative, "Rel", channel=1, frame_start=1)
    plan = mapping.plan(scene, strip)
    assert plan.path == os.path.normpath(media.movie) and os.path.isabs(plan.path)


def test_other_strips_are_rendered_and_settings_restored(mapping, blend, media, tmp_path):
    scene = blend
    bl_helpers.add_movie(scene, media.movie, "Below", channel=1, frame_start=1)
    colour = bl_helpers.add_effect(scene, "Red", 'COLOR', channel=2, frame_start=5, length=4)
    colour.color = (1.0, 0.0, 0.0)
    text = bl_helpers.add_effect(scene, "Text", 'TEXT', channel=3, frame_start=1, length=3)
    retimed = bl_helpers.add_movie(scene, media.movie, "Fast", channel=4, frame_start=1)
    before = {s.name: bl_helpers.strip_state(s) for s in bl_helpers.strips_all(scene)}
    settings = (scene.view_settings.view_transform, scene.render.filepath,
                scene.render.image_settings.file_format, scene.frame_current)

    assert mapping.plan(scene, colour).method == "RENDER"
    assert mapping.plan(scene, text).method == "RENDER"
    assert mapping.render_reason(scene, retimed) == ""
    retimed.strobe = 2.0
    assert mapping.render_reason(scene, retimed) == "strobe"
    retimed.strobe = 1.0
    before[retimed.name] = bl_helpers.strip_state(retimed)

    images = rendered(mapping, scene, colour, tmp_path)
    assert len(images) == 4
    for image in images:  # the colour strip alone: pure red, the movie below muted
        assert (image[:, :, 2] == 255).all() and (image[:, :, :2] == 0).all()
    assert bl_helpers.state_changes(before, bl_helpers.strips_all(scene)) == set()
    assert (scene.view_settings.view_transform, scene.render.filepath,
            scene.render.image_settings.file_format, scene.frame_current) == settings


def test_meta_strip_is_rendered_with_its_contents(mapping, blend, media, tmp_path):
    scene = blend
    inner = bl_helpers.add_effect(scene, "Green", 'COLOR', channel=1, frame_start=1, length=3)
    inner.color = (0.0, 1.0, 0.0)
    meta = bl_helpers.strips(scene).new_meta(name="Meta", channel=2, frame_start=1)
    inner.move_to_meta(meta)
    meta.frame_final_duration = 3  # the API does not grow a meta strip to its contents
    assert mapping.plan(scene, meta).method == "RENDER"
    images = rendered(mapping, scene, meta, tmp_path)
    assert len(images) == meta.frame_final_duration == 3
    assert all((img[:, :, 1] == 255).all() and (img[:, :, [0, 2]] == 0).all() for img in images)


def test_sound_strips_have_no_pixels(addon, mapping, blend):
    sound = type("SoundLike", (), {"type": "SOUND", "name": "Music"})()
    with pytest.raises(addon.vse.errors.UserError, match="'Music' has no picture"):
        mapping.plan(blend, sound)
