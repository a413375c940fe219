"""Editor habits: the operators in the Strip menu (F3 finds them), Re-apply with changed
settings, results selected, jobs in the status bar. (What needs a window - invoke from the menu
taking the panel's settings, Esc - cannot run in the bpy module: it has no event loop.)"""

from __future__ import annotations

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def drawn_by(menu_type) -> list[str]:
    return [f.__name__ for f in getattr(menu_type.draw, "_draw_funcs", [])]


def test_the_operators_are_in_the_strip_menu_and_jobs_in_the_status_bar(addon):
    assert "draw_strip_menu" in drawn_by(bpy.types.SEQUENCER_MT_strip)
    assert "draw_status_bar" in drawn_by(bpy.types.STATUSBAR_HT_header)
    for name in ("preview", "apply", "reapply", "cancel"):
        operator = getattr(bpy.types, f"SEQUENCER_OT_gan_style_{name}")
        assert operator.__doc__ and "INTERNAL" not in operator.bl_options  # F3 lists it


def test_reapply_runs_the_source_again_with_new_settings_into_a_new_strip(runner, blend, media,
                                                                           style):
    strip = bl_helpers.add_movie(blend, media.movie, "Clip", channel=1, frame_start=1)
    strip.frame_offset_start, strip.frame_offset_end = 2, 20
    bl_helpers.select_only(blend, strip)
    assert not bpy.ops.sequencer.gan_style_reapply.poll()  # the source is not stylized
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    (first,) = bl_helpers.new_strips(blend, before)
    assert blend.sequence_editor.active_strip == first
    assert bpy.ops.sequencer.gan_style_reapply.poll()
    assert bpy.ops.sequencer.gan_style_reapply(style=style, mix=0.6, stabilize=0.3) == {'FINISHED'}
    (second,) = bl_helpers.new_strips(blend, before | {first.name})
    record = second["gan_style"]
    assert record["source_strip"] == "Clip"
    assert (round(record["mix"], 5), round(record["stabilize"], 5)) == (0.6, 0.3)
    assert (second.frame_final_start, second.frame_final_duration) == (
        first.frame_final_start, first.frame_final_duration)
    assert second.directory != first.directory
    assert blend.sequence_editor.active_strip == second and not first.select
    strip.name = "Renamed"
    with pytest.raises(RuntimeError, match="The source strip 'Clip' of this stylized strip is "
                                           "gone"):
        bpy.ops.sequencer.gan_style_reapply(style=style)
