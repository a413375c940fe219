"""Add-on preferences: worker Python, device, library folder, and the dependency check."""

from __future__ import annotations

import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from ..operators import deps, library, storage


def _library_changed(_self, context):
    library.refresh(context)


def _python_changed(_self, _context):
    deps.clear()


class GANSTYLE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = storage.ADDON_PACKAGE

    python_path: StringProperty(
        name="Worker Python", subtype='FILE_PATH', update=_python_changed,
        description="Python interpreter that trains and stylizes (it needs torch, OpenCV and "
                    "NumPy). Empty: Blender's own Python")
    device: EnumProperty(
        name="Device", default='AUTO',
        items=(('AUTO', "Automatic", "NVIDIA GPU (CUDA), then Apple GPU (MPS), then CPU"),
               ('CPU', "CPU", "Always the CPU"),
               ('CUDA', "CUDA", "NVIDIA GPU"),
               ('MPS', "MPS", "Apple GPU")))
    library_dir: StringProperty(
        name="Style Library", subtype='DIR_PATH', update=_library_changed,
        description="Folder of .ganstyle files. Empty: 'styles' in the data folder, which "
                    "outlives the extension")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "python_path")
        python = storage.worker_python(context)
        if not self.python_path.strip():
            layout.label(text=f"Using Blender's Python: {sys.executable}", icon='INFO')
        layout.prop(self, "device")
        layout.prop(self, "library_dir")
        layout.label(text=f"Library: {storage.library_dir(context)}", icon='FILE_FOLDER')
        row = layout.row()
        row.label(text=f"Data: {storage.data_root()}", icon='DISK_DRIVE')
        row.operator("wm.path_open", text="Open", icon='FILEBROWSER').filepath = \
            storage.data_dir()
        layout.operator("sequencer.gan_style_clean_up", icon='TRASH')
        box = layout.box()
        draw_dependencies(box, python, always=True)
        box.operator("sequencer.gan_style_check_dependencies", icon='FILE_REFRESH')


def draw_dependencies(layout, python: str, always: bool = False) -> bool:
    """Draw the dependency status (only problems unless `always`); True when usable."""
    status = deps.check_async(python)
    if status.checking:
        if always:
            layout.label(text=status.summary, icon='TIME')
        _redraw_when_checked(python)
        return True
    if status.ok:
        if always:
            layout.label(text=status.summary, icon='CHECKMARK')
        return True
    column = layout.column(align=True)
    column.label(text=status.summary, icon='ERROR')
    if status.missing:
        column.label(text="Install into the worker Python with:")
        column.label(text=deps.pip_command(python, list(status.missing)))
        column.label(text="(CUDA builds of torch: see pytorch.org), or set another worker "
                          "Python in the add-on preferences")
    else:
        column.label(text="Set the worker Python in the add-on preferences")
    return False


_waiting: set[str] = set()


def _redraw_when_checked(python: str) -> None:
    """Redraw once the background check is done (threads must not touch Blender)."""
    if python in _waiting or bpy.app.background:
        return
    _waiting.add(python)

    def poll():
        status = deps.cached(python)
        if status is not None and status.checking:
            return 0.5
        _waiting.discard(python)
        wm = bpy.context.window_manager
        for window in (wm.windows if wm else ()):
            for area in window.screen.areas:
                area.tag_redraw()
        return None
    bpy.app.timers.register(poll, first_interval=0.5)


classes = (GANSTYLE_AddonPreferences,)
