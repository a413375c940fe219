"""Jobs with a window: the operator returns at once, a timer polls the worker, Cancel works at
any moment. Headless there is no event loop, so the tests call the timer function themselves."""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def runner(window_runner):
    return window_runner


@pytest.fixture
def movie(blend, media):
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    return strip


def finish(runner, job, timeout=120):
    assert bl_helpers.wait_for(lambda: not job.active, timeout=timeout, tick=runner.tick), \
        f"job still running: {job.status}"


def frame_folders():
    root = os.path.join(os.path.dirname(bpy.data.filepath), "gan_style")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_apply_returns_at_once_and_adds_the_strip_when_done(runner, blend, movie, style):
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    job = runner.job_for(blend)
    assert job.active and job.pids
    assert bpy.app.timers.is_registered(runner.tick)
    assert bl_helpers.new_strips(blend, before) == []  # nothing until every frame exists
    finish(runner, job)
    assert job.state == runner.DONE, job.message
    assert job.fraction == 1.0
    (new,) = bl_helpers.new_strips(blend, before)
    assert new.frame_final_duration == movie.frame_final_duration
    assert all(bl_helpers.process_gone(pid) for pid in job.pids)


@pytest.mark.parametrize("when", ["at once", "after the worker started"])
def test_cancel_adds_nothing_and_leaves_no_process(runner, blend, movie, style, when):
    before = {s.name for s in bl_helpers.strips_all(blend)}
    bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0)
    job = runner.job_for(blend)
    if when != "at once":
        assert bl_helpers.wait_for(lambda: job.device or not job.active, tick=runner.tick)
    assert bpy.ops.sequencer.gan_style_cancel.poll()
    assert bpy.ops.sequencer.gan_style_cancel() == {'FINISHED'}
    assert not bpy.ops.sequencer.gan_style_cancel.poll()  # cancelling already
    finish(runner, job)
    if job.state == runner.DONE:
        pytest.fail("the job finished before the cancel: use a longer clip")
    assert job.state == runner.CANCELLED, job.message
    assert bl_helpers.new_strips(blend, before) == []
    for folder in frame_folders():  # kept only with finished frames (Apply resumes)
        names = os.listdir(os.path.join(os.path.dirname(bpy.data.filepath), "gan_style",
                                        folder))
        assert any(n.startswith("frame_") for n in names), names
    assert all(bl_helpers.process_gone(pid) for pid in job.pids)


def test_one_job_per_scene(runner, blend, movie, style):
    bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    job = runner.job_for(blend)
    folders = frame_folders()
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.sequencer.gan_style_train(name="busy", style_path="x.png", steps=1)
    assert frame_folders() == folders
    finish(runner, job)
    assert job.state == runner.DONE


def test_a_worker_that_ignores_cancel_is_terminated_then_killed(runner, worker, blend, movie,
                                                                 style, worker_python, tmp_path,
                                                                 monkeypatch):
    from conftest import WORKER_PYTHON
    stubborn = bl_helpers.write_fake_python(
        tmp_path, "stubborn-python",
        f'exec "{WORKER_PYTHON}" -c "import signal, time; '
        f'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"')
    worker_python(stubborn)
    monkeypatch.setattr(worker, "CANCEL_GRACE_S", 0.3)
    monkeypatch.setattr(worker, "TERMINATE_GRACE_S", 0.3)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    bpy.ops.sequencer.gan_style_apply(style=style)
    job = runner.job_for(blend)
    bpy.ops.sequencer.gan_style_cancel()
    finish(runner, job, timeout=20)
    assert job.state == runner.CANCELLED
    assert all(bl_helpers.process_gone(pid) for pid in job.pids)
    assert bl_helpers.new_strips(blend, before) == []


def test_loading_another_file_cancels_the_job(runner, blend, movie, style, addon):
    bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0)
    job = runner.job_for(blend)
    bpy.ops.wm.open_mainfile(filepath=addon.test_template)
    assert not job.active
    assert all(bl_helpers.process_gone(pid) for pid in job.pids)


def test_interactive_blender_keeps_a_core_background_blender_gives_them_all(
        runner, addon, blend, movie, style, monkeypatch):
    """With a window the worker leaves Blender a core; in background mode Blender only waits,
    so the worker takes every core (the job's device line says how many threads it got)."""
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    original, prefs.device = prefs.device, 'CPU'  # the thread count is what a CPU job reports
    try:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count())  # as gan.device.leave_cores_free counts them
        bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0)
        job = runner.job_for(blend)
        finish(runner, job)
        assert job.state == runner.DONE, job.message
        assert job.device.startswith("cpu ")
        assert job.device.endswith(f", {max(1, cores - 1)} thread" + ("s" if cores > 2 else ""))

        monkeypatch.setattr(runner, "FORCE_ASYNC", False)  # what `blender -b` does
        assert runner.blocking()
        bl_helpers.select_only(blend, movie)  # the result was selected; other settings: new frames
        assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.9) == {'FINISHED'}
        job = runner.job_for(blend)
        assert job.state == runner.DONE, job.message
        assert job.device.endswith(f", {cores} thread" + ("s" if cores > 1 else ""))
    finally:
        prefs.device = original
