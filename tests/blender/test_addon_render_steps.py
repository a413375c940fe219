"""Strips that Blender must draw (scene, meta, effect strips) are rendered one frame per timer
tick with progress and Cancel, so the interface stays responsive; headless, the operator
blocks and prints progress lines."""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def scene_strip(blend):
    """A scene strip showing another scene's sequencer (a red colour strip)."""
    other = bpy.data.scenes.new("Inner")
    other.sequence_editor_create()
    other.render.resolution_x, other.render.resolution_y = bl_helpers.W, bl_helpers.H
    red = bl_helpers.add_effect(other, "Red", 'COLOR', channel=1, frame_start=1, length=20)
    red.color = (1.0, 0.0, 0.0)
    strip = bl_helpers.strips(blend).new_scene(name="Shot", scene=other, channel=1,
                                               frame_start=1)
    strip.scene_input = 'SEQUENCER'
    strip.frame_final_duration = 6
    strip.strobe = max(strip.strobe, 1.0)  # 4.2 creates strips with 0 and sets 1 when drawing
    bl_helpers.select_only(blend, strip)
    return strip


def rendered_files(job):
    folders = [os.path.join(job.work_dir, n) for n in os.listdir(job.work_dir)
               if n.startswith("render_")] if os.path.isdir(job.work_dir) else []
    return sorted(f for folder in folders for f in os.listdir(folder))


def test_a_scene_strip_is_rendered_one_frame_per_tick_and_cancels_between_frames(
        window_runner, blend, style):
    runner = window_runner
    strip = scene_strip(blend)
    state = bl_helpers.strip_state(strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    job = runner.job_for(blend)
    assert job.active and rendered_files(job) == []  # the operator returned before rendering
    assert job.status.startswith("Rendering 'Shot'")
    for ticks in (1, 2, 3):
        runner.tick()  # what the timer does between two redraws of the interface
        assert len(rendered_files(job)) == ticks
        assert job.status.startswith(f"Rendering 'Shot' (scene strip): {ticks}/6 frames")
        assert 0 < job.fraction < 0.5
    assert bpy.ops.sequencer.gan_style_cancel() == {'FINISHED'}
    runner.tick()
    assert job.state == runner.CANCELLED
    assert not os.path.exists(job.work_dir)  # the renders went with the job
    assert bl_helpers.new_strips(blend, before) == []
    assert bl_helpers.strip_state(strip) == state
    assert not strip.mute and blend.frame_current == 1

    bl_helpers.select_only(blend, strip)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    job = runner.job_for(blend)
    assert bl_helpers.wait_for(lambda: not job.active, timeout=120, tick=runner.tick)
    assert job.state == runner.DONE, job.message
    (new,) = bl_helpers.new_strips(blend, before)
    assert new.frame_final_duration == 6 and new["gan_style"]["source_pixels"] == "RENDER"


def test_headless_the_render_blocks_and_prints_progress(blend, style, capsys):
    colour = bl_helpers.add_effect(blend, "Blue", 'COLOR', channel=1, frame_start=1, length=4)
    colour.color = (0.0, 0.0, 1.0)
    bl_helpers.select_only(blend, colour)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    out = capsys.readouterr().out
    assert "Rendering 'Blue' (color strip): 4 frames" in out
    assert "done: Added 'Blue [tiny]'" in out
    (new,) = bl_helpers.new_strips(blend, before)
    assert new.frame_final_duration == 4
