"""Bad input gives one clear message (an ERROR report) and adds nothing."""

from __future__ import annotations

import os
import shutil

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def output_root():
    return os.path.join(os.path.dirname(bpy.data.filepath), "gan_style")


def output_folders():
    root = output_root()
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def expect_failure(match, **options):
    """The operator raises (ERROR report -> RuntimeError) and the timeline is unchanged."""
    scene = bpy.context.scene
    before = {s.name for s in bl_helpers.strips_all(scene)}
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.sequencer.gan_style_apply(**options)
    assert {s.name for s in bl_helpers.strips_all(scene)} == before, "a strip was added"
    assert output_folders() == [], "a frame folder was left behind"


@pytest.fixture
def images_strip(blend, media):
    strip = bl_helpers.add_images(blend, media.images[:3], "Images", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    return strip


def test_nothing_selected(blend, media, style):
    bl_helpers.add_images(blend, media.images[:3], "Images", channel=1, frame_start=1)
    bl_helpers.select_only(blend)
    blend.sequence_editor.active_strip = None
    expect_failure("Select a visual strip", style=style)


def test_missing_media(blend, media, style, tmp_path):
    moved = shutil.copy(media.movie, tmp_path / "gone.avi")
    strip = bl_helpers.add_movie(blend, str(moved), "Gone", channel=1, frame_start=1)
    os.unlink(moved)
    bl_helpers.select_only(blend, strip)
    expect_failure("media file not found: .*gone.avi", style=style)


def test_unknown_style(images_strip):
    expect_failure("No style named 'nope'", style="nope")


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:len(data) // 2], "truncated"),
    (lambda data: b"", "empty"),
    (lambda data: b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}        ", "not a style file"),
])
def test_corrupted_style_file(images_strip, style, addon, tmp_path, damage, reason):
    library = addon.vse.storage.library_dir()
    with open(os.path.join(library, style + ".ganstyle"), "rb") as handle:
        data = handle.read()
    broken = tmp_path / "broken.ganstyle"
    broken.write_bytes(damage(data))
    expect_failure(reason, style=str(broken))


def test_worker_crash(images_strip, style, worker_python, tmp_path):
    crash = bl_helpers.write_fake_python(
        tmp_path, "crashing-python",
        'echo \'{"event": "start", "kind": "stylize", "total": 3}\'\n'
        'echo "Fatal Python error: Segmentation fault" >&2\n'
        'kill -SEGV $$')
    worker_python(crash)
    expect_failure(r"stopped unexpectedly \(signal SIGSEGV\): Fatal Python error", style=style)


def test_worker_python_without_torch(images_strip, style, worker_python, tmp_path):
    from conftest import WORKER_PYTHON
    worker_python(bl_helpers.python_without_torch(tmp_path, WORKER_PYTHON))
    expect_failure(r"lacks the module 'torch'.*pip install \"torch\"", style=style)


def test_worker_python_not_found(images_strip, style, worker_python, tmp_path):
    worker_python(str(tmp_path / "no-python-here"))
    expect_failure("Cannot start the worker Python", style=style)


def test_training_needs_sources_and_a_free_name(blend, media, style):
    strip = bl_helpers.add_images(blend, media.images[:3], "Images", channel=1, frame_start=1)
    bl_helpers.select_only(blend)
    with pytest.raises(RuntimeError, match="Choose a style source"):
        bpy.ops.sequencer.gan_style_train(name="x", steps=1)
    with pytest.raises(RuntimeError, match="Select the content strips"):
        bpy.ops.sequencer.gan_style_train(name="x", style_path=media.style_image, steps=1)
    with pytest.raises(RuntimeError, match="exists already"):
        bpy.ops.sequencer.gan_style_train(name=style, style_path=media.style_image,
                                          content_strips=[{"name": strip.name}], steps=1)
    with pytest.raises(RuntimeError, match="No strip named 'nope'"):
        bpy.ops.sequencer.gan_style_train(name="x", style_strips=[{"name": "nope"}],
                                          content_strips=[{"name": strip.name}], steps=1)
    with pytest.raises(RuntimeError, match="cannot be a style name"):
        bpy.ops.sequencer.gan_style_train(name="../evil", style_path=media.style_image,
                                          content_strips=[{"name": strip.name}], steps=1)
