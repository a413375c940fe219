"""What the user touches: sidebar panels ("Style" tab of the Sequencer), preferences, settings,
the library list, the Strip menu and status bar, and the `blender -c gan_style` command."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from ..vse import library
from . import cli, menus, panels, prefs, previews, props

classes = (*prefs.classes, *panels.classes)


def _refresh_library():
    """Fill the library list once Blender has a window manager (timer, then after file loads)."""
    context = bpy.context
    if getattr(context, "window_manager", None) is not None:
        library.refresh(context)
    return None


@persistent
def _on_load_post(*_args):
    _refresh_library()


def register() -> None:
    previews.register()
    props.register()
    for cls in classes:
        bpy.utils.register_class(cls)
    menus.register()
    cli.register()
    bpy.app.handlers.load_post.append(_on_load_post)
    if not bpy.app.background:
        # Not in background mode: nothing draws there, and with a pending timer the 4.2 bpy
        # module crashes at exit after loading a file.
        bpy.app.timers.register(_refresh_library, first_interval=0.5)


def unregister() -> None:
    if bpy.app.timers.is_registered(_refresh_library):
        bpy.app.timers.unregister(_refresh_library)
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    cli.unregister()
    menus.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    props.unregister()
    previews.unregister()
