"""A cancelled training keeps its checkpoint; training the same name again resumes it.

Not in the 4.2 LTS subset: it trains twice (the slowest Blender test), and its logic does not
depend on the Blender version.
"""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.slow


@pytest.fixture
def library(addon):
    return addon.vse.storage.library_dir()


def test_cancelled_training_keeps_its_checkpoint_and_training_again_resumes(
        addon, blend, media, library, monkeypatch):
    runner = addon.vse.scheduler
    library_module = addon.vse.library
    movie = bl_helpers.add_movie(blend, media.movie, "Footage", channel=1, frame_start=1)
    bl_helpers.select_only(blend, movie)
    monkeypatch.setattr(runner, "FORCE_ASYNC", True)
    assert bpy.ops.sequencer.gan_style_train(name="resumable", style_path=media.style_image,
                                             steps=100000) == {'FINISHED'}
    job = runner.job_for(blend)
    try:
        assert bl_helpers.wait_for(lambda: job.losses or not job.active, timeout=120,
                                   tick=runner.tick), "no training progress"
        bpy.ops.sequencer.gan_style_cancel()
        assert bl_helpers.wait_for(lambda: not job.active, timeout=120, tick=runner.tick)
    finally:
        runner.cancel_all()
        if bpy.app.timers.is_registered(runner.tick):
            bpy.app.timers.unregister(runner.tick)
    assert job.state == runner.CANCELLED
    assert all(bl_helpers.process_gone(pid) for pid in job.pids)
    assert not os.path.exists(os.path.join(library, "resumable.ganstyle"))
    checkpoint = library_module.unfinished_training(library, "resumable")
    assert checkpoint and "checkpoint" in job.message

    monkeypatch.setattr(runner, "FORCE_ASYNC", False)
    try:
        assert bpy.ops.sequencer.gan_style_train(name="resumable", style_path=media.style_image,
                                                 steps=job.checkpoint_step + 2) == {'FINISHED'}
        assert runner.job_for(blend).steps[0].job["resume"] is True
        assert os.path.isfile(os.path.join(library, "resumable.ganstyle"))
        assert not library_module.unfinished_training(library, "resumable")
    finally:
        bpy.ops.sequencer.gan_style_library_remove(name="resumable")
