"""Add-on preferences: the worker (Python, device, Install Dependencies), the library and data
folders, Clean Up."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from ..vse import deps, installer, library, options, storage


def _library_changed(_self, context):
    library.refresh(context)


def _python_changed(_self, _context):
    deps.clear()


_device_items: list[tuple] = []  # Blender needs the strings of dynamic items kept alive


def _device_items_of(_self, context):
    """Automatic and CPU, then the GPUs the worker's torch reported (CUDA devices, Apple MPS)."""
    _device_items[:] = options.device_items(deps.cached(storage.worker_python(context)))
    return _device_items


# The builds of this platform, the one its hardware suggests first (annotations are evaluated
# by Blender in the module's namespace: plain names, no comprehensions).
_BUILD_ITEMS = deps.BUILD_ITEMS
_DEFAULT_BUILD = installer.default_build()


def _install_command(_self):
    return deps.install_plan().command_text()


class GANSTYLE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = storage.ADDON_PACKAGE

    python_path: StringProperty(
        name="Worker Python", subtype='FILE_PATH', update=_python_changed,
        description="Python interpreter that trains and stylizes (it needs torch, OpenCV and "
                    "NumPy). Empty: the environment made by Install Dependencies, else "
                    "Blender's own Python")
    device: EnumProperty(
        name="Device", items=_device_items_of, default=options.DEFAULT_DEVICE,
        description="Where jobs run: the GPUs listed are those the worker's torch sees")
    torch_build: EnumProperty(
        name="torch Build", items=_BUILD_ITEMS, default=_DEFAULT_BUILD,
        description="Which torch Install Dependencies installs")
    wheel_dir: StringProperty(
        name="Wheel Folder", subtype='DIR_PATH',
        description="Install only from the wheel files in this folder, without the network "
                    "(for offline computers: fill it with 'pip download'). Empty: download")
    install_command: StringProperty(
        name="Command", get=_install_command,
        description="What Install Dependencies runs, to paste into a terminal (Ctrl+C copies)")
    library_dir: StringProperty(
        name="Style Library", subtype='DIR_PATH', update=_library_changed,
        description="Folder of .ganstyle files. Empty: 'styles' in the data folder, which "
                    "outlives the extension")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        python = storage.worker_python(context)
        box = layout.box()
        box.prop(self, "python_path")
        if not self.python_path.strip():
            source = "the private environment" if storage.env_python() else "Blender's Python"
            box.label(text=f"Using {source}: {python}", icon='INFO')
        box.prop(self, "device")
        draw_dependencies(box, python, always=True)
        box.operator("sequencer.gan_style_check_dependencies", icon='FILE_REFRESH')
        draw_install(layout.box(), self)

        layout.prop(self, "library_dir")
        layout.label(text=f"Library: {storage.library_path(context)}", icon='FILE_FOLDER')
        row = layout.row()
        row.label(text=f"Data: {storage.data_root()}", icon='DISK_DRIVE')
        row.operator("wm.path_open", text="Open", icon='FILEBROWSER').filepath = \
            storage.data_root()
        layout.operator("sequencer.gan_style_clean_up", icon='TRASH')


def draw_install(layout, prefs) -> None:
    """Install Dependencies: the environment's folder, the build, progress or the buttons."""
    layout.label(text=f"Environment: {storage.env_dir()}", icon='FILE_FOLDER')
    layout.prop(prefs, "torch_build")
    layout.prop(prefs, "wheel_dir")
    running = deps.current_installer()
    if running is not None and running.active:
        layout.progress(factor=running.fraction, text=running.status)
        layout.operator("sequencer.gan_style_cancel_install", icon='CANCEL')
        return
    if running is not None:
        icon = 'CHECKMARK' if running.state == installer.DONE else 'ERROR'
        layout.label(text=running.message, icon=icon)
    offline = not bpy.app.online_access and not prefs.wheel_dir.strip()
    if offline:
        layout.label(text="Online access is off (Preferences > System > Network): run this "
                          "command in a terminal, or choose a wheel folder", icon='INFO')
    row = layout.row()
    row.enabled = not offline
    row.operator("sequencer.gan_style_install_dependencies", icon='IMPORT')
    layout.prop(prefs, "install_command")
    layout.operator("sequencer.gan_style_copy_install_command", icon='COPYDOWN')


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
        column.label(text="Press Install Dependencies in the add-on preferences, or install "
                          "into the worker Python with:")
        column.label(text=status.command)
        column.operator("sequencer.gan_style_copy_install_command",
                        text="Copy pip Command").text = status.command
        if not always:
            column.operator("preferences.addon_show", text="Open Preferences",
                            icon='PREFERENCES').module = storage.ADDON_PACKAGE
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
