"""Preview Frame: the current frame stylized on a worker that stays alive between previews."""

from __future__ import annotations

import os

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def images(blend, media):
    strip = bl_helpers.add_images(blend, media.images, "Images", channel=1, frame_start=3)
    bl_helpers.select_only(blend, strip)
    return strip


@pytest.fixture
def no_server(worker):
    worker.stop_server()
    yield
    worker.stop_server()


def preview_image() -> np.ndarray:
    image = bpy.data.images["GAN Style Preview"]
    path = bpy.path.abspath(image.filepath)
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert pixels is not None, path
    assert tuple(image.size) == (pixels.shape[1], pixels.shape[0])
    return pixels


def test_two_previews_share_one_worker_and_add_nothing(worker, no_server, blend, media, images,
                                                       style):
    before = {s.name for s in bl_helpers.strips_all(blend)}
    blend.frame_set(7)  # image index 4 of the strip
    assert bpy.ops.sequencer.gan_style_preview(style=style, mix=0.0) == {'FINISHED'}
    first = worker.server_pid()
    assert first is not None
    assert np.array_equal(preview_image(), cv2.imread(media.images[4]))  # mix 0: the source
    blend.frame_set(8)
    assert bpy.ops.sequencer.gan_style_preview(style=style, mix=1.0) == {'FINISHED'}
    assert worker.server_pid() == first  # the same process, the model kept loaded
    styled = preview_image()
    assert styled.shape == cv2.imread(media.images[5]).shape
    assert not np.array_equal(styled, cv2.imread(media.images[5]))
    assert bl_helpers.new_strips(blend, before) == []
    assert not os.path.isdir(bl_helpers.output_root())  # nothing beside the .blend either


def test_the_preview_worker_ends_when_idle_and_a_new_one_starts(worker, no_server, blend, images,
                                                               style, monkeypatch):
    monkeypatch.setattr(worker, "PREVIEW_IDLE_S", 0.5)
    blend.frame_set(3)
    assert bpy.ops.sequencer.gan_style_preview(style=style) == {'FINISHED'}
    pid = worker.server_pid()
    assert bl_helpers.wait_for(lambda: bl_helpers.process_gone(pid), timeout=30)
    assert bl_helpers.wait_for(lambda: worker.server_pid() is None, timeout=5)
    assert bpy.ops.sequencer.gan_style_preview(style=style) == {'FINISHED'}
    assert worker.server_pid() not in (None, pid)


def test_disabling_the_add_on_or_loading_a_file_ends_the_preview_worker(
        addon, worker, no_server, blend, images, style):
    import addon_utils
    blend.frame_set(4)
    assert bpy.ops.sequencer.gan_style_preview(style=style) == {'FINISHED'}
    pid = worker.server_pid()
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    chosen = (prefs.python_path, prefs.device)
    addon_utils.disable(addon.__name__, default_set=True)
    try:
        assert bl_helpers.wait_for(lambda: bl_helpers.process_gone(pid), timeout=10)
    finally:
        addon_utils.enable(addon.__name__, default_set=True)
        prefs = bpy.context.preferences.addons[addon.__name__].preferences
        prefs.python_path, prefs.device = chosen
    scene = bpy.context.scene
    scene.frame_set(4)
    assert bpy.ops.sequencer.gan_style_preview(style=style) == {'FINISHED'}
    pid = worker.server_pid()
    bpy.ops.wm.open_mainfile(filepath=addon.test_template)  # load_pre
    assert bl_helpers.wait_for(lambda: bl_helpers.process_gone(pid), timeout=10)


def test_preview_outside_the_strip_says_where_it_is(blend, images, style):
    blend.frame_set(1)
    with pytest.raises(RuntimeError, match=r"Frame 1 is not in strip 'Images' \(frames 3-14\)"):
        bpy.ops.sequencer.gan_style_preview(style=style)


def test_preview_with_a_window_runs_on_the_timer(window_runner, worker, no_server, blend, images,
                                                 style):
    runner = window_runner
    blend.frame_set(5)
    assert bpy.ops.sequencer.gan_style_preview(style=style) == {'FINISHED'}
    job = runner.job_for(blend)
    assert job.kind == "preview" and job.active
    assert bl_helpers.wait_for(lambda: not job.active, timeout=120, tick=runner.tick)
    assert job.state == runner.DONE, job.message
    assert "GAN Style Preview" in job.message
    assert worker.server_pid() == job.pids[0]  # still alive for the next preview


BLENDER_QUITS = """
import sys, bpy, addon_utils
module = "bl_ext.user_default.gan_style"
addon_utils.enable(module, default_set=True)
prefs = bpy.context.preferences.addons[module].preferences
prefs.python_path, prefs.device = sys.argv[1], 'CPU'
bpy.ops.wm.open_mainfile(filepath=sys.argv[2])
bpy.context.scene.frame_set(5)
bpy.ops.sequencer.gan_style_preview(style=sys.argv[3])
print("SERVER", sys.modules[module].vse.worker.server_pid(), flush=True)
"""


def test_the_preview_worker_ends_when_blender_quits(blend, images, style):
    from conftest import WORKER_PYTHON
    bpy.ops.wm.save_mainfile()
    ended = bl_helpers.run_python(BLENDER_QUITS, WORKER_PYTHON, bpy.data.filepath, style)
    assert ended.returncode == 0, ended.stderr[-1500:]
    pid = int(ended.stdout.split("SERVER ")[1].split()[0])
    assert bl_helpers.wait_for(lambda: bl_helpers.process_gone(pid), timeout=30), \
        f"preview worker {pid} outlived Blender"
