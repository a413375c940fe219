"""Training through the operator: into the library, from strips of any kind."""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def library(addon):
    return addon.vse.storage.library_dir()


def test_trained_style_is_in_the_library_and_applies(addon, trained_style, library, blend,
                                                     media):
    entry = addon.vse.library.read_entry(trained_style)
    assert not entry.error
    assert (entry.title, entry.preset, entry.steps) == ("tiny", "draft", bl_helpers.TRAIN_STEPS)
    assert entry.thumbnail_png and entry.created
    assert "style.png" in entry.sources  # the file; the colour strip was rendered to frames
    assert not os.path.exists(addon.vse.storage.training_dir(library, "tiny"))
    bpy.ops.sequencer.gan_style_library_refresh()
    assert "tiny" in {i.name for i in bpy.context.window_manager.gan_style_library}

    images = bl_helpers.add_images(blend, media.images[:3], "Shot", channel=1, frame_start=1)
    bl_helpers.select_only(blend, images)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style="tiny") == {'FINISHED'}
    (new,) = bl_helpers.new_strips(blend, before)
    assert new["gan_style"]["style_name"] == "tiny"
    assert len(bl_helpers.strip_files(new)) == 3


def test_a_worker_never_joins_a_process_group_of_blenders_environment(addon, blend, media,
                                                                      library, monkeypatch):
    """Blender started by torchrun (or a farm wrapper) carries RANK, WORLD_SIZE...: a worker
    that read them would try to join that group. A rank outside its group makes such a worker
    fail at once, so this fails fast instead of waiting for a group that never forms."""
    for name, value in (("RANK", "3"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "3"),
                        ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "9")):
        monkeypatch.setenv(name, value)
    shot = bl_helpers.add_images(blend, media.images[:3], "Shot", channel=1, frame_start=1)
    bl_helpers.select_only(blend, shot)
    assert bpy.ops.sequencer.gan_style_train(
        name="alone", style_path=media.style_image, content_strips=[{"name": "Shot"}],
        steps=bl_helpers.TRAIN_STEPS, learn_strokes=False) == {'FINISHED'}
    entry = addon.vse.library.read_entry(os.path.join(library, "alone.ganstyle"))
    assert not entry.error and entry.steps == bl_helpers.TRAIN_STEPS
