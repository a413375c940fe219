"""Options that several operators and the Style panel's settings share, declared once here so
that their ranges and tooltips cannot drift apart."""

from __future__ import annotations

from bpy.props import BoolProperty, FloatProperty, StringProperty

from ..gan import protocol

APPLY_STROKE_SCALE = ("Size of the style's strokes, as a multiple of the size it was trained "
                      "with (2: twice as large, and faster)")
TRAIN_STROKE_SCALE = ("Size of the style image's strokes in the footage, as a multiple of their "
                      "size when the image is fitted to the frame")


def style():
    """The style an operator uses (the Style panel's choice when empty)."""
    return StringProperty(
        name="Style",
        description="Library name of the style, or the path of a .ganstyle file "
                    "(empty: the style chosen in the Style panel)")


def mix():
    return FloatProperty(name="Mix", description="0 keeps the original pixels, 1 is the full style",
                         default=1.0, min=0.0, max=1.0, subtype='FACTOR')


def stabilize():
    return FloatProperty(
        name="Stabilize", default=0.0, min=0.0, max=1.0, subtype='FACTOR',
        description="Against flicker: blend in the previous stylized frame moved by the "
                    "optical flow (0: off, each frame on its own; 0.5-0.7 calms flicker "
                    "by a third to a half)")


def stroke_scale(description: str):
    return FloatProperty(name="Stroke Scale", default=1.0, min=protocol.STROKE_SCALE_RANGE[0],
                         max=protocol.STROKE_SCALE_RANGE[1], description=description)


def learn_strokes():
    return BoolProperty(
        name="Learn Strokes", default=True,
        description="For a still style such as a painting: paint a few footage frames with its "
                    "patches first and learn from them (its strokes; about 30 s a frame on a "
                    "CPU). Off: learn its colours and fine texture only")
