"""Settings the panels edit: `Scene.gan_style`, and the library list on the window manager."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, IntProperty,
                       PointerProperty, StringProperty)

from ..vse import library, options, storage
from . import previews


class GANSTYLE_PG_library_item(bpy.types.PropertyGroup):
    """One style of the library, as the list shows it (`name` is the library name)."""
    path: StringProperty(name="File", subtype='FILE_PATH')
    title: StringProperty(name="Title")
    preset: StringProperty(name="Preset")
    steps: IntProperty(name="Steps")
    created: StringProperty(name="Created")
    sources: StringProperty(name="Sources")
    error: StringProperty(name="Problem")
    builtin: BoolProperty(name="Built-in", description="Ships with the extension (read-only)")


# Enum items must stay referenced while Blender uses them (else their text is garbage).
_style_items: list[tuple] = []


def style_entries() -> list:
    """The library's styles as last read (`library.entries`: read again when the folder
    changes), for the style picker, which Blender asks for often while drawing."""
    return library.entries(storage.library_path())


def _style_enum_items(_self, _context):
    entries = [e for e in style_entries() if not e.error]
    items = [(e.name, e.name, _describe(e), previews.style_icon(e), i)
             for i, e in enumerate(entries)]
    if not items:
        items = [("", "No styles", "Train or import a style first", 0, 0)]
    _style_items[:] = items
    return _style_items


def _describe(entry) -> str:
    parts = [entry.title or entry.name]
    if entry.preset:
        parts.append(f"preset {entry.preset}")
    if entry.steps:
        parts.append(f"{entry.steps} steps")
    if entry.created:
        parts.append(entry.created)
    return ", ".join(parts)


def current_style_name(props, names=None) -> str:
    """The chosen style if it is still in the library, else the first usable one ('' if none).
    `names`: the usable styles, when the caller has them already."""
    if names is None:
        names = [e.name for e in style_entries() if not e.error]
    if props.style_name in names:
        return props.style_name
    return names[0] if names else ""


def _get_style(self):
    items = _style_enum_items(self, None)  # one listing for both
    name = current_style_name(self, [item[0] for item in items if item[0]])
    for item in items:
        if item[0] == name:
            return item[4]
    return 0


def _set_style(self, value):
    for item in _style_enum_items(self, None):
        if item[4] == value:
            self.style_name = item[0]
            return


class GANSTYLE_PG_scene(bpy.types.PropertyGroup):
    """The Style panels' settings of a scene."""
    style_name: StringProperty(name="Style", description="Library name of the style to apply")
    style: EnumProperty(name="Style", description="Style to apply", items=_style_enum_items,
                        get=_get_style, set=_set_style)

    train_name: StringProperty(name="Name", description="Library name of the new style",
                               default="my_style")
    train_style_strip: StringProperty(name="Style Strip",
                                      description="A strip that shows the style")
    train_style_path: StringProperty(name="Style File", subtype='FILE_PATH',
                                     description="An image, image folder or video that shows "
                                                 "the style")
    # and the options of `vse.options`: STYLIZE as they are, TRAIN as `train_<name>`


options.declare(GANSTYLE_PG_scene, options.STYLIZE)
options.declare(GANSTYLE_PG_scene, options.TRAIN, options.TRAIN_PREFIX)


classes = (GANSTYLE_PG_library_item, GANSTYLE_PG_scene)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.gan_style = PointerProperty(type=GANSTYLE_PG_scene)
    wm = bpy.types.WindowManager
    wm.gan_style_library = CollectionProperty(type=GANSTYLE_PG_library_item)
    wm.gan_style_library_index = IntProperty(name="Active Style", default=-1)


def unregister() -> None:
    wm = bpy.types.WindowManager
    del wm.gan_style_library_index
    del wm.gan_style_library
    del bpy.types.Scene.gan_style
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    _style_items.clear()
