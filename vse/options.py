"""The options of style jobs, declared once: their properties, their command-line flags and
the `gan.protocol` job fields they fill.

`STYLIZE` (Apply, Re-apply, Preview, Export Farm Job; the Style panel) and `TRAIN` (Train Style;
the Train panel, whose properties are named `train_<name>`) are tables of `Option`s. From them:
- `declare(cls, table, prefix)` adds the properties to an operator or to the scene's property
  group (`Scene.gan_style`), so that ranges, defaults and tooltips cannot drift apart;
- `from_panel(operator, scene, table)` is the one way an operator takes the panel's settings:
  every option its caller did not give (`use_scene_settings`, set by the panel's buttons, the
  Strip menu and F3 search);
- `stylize_fields(owner)` and `train_job(owner, **per_call)` turn the values into the job's
  fields in one place; the operators add only what differs per call (sources, output, name);
- `add_arguments(parser, table)` gives `blender -c gan_style` the same options.
Adding a training option is a row in `TRAIN` (and its field in `gan.protocol.TrainJob`).

Preset and device lists come from `gan.protocol` (standard library only, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..gan import protocol
from .errors import UserError

_PRESET_TEXT = {
    "draft": "Small and fast: minutes on a CPU",
    "standard": "Better detail: a GPU helps",
    "high": "Largest model: for a GPU",
}
PRESET_ITEMS = [(name, name.title(), _PRESET_TEXT.get(name, "")) for name in protocol.PRESETS]

# Device enum items: the names of `protocol.DEVICES` in capitals ('CUDA:N' per GPU). Their
# numbers never change, so that a saved choice keeps its meaning whatever the worker reports.
_DEVICE_TEXT = {
    "auto": ("Automatic", "The first NVIDIA GPU (CUDA), then the Apple GPU (MPS), then the CPU"),
    "cpu": ("CPU", "Always the CPU"),
    "mps": ("Apple GPU (Metal)", "The Apple GPU through Metal (MPS)"),
}
_DEVICE_NUMBER = {"auto": 0, "cpu": 1, "mps": 3}
_CUDA_BASE = 16


def device_items(status) -> list[tuple]:
    """Enum items of the devices a job may name (`protocol.DEVICES`), with the GPUs that the
    worker's torch reported (`status`: a `deps.DepStatus`, or None before the check)."""
    items = []
    checked = status is not None and not status.checking
    for name in protocol.DEVICES:
        if name == "cuda":
            for gpu in (status.gpus if checked else ()):
                memory = gpu.get("memory", 0) / 1024 ** 3
                items.append((f"CUDA:{gpu['index']}", f"{gpu['name']} ({memory:.0f} GB)",
                              f"NVIDIA GPU {gpu['index']} (cuda:{gpu['index']})",
                              _CUDA_BASE + int(gpu["index"])))
        elif name != "mps" or (checked and status.mps):
            label, description = _DEVICE_TEXT[name]
            items.append((name.upper(), label, description, _DEVICE_NUMBER[name]))
    return items


DEFAULT_DEVICE = _DEVICE_NUMBER["auto"]


def job_device(item: str) -> str:
    """The protocol's name of a device enum item ('CUDA:1' -> 'cuda:1')."""
    return (item or "AUTO").lower()


# -- options --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One option: `prop()` makes its property; `field`: the job field it fills ('' for none,
    `to_job` converts the value); `flag`: its `blender -c gan_style` flag ('' for none; a
    `--no-...` flag turns a boolean off), `metavar` and `help`; `group`: options of one
    mutually exclusive group of flags."""
    name: str
    prop: Callable[[], object]
    field: str = ""
    to_job: Callable[[object], object] = float
    flag: str = ""
    metavar: str | None = None
    help: str = ""
    group: str = ""


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


def use_scene_settings():
    return BoolProperty(
        name="Use Panel Settings", default=False, options={'HIDDEN', 'SKIP_SAVE'},
        description="Options not given take the Style panel's settings")


def _stroke_scale(description: str):
    return lambda: FloatProperty(name="Stroke Scale", default=1.0,
                                 min=protocol.STROKE_SCALE_RANGE[0],
                                 max=protocol.STROKE_SCALE_RANGE[1], description=description)


STYLIZE = (
    Option("mix", lambda: FloatProperty(
        name="Mix", description="0 keeps the original pixels, 1 is the full style",
        default=1.0, min=0.0, max=1.0, subtype='FACTOR'),
        field="mix", flag="--mix", help="0 original .. 1 full style"),
    Option("stabilize", lambda: FloatProperty(
        name="Stabilize", default=protocol.DEFAULT_STABILIZE, min=0.0, max=1.0,
        subtype='FACTOR',
        description="Against flicker: blend in the previous stylized frame moved by the "
                    "optical flow (0.5-0.7 calms flicker by a third to a half; 0: off, each "
                    "frame on its own, and painterly strokes flicker)"),
        field="stabilize", flag="--stabilize", metavar="S",
        help="0-1: blend in the previous output moved by the optical flow, against flicker "
             f"(default {protocol.DEFAULT_STABILIZE:g}; 0: off)"),
    Option("stroke_scale", _stroke_scale(APPLY_STROKE_SCALE),
           field="stroke_scale", flag="--stroke-scale", metavar="K",
           help="the style's strokes at K times their trained size (0.25-4)"),
    # The timeline frames to stylize (the command line's --frames START-END)
    Option("use_frame_range", lambda: BoolProperty(
        name="Limit Frames",
        description="Stylize only the timeline frames from Start to End (off: each strip's "
                    "whole visible range)")),
    Option("frame_start", lambda: IntProperty(name="Start", description="First timeline frame",
                                              default=1)),
    Option("frame_end", lambda: IntProperty(name="End",
                                            description="Last timeline frame (included)",
                                            default=250)),
)

TRAIN = (  # in the order the Train panel draws them
    Option("use_keyframes", lambda: BoolProperty(
        name="Use Painted Keyframes", default=True,
        description="Learn from painted keyframes: single-image strips above the footage "
                    "strips at the frames they depict"),
        flag="--no-keyframes", help="ignore painted keyframe strips above the content strips"),
    Option("temporal_weight", lambda: FloatProperty(
        name="Temporal Stability", default=protocol.DEFAULT_TEMPORAL_WEIGHT, min=0.0,
        max=1000.0, soft_max=50.0,
        description="Weight of the training term against flicker (output of a frame vs. the "
                    "previous output moved by the optical flow; 0: off, steps are faster)"),
        field="temporal_weight", flag="--temporal", metavar="W",
        help="weight of the temporal stability term (0: off; "
             f"default {protocol.DEFAULT_TEMPORAL_WEIGHT:g})"),
    Option("learn_strokes", lambda: BoolProperty(
        name="Learn Strokes", default=True,
        description="For a still style such as a painting: paint a few footage frames with its "
                    "patches first and learn from them (its strokes; about 30 s a frame on a "
                    "CPU). Off: learn its colours and fine texture only"),
        # the engine chooses how many frames it paints; off: none
        field="auto_keyframes", to_job=lambda on: None if on else 0, flag="--no-strokes",
        help="a still style is learned as a look (colours and fine texture), without "
             "painting footage frames with its patches first"),
    Option("stroke_scale", _stroke_scale(TRAIN_STROKE_SCALE),
           field="stroke_scale", flag="--stroke-scale", metavar="K",
           help="the style image's strokes at K times their size when the image is fitted to "
                "the footage frame (0.25-4)"),
    Option("preset", lambda: EnumProperty(
        name="Preset", items=PRESET_ITEMS, default=protocol.PRESETS[0],
        description="Model size"),
        field="preset", to_job=str, flag="--preset",
        help="model size: draft (CPU minutes), standard, high (GPU)"),
    Option("minutes", lambda: FloatProperty(
        name="Time Budget", description="Training time in minutes", default=5.0, min=0.05,
        soft_max=240.0),
        field="minutes", flag="--minutes", group="budget"),
)

TRAIN_PREFIX = "train_"  # the Train panel's settings in Scene.gan_style


def declare(cls, table, prefix: str = "", only=None):
    """Add the table's properties (`only`: those names) to an operator or property group
    class before it is registered, ahead of the class's own; returns the class."""
    own = dict(cls.__dict__.get("__annotations__", {}))
    added = {prefix + o.name: o.prop() for o in table if only is None or o.name in only}
    cls.__annotations__ = {**added, **{k: v for k, v in own.items() if k not in added}}
    return cls


def stylize_options(*names: str):
    """Class decorator: the operator takes these options of STYLIZE."""
    return lambda cls: declare(cls, STYLIZE, only=names)


def train_options(cls):
    """Class decorator: the operator takes every option of TRAIN."""
    return declare(cls, TRAIN)


def _declared(owner, name: str) -> bool:
    """Whether an operator (its properties are in `owner.properties`) or a property group
    has the property `name`."""
    properties = getattr(owner, "properties", None)
    return name in (properties if properties is not None else owner).bl_rna.properties


def from_panel(operator, scene, table, prefix: str = "") -> None:
    """Options of the table that the operator declares and its caller did not give take the
    values of the scene's settings (the panel)."""
    settings = getattr(scene, "gan_style", None)
    if settings is None:
        return
    for option in table:
        if (_declared(operator, option.name)
                and not operator.properties.is_property_set(option.name)):
            setattr(operator, option.name, getattr(settings, prefix + option.name))


def values(owner, table, prefix: str = "") -> dict:
    """{option name: value} of the options `owner` declares (operator or scene settings)."""
    return {o.name: getattr(owner, prefix + o.name) for o in table
            if _declared(owner, prefix + o.name)}


def _fields(table, given: dict) -> dict:
    return {o.field: o.to_job(given[o.name]) for o in table if o.field and o.name in given}


def stylize_fields(owner, prefix: str = "") -> dict:
    """The `protocol.StylizeJob` fields of an owner's stylize options (mix, stabilize, ...)."""
    return _fields(STYLIZE, values(owner, STYLIZE, prefix))


def frame_range(settings) -> tuple[int, int] | None:
    """(first, last + 1) timeline frames of an operator's or the panel's `settings` when Limit
    Frames is on, else None (raises UserError for a range that ends before it starts)."""
    if not settings.use_frame_range:
        return None
    if settings.frame_end < settings.frame_start:
        raise UserError("The frame range ends before it starts")
    return settings.frame_start, settings.frame_end + 1


def train_job(owner, prefix: str = "", *, steps: int | None = None,
              **per_call) -> protocol.TrainJob:
    """The training job of an owner's training options plus what differs per call (sources,
    output, name, ...). `steps` replaces the time budget."""
    fields = _fields(TRAIN, values(owner, TRAIN, prefix))
    if steps:
        fields["minutes"] = None
    return protocol.TrainJob(steps=steps or None, **fields, **per_call)


# -- the command line -----------------------------------------------------------------------

def add_arguments(parser, table, groups: dict | None = None) -> None:
    """The table's flags on an argparse parser, with the properties' defaults. `groups`:
    mutually exclusive groups by name (made when missing)."""
    groups = {} if groups is None else groups
    for option in table:
        if not option.flag:
            continue
        target = parser
        if option.group:
            if option.group not in groups:
                groups[option.group] = parser.add_mutually_exclusive_group()
            target = groups[option.group]
        prop = option.prop()
        kind, keywords = prop.function.__name__, prop.keywords
        kwargs: dict = {"dest": option.name}
        if option.help:
            kwargs["help"] = option.help
        if kind == "BoolProperty":  # a --no-... flag turns it off
            kwargs.update(action="store_false", default=keywords.get("default", False))
        elif kind == "EnumProperty":
            kwargs.update(choices=[item[0] for item in keywords["items"]],
                          default=keywords.get("default"))
        else:
            kwargs.update(type=float if kind == "FloatProperty" else int,
                          default=keywords.get("default", 0), metavar=option.metavar)
        target.add_argument(option.flag, **kwargs)


def arguments(args, table) -> dict:
    """Operator arguments of the table's flags in parsed `args`."""
    return {o.name: getattr(args, o.name) for o in table if o.flag}
