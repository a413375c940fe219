"""Blender 4.2 LTS .. 5.x differences of the sequencer API, in one place.

- 4.4 renamed `sequences`/`sequences_all` to `strips`/`strips_all` (5.0 removed the old names),
  `Sequence` types became `Strip` types and `context.selected_sequences` became
  `context.selected_strips`.
- 5.0 added `context.sequencer_scene` (the scene the sequencer shows; None headless).
- 4.4 made `fit_method` of `new_image`/`new_movie` keyword-only (keywords work everywhere).
- 5.1 deprecated the strip timing names (removal planned for 6.0): `frame_final_start/end` ->
  `left_handle`/`right_handle`, `frame_final_duration` -> `duration`, `frame_start` ->
  `content_start`, `frame_duration` -> `content_duration`, `frame_offset_start/end` ->
  `left_handle_offset`/`right_handle_offset`, `animation_offset_start/end` ->
  `content_trim_start/end`. The helpers below read whichever the running Blender has.

Everything else in the add-on goes through these helpers instead of testing attributes itself.
"""

from __future__ import annotations

import bpy

# Strip types that have no picture.
AUDIO_TYPES = frozenset({"SOUND"})
MAX_CHANNEL = 128


# 5.1+: the new strip timing names (`DEPRECATED_STRIP_NAMES` lists the old ones).
_STRIP_TYPE = getattr(bpy.types, "Strip", None) or bpy.types.Sequence
HANDLE_NAMES = "left_handle" in _STRIP_TYPE.bl_rna.properties
DEPRECATED_STRIP_NAMES = {
    "frame_final_start": "left_handle", "frame_final_end": "right_handle",
    "frame_final_duration": "duration", "frame_start": "content_start",
    "frame_duration": "content_duration", "frame_offset_start": "left_handle_offset",
    "frame_offset_end": "right_handle_offset", "animation_offset_start": "content_trim_start",
    "animation_offset_end": "content_trim_end"}


def left_handle(strip) -> int:
    """First timeline frame the strip shows (`frame_final_start` before 5.1)."""
    return strip.left_handle if HANDLE_NAMES else strip.frame_final_start


def right_handle(strip) -> int:
    """First timeline frame after the strip (exclusive; `frame_final_end` before 5.1)."""
    return strip.right_handle if HANDLE_NAMES else strip.frame_final_end


def content_start(strip) -> float:
    """Timeline frame where the strip's source begins (`frame_start` before 5.1)."""
    return strip.content_start if HANDLE_NAMES else strip.frame_start


def content_duration(strip) -> int:
    """Frames of the source before the handles (`frame_duration` before 5.1)."""
    return strip.content_duration if HANDLE_NAMES else strip.frame_duration


def content_trim_start(strip) -> int:
    """Source frames skipped at the start (`animation_offset_start` before 5.1)."""
    value = getattr(strip, "content_trim_start", None)
    return value if value is not None else strip.animation_offset_start


# StringProperty options for a path that may be `//`-relative (5.0 warns when such an operator
# argument lacks the option; 4.2 does not know it).
BLEND_RELATIVE_PATH = (
    {'PATH_SUPPORTS_BLEND_RELATIVE'}
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())


def sequencer_scene(context) -> bpy.types.Scene | None:
    """The scene the sequencer edits: `context.sequencer_scene` (5.0+), else `context.scene`."""
    return getattr(context, "sequencer_scene", None) or getattr(context, "scene", None)


def editor(scene) -> bpy.types.SequenceEditor | None:
    return scene.sequence_editor if scene is not None else None


def strips_of(container):
    """The strip collection of a sequence editor or a meta strip (`strips` or `sequences`)."""
    strips = getattr(container, "strips", None)
    return strips if strips is not None else container.sequences


def strips_all(scene) -> list:
    """Every strip of the scene, including strips inside meta strips."""
    ed = editor(scene)
    if ed is None:
        return []
    everything = getattr(ed, "strips_all", None)
    return list(everything if everything is not None else ed.sequences_all)


def displayed_container(scene):
    """Where the user is editing: the innermost open meta strip, else the editor itself."""
    ed = editor(scene)
    if ed is None:
        return None
    return ed.meta_stack[-1] if len(ed.meta_stack) else ed


def container_of(scene, strip):
    """The editor or meta strip that holds `strip` (its collection takes new strips)."""
    meta = strip.parent_meta()
    return meta if meta is not None else editor(scene)


def active_strip(scene):
    ed = editor(scene)
    return ed.active_strip if ed is not None else None


def is_visual(strip) -> bool:
    return strip is not None and strip.type not in AUDIO_TYPES


def selected_strips(scene) -> list:
    """Selected strips of the displayed timeline, in channel then time order.

    The context members (`selected_strips`/`selected_sequences`) are None headless, so the
    selection is read from the strips themselves, as Blender does for the displayed meta level.
    """
    container = displayed_container(scene)
    if container is None:
        return []
    chosen = [s for s in strips_of(container) if s.select]
    return sorted(chosen, key=lambda s: (s.channel, left_handle(s)))


def find_strip(scene, name: str):
    for strip in strips_all(scene):
        if strip.name == name:
            return strip
    return None


def new_image_strip(container, name: str, directory: str, files: list[str], channel: int,
                    frame_start: int):
    """An image-sequence strip showing `files` (in `directory`) from `frame_start`, unscaled."""
    # "//" (the .blend's own folder) must keep both slashes: no rstrip of a trailing separator.
    folder = directory if directory.endswith(("/", "\\")) else directory + "/"
    strip = strips_of(container).new_image(
        name=name, filepath=bpy.path.native_pathsep(folder + files[0]),
        channel=channel, frame_start=frame_start, fit_method='ORIGINAL')
    for filename in files[1:]:
        strip.elements.append(filename)
    return strip


def is_retimed(strip) -> bool:
    """True when the strip has retiming keys (4.2 has them on movie strips only)."""
    return len(getattr(strip, "retiming_keys", ())) > 0


def strip_inputs(strip) -> list:
    """The strips an effect strip reads (empty for other strips)."""
    inputs = []
    for attr in ("input_1", "input_2"):
        value = getattr(strip, attr, None)
        if value is not None:
            inputs.append(value)
    return inputs


def meta_children(strip) -> list:
    """Strips inside a meta strip (all levels)."""
    if strip.type != 'META':
        return []
    found = []
    for child in strips_of(strip):
        found.append(child)
        found.extend(meta_children(child))
    return found


def free_channel_above(container, channel: int, start: int, end: int, taken=()) -> int | None:
    """Lowest channel above `channel` with nothing between frames `start` and `end` (exclusive).

    `taken` lists extra (channel, start, end) spans that count as occupied.
    """
    spans = [(s.channel, left_handle(s), right_handle(s)) for s in strips_of(container)]
    spans.extend(taken)
    for candidate in range(channel + 1, MAX_CHANNEL + 1):
        if not any(c == candidate and s < end and start < e for c, s, e in spans):
            return candidate
    return None


def undo_push(message: str) -> None:
    """Record an undo step after a change made outside an operator (a finished job)."""
    if bpy.app.background:
        return
    wm = bpy.context.window_manager
    window = bpy.context.window or (wm.windows[0] if wm and len(wm.windows) else None)
    if window is None:
        return
    with bpy.context.temp_override(window=window):
        if bpy.ops.ed.undo_push.poll():
            bpy.ops.ed.undo_push(message=message)
