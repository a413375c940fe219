"""Paths from any OS: a .blend saved on Windows (backslashes, drive letters) resolves on Linux."""

from __future__ import annotations

import os
import shutil

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.mark.parametrize("path, windows, expected", [
    ("//..\\clips\\a.mp4", False, "/work/clips/a.mp4"),
    ("//..\\clips\\/a.mp4", False, "/work/clips/a.mp4"),    # Blender's own dir + file join
    ("//gan_style\\Shot_Sepia\\", False, "/work/edit/gan_style/Shot_Sepia"),
    ("//../clips/a.mp4", False, "/work/clips/a.mp4"),
    ("/media/clips/../a.mp4", False, "/media/a.mp4"),
    ("C:\\media\\a.mp4", False, "/c/media/a.mp4"),              # as Blender maps it on Linux
    ("d:/media/a.mp4", False, "/d/media/a.mp4"),
    ("//..\\clips\\a.mp4", True, "C:\\work\\clips\\a.mp4"),
    ("//../clips/a.mp4", True, "C:\\work\\clips\\a.mp4"),
    ("C:/media/../a.mp4", True, "C:\\a.mp4"),
    ("\\\\server\\share\\a.mp4", True, "\\\\server\\share\\a.mp4"),
])
def test_resolve_path_follows_blenders_rules_on_either_system(addon, path, windows, expected):
    blend_dir = "C:\\work\\edit" if windows else "/work/edit"
    assert addon.vse.storage.resolve_path(path, blend_dir, windows=windows) == expected


def _windows_style(path: str) -> str:
    """`path` as a .blend saved on Windows keeps it: `//`-relative with backslashes."""
    relative = os.path.relpath(path, os.path.dirname(bpy.data.filepath))
    return "//" + relative.replace("/", "\\")


def test_a_blend_saved_on_windows_applies_on_linux(addon, blend, media, style, tmp_path):
    scene = blend
    # The media one folder up from the .blend, as `//..\clips\...` paths reach it.
    clips = tmp_path.parent / (tmp_path.name + "_clips")
    clips.mkdir()
    movie_path = shutil.copy(media.movie, str(clips / "clip.avi"))
    (clips / "seq").mkdir()
    images = [shutil.copy(p, str(clips / "seq" / os.path.basename(p))) for p in media.images[:5]]

    movie = bl_helpers.add_movie(scene, movie_path, "Movie", channel=1, frame_start=1)
    movie.frame_offset_end = 20
    movie.filepath = _windows_style(movie_path)
    strip = bl_helpers.add_images(scene, images, "Images", channel=2, frame_start=20)
    strip.directory = _windows_style(str(clips / "seq")) + "\\"
    assert "\\" in movie.filepath and "\\" in strip.directory
    # The plain `bpy.path.abspath` names no file: this is what used to fail.
    assert not os.path.isfile(bpy.path.abspath(movie.filepath))
    bpy.ops.wm.save_mainfile()
    bl_helpers.select_only(scene, movie, strip)
    before = {s.name for s in bl_helpers.strips_all(scene)}

    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}

    created = {s["gan_style"]["source_strip"]: s for s in bl_helpers.new_strips(scene, before)}
    assert set(created) == {"Movie", "Images"}
    decoded = bl_helpers.movie_frames(movie_path)
    expected = {"Movie": decoded[:movie.frame_final_duration],
                "Images": [cv2.imread(p) for p in images]}
    for name, frames in expected.items():
        outputs = [cv2.imread(f) for f in bl_helpers.strip_files(created[name])]
        assert len(outputs) == len(frames)
        for position, (got, want) in enumerate(zip(outputs, frames)):
            assert np.array_equal(got, want), f"{name}: frame {position}"

    # A stylized strip saved on Windows (`//gan_style\...\`) is a source like any other.
    made = created["Images"]
    assert made.directory.startswith("//")
    made.directory = "//" + made.directory[2:].rstrip("/").replace("/", "\\") + "\\"
    bl_helpers.select_only(scene, made)
    before = {s.name for s in bl_helpers.strips_all(scene)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0,
                                             include_stylized=True) == {'FINISHED'}
    again = bl_helpers.new_strips(scene, before)
    assert len(again) == 1
    outputs = [cv2.imread(f) for f in bl_helpers.strip_files(again[0])]
    assert all(np.array_equal(got, want) for got, want in zip(outputs, expected["Images"]))
    assert len(outputs) == len(images)
