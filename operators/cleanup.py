"""`sequencer.gan_style_clean_up`: remove what `vse.cleanup` finds unused (frame folders no strip
uses, unfinished trainings), after listing it with its size."""

from __future__ import annotations

from bpy.props import BoolProperty, StringProperty
import bpy

from ..vse import cleanup


class SEQUENCER_OT_gan_style_clean_up(bpy.types.Operator):
    """Remove stylized frame folders that no strip of this file uses any more and unfinished
    trainings, after listing them with their size"""
    bl_idname = "sequencer.gan_style_clean_up"
    bl_label = "Clean Up"
    bl_options = {'REGISTER'}  # removed files cannot be undone

    dry_run: BoolProperty(name="List Only", description="List what would be removed, remove "
                          "nothing", default=False, options={'SKIP_SAVE'})
    # What the confirmation dialog listed: only that is removed (one path a line).
    shown: StringProperty(options={'HIDDEN', 'SKIP_SAVE'})
    notes: StringProperty(options={'HIDDEN', 'SKIP_SAVE'})

    def invoke(self, context, _event):
        items, notes = cleanup.find_leftovers(context)
        if not items:
            self.report({'INFO'}, "Nothing to clean up" + (f" ({'; '.join(notes)})"
                                                            if notes else ""))
            return {'FINISHED'}
        self.shown = "\n".join(f"{i.size}\t{i.kind}\t{i.path}" for i in items)
        self.notes = "\n".join(notes)
        return context.window_manager.invoke_props_dialog(self, width=520)

    def _shown(self) -> list[cleanup.Leftover]:
        """What invoke found (sizes included: the dialog redraws often, walking is slow)."""
        items = []
        for line in self.shown.splitlines():
            size, kind, path = line.split("\t", 2)
            items.append(cleanup.Leftover(path, kind, int(size)))
        return items

    def draw(self, _context):
        items = self._shown()
        column = self.layout.column(align=True)
        column.label(text="Remove these folders? This cannot be undone.", icon='TRASH')
        for item in items:
            column.label(text=item.label, icon='FILE_FOLDER')
        column.label(text=f"Total: {cleanup.human_size(sum(i.size for i in items))}")
        for note in self.notes.splitlines():
            column.label(text=note, icon='INFO')

    def execute(self, context):
        items, notes = cleanup.find_leftovers(context)
        if self.shown:  # only what the dialog listed, if it still is a leftover
            shown = {i.path for i in self._shown()}
            items = [i for i in items if i.path in shown]
        for note in notes:
            self.report({'INFO'}, note)
        if self.dry_run:
            for item in items:
                self.report({'INFO'}, f"{item.label}: {item.path}")
            self.report({'INFO'}, f"{len(items)} folder(s), "
                                  f"{cleanup.human_size(sum(i.size for i in items))}: nothing removed")
            return {'FINISHED'}
        removed, errors = cleanup.remove(items, context)
        for item in removed:
            self.report({'INFO'}, f"Removed {item.path} ({cleanup.human_size(item.size)})")
        if errors:
            self.report({'ERROR'}, f"Could not remove {len(errors)} folder(s): {errors[0]}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Cleaned up {len(removed)} folder(s), "
                              f"{cleanup.human_size(sum(i.size for i in removed))} freed")
        return {'FINISHED'}


classes = (SEQUENCER_OT_gan_style_clean_up,)
