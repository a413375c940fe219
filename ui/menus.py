"""The style operators in the Sequencer's Strip menu (and so in F3 search), and running style
jobs in the status bar with their progress and Cancel, as Blender shows its own jobs."""

from __future__ import annotations

import bpy

from ..vse import scheduler


def draw_strip_menu(self, _context):
    layout = self.layout
    layout.separator()
    layout.operator("sequencer.gan_style_preview", icon='HIDE_OFF')
    layout.operator("sequencer.gan_style_apply", icon='BRUSH_DATA')
    layout.operator("sequencer.gan_style_reapply", icon='FILE_REFRESH')
    layout.operator("sequencer.gan_style_cancel", icon='CANCEL')


def draw_status_bar(self, _context):
    for job in scheduler.running_jobs():
        row = self.layout.row(align=True)
        row.progress(factor=job.fraction, type='BAR',
                     text=f"{job.title}: {job.status}  {100 * job.fraction:.0f}%")
        row.operator("sequencer.gan_style_cancel", text="", icon='CANCEL', emboss=False)


def register() -> None:
    bpy.types.SEQUENCER_MT_strip.append(draw_strip_menu)
    bpy.types.STATUSBAR_HT_header.append(draw_status_bar)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status_bar)
    bpy.types.SEQUENCER_MT_strip.remove(draw_strip_menu)
