"""Settings the panels edit: `Scene.gan_style`, and the library list on the window manager."""

from __future__ import annotations

import bpy
from bpy.props import (CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty, BoolProperty)

from ..gan import protocol
from ..vse import library, options, storage
from ..operators.train import PRESET_ITEMS
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
    return library.scan(storage.library_dir())


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


def current_style_name(props) -> str:
    """The chosen style if it is still in the library, else the first usable one ('' if none)."""
    names = [e.name for e in style_entries() if not e.error]
    if props.style_name in names:
        return props.style_name
    return names[0] if names else ""


def _get_style(self):
    items = _style_enum_items(self, None)
    name = current_style_name(self)
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
    mix: options.mix()
    use_frame_range: BoolProperty(
        name="Limit Frames",
        description="Stylize only the timeline frames from Start to End (off: each strip's "
                    "whole visible range)")
    stabilize: options.stabilize()
    stroke_scale: options.stroke_scale(options.APPLY_STROKE_SCALE)
    frame_start: IntProperty(name="Start", default=1)
    frame_end: IntProperty(name="End", default=250)

    train_name: StringProperty(name="Name", description="Library name of the new style",
                               default="my_style")
    train_style_strip: StringProperty(name="Style Strip",
                                      description="A strip that shows the style")
    train_style_path: StringProperty(name="Style File", subtype='FILE_PATH',
                                     description="An image, image folder or video that shows "
                                                 "the style")
    train_preset: EnumProperty(name="Preset", items=PRESET_ITEMS, default='draft')
    train_minutes: FloatProperty(name="Time Budget", description="Training time in minutes",
                                 default=5.0, min=0.05, soft_max=240.0, unit='NONE')
    train_use_keyframes: BoolProperty(
        name="Painted Keyframes", default=True,
        description="Learn from painted keyframes: single-image strips above the footage at "
                    "the frames they depict")
    train_temporal_weight: FloatProperty(
        name="Temporal Stability", default=protocol.DEFAULT_TEMPORAL_WEIGHT, min=0.0,
        max=1000.0, soft_max=50.0,
        description="Weight of the training term against flicker (0: off, steps are faster)")
    train_learn_strokes: options.learn_strokes()
    train_stroke_scale: options.stroke_scale(options.TRAIN_STROKE_SCALE)


classes = (GANSTYLE_PG_library_item, GANSTYLE_PG_scene)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.gan_style = PointerProperty(type=GANSTYLE_PG_scene)
    wm = bpy.types.WindowManager
    wm.gan_style_library = CollectionProperty(type=GANSTYLE_PG_library_item)
    wm.gan_style_library_index = IntProperty(name="Active Style", default=-1)
    wm.gan_style_library_stamp = FloatProperty(options={'HIDDEN', 'SKIP_SAVE'})


def unregister() -> None:
    wm = bpy.types.WindowManager
    del wm.gan_style_library_stamp
    del wm.gan_style_library_index
    del wm.gan_style_library
    del bpy.types.Scene.gan_style
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    _style_items.clear()
