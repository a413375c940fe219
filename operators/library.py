"""The style library's operators: Refresh, Import, Remove, Rename (the library itself is
`vse.library`)."""

from __future__ import annotations

import os

import bpy
from bpy.props import StringProperty

from ..vse import errors, library, storage
from ..vse.storage import STYLE_EXTENSION


class LibraryOperator:
    """Shared: library folder, error reporting, list refresh."""

    def run(self, context, action):
        try:
            message = action(storage.library_dir(context))
        except errors.EXPECTED as exc:
            return errors.report(self, exc)
        library.refresh(context)
        if message:
            self.report({'INFO'}, message)
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_library_refresh(bpy.types.Operator):
    """Re-read the style library folder"""
    bl_idname = "sequencer.gan_style_library_refresh"
    bl_label = "Refresh Style Library"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        library.refresh(context)
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_library_import(LibraryOperator, bpy.types.Operator):
    """Copy a style file into the style library (under a free name: nothing is replaced)"""
    bl_idname = "sequencer.gan_style_library_import"
    bl_label = "Import Style"
    bl_options = {'REGISTER'}

    filepath: StringProperty(name="Style File", subtype='FILE_PATH')
    filter_glob: StringProperty(default="*" + STYLE_EXTENSION, options={'HIDDEN'})

    def invoke(self, context, _event):
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def execute(self, context):
        def action(folder):
            path = library.import_style(folder, self.filepath)
            return f"Imported style '{os.path.splitext(os.path.basename(path))[0]}'"
        return self.run(context, action)


class SEQUENCER_OT_gan_style_library_remove(LibraryOperator, bpy.types.Operator):
    """Delete a style from the style library (its file and any training state)"""
    bl_idname = "sequencer.gan_style_library_remove"
    bl_label = "Remove Style"
    bl_options = {'REGISTER'}

    name: StringProperty(name="Style", description="Library name of the style to delete")

    def invoke(self, context, event):
        if not self.name:
            self.name = _active_name(context)
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        name = self.name or _active_name(context)

        def action(folder):
            library.remove_style(folder, name)
            return f"Removed style '{name}'"
        return self.run(context, action)


class SEQUENCER_OT_gan_style_library_rename(LibraryOperator, bpy.types.Operator):
    """Rename a style of the style library"""
    bl_idname = "sequencer.gan_style_library_rename"
    bl_label = "Rename Style"
    bl_options = {'REGISTER'}

    name: StringProperty(name="Style", description="Library name of the style to rename")
    new_name: StringProperty(name="New Name")

    def invoke(self, context, _event):
        if not self.name:
            self.name = _active_name(context)
        if not self.new_name:
            self.new_name = self.name
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        name = self.name or _active_name(context)

        def action(folder):
            library.rename_style(folder, name, self.new_name)
            scene_props = getattr(context.scene, "gan_style", None)
            if scene_props is not None and scene_props.style_name == name:
                scene_props.style_name = self.new_name.strip()
            return f"Renamed style '{name}' to '{self.new_name.strip()}'"
        return self.run(context, action)


def _active_name(context) -> str:
    wm = context.window_manager
    items = wm.gan_style_library
    index = wm.gan_style_library_index
    return items[index].name if 0 <= index < len(items) else ""


classes = (
    SEQUENCER_OT_gan_style_library_refresh,
    SEQUENCER_OT_gan_style_library_import,
    SEQUENCER_OT_gan_style_library_remove,
    SEQUENCER_OT_gan_style_library_rename,
)
