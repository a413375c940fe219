"""Which source pixels belong to each timeline frame of a strip.

What is taken: the strip's own source pixels, before its transform, crop, flip, colour
modifiers and blending. The stylized strip copies the source strip's transform, crop and flip,
so it lies exactly over the source.

- Movie strips are read from their file: timeline frame `t` shows source frame
  `animation_offset_start + (t - frame_start)`, or `animation_offset_start + (frame_duration - 1
  - (t - frame_start))` when the strip plays reversed (clamped to the content: held frames
  repeat the first/last frame). This is Blender's own mapping for strips at the scene frame
  rate and is checked against Blender's renders by the tests.
- Image strips are read from their files via `strip_elem_from_frame(t)`, Blender's own lookup
  (reversal, held frames and strobe included).
- Every other visual strip (scene, colour, text, effects, meta strips, adjustment) and every
  strip whose timing is not 1:1 (retiming keys, strobe, a movie at another frame rate than the
  scene: Blender may stretch those) is rendered through Blender's sequencer, alone, to PNG files
  with the 'Standard' view transform. Those frames include the strip's transform, crop, flip
  and modifiers (that is how the sequencer draws the strip), so the stylized strip then gets
  no transform of its own.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import bpy

from . import compat
from .storage import absolute

DIRECT_TYPES = ("MOVIE", "IMAGE")


class SourceError(Exception):
    """A strip that cannot be used as a frame source; the message says which and why."""


@dataclass
class StripSource:
    """The frames of one strip over the timeline frames `start` .. `end - 1`."""
    strip_name: str
    start: int
    end: int
    method: str                      # 'MOVIE', 'IMAGE' or 'RENDER'
    path: str | list[str] = ""       # for the worker's SourceSpec (empty until rendered)
    frames: list[int] | None = None  # source index per timeline frame, in timeline order
    reason: str = ""                 # why the strip is rendered
    files: list[str] = field(default_factory=list)  # media files that must exist

    @property
    def count(self) -> int:
        return self.end - self.start

    @property
    def reads_media(self) -> bool:
        """True when pixels come from the media files (no render, no baked-in transform)."""
        return self.method != "RENDER"

    def spec(self) -> dict:
        """The worker's SourceSpec as a dict (see gan.protocol.SourceSpec)."""
        return {"path": self.path, "frames": self.frames}


def visible_range(strip) -> tuple[int, int]:
    return int(compat.left_handle(strip)), int(compat.right_handle(strip))


def plan(scene, strip, start: int | None = None, end: int | None = None) -> StripSource:
    """Map the strip's frames `start` .. `end - 1` (default: its visible range) to sources."""
    if not compat.is_visual(strip):
        raise SourceError(f"Strip '{strip.name}' has no picture ({strip.type.lower()} strip)")
    first, last = visible_range(strip)
    start = first if start is None else max(int(start), first)
    end = last if end is None else min(int(end), last)
    if end <= start:
        raise SourceError(f"Strip '{strip.name}' has no frames in the chosen range")
    reason = render_reason(scene, strip)
    if reason:
        return StripSource(strip.name, start, end, "RENDER", reason=reason)
    library = strip.id_data.library
    if strip.type == "MOVIE":
        return _plan_movie(strip, start, end, library)
    return _plan_images(strip, start, end, library)


def render_reason(scene, strip) -> str:
    """Why the strip's pixels must be rendered by Blender ('' when files can be read directly)."""
    if strip.type not in DIRECT_TYPES:
        return f"{strip.type.lower().replace('_', ' ')} strip"
    if compat.is_retimed(strip):
        return "retimed strip"
    if getattr(strip, "use_multiview", False):
        return "multi-view strip"
    if strip.use_deinterlace:
        return "deinterlaced strip"
    if strip.type == "MOVIE":
        if strip.strobe > 1.0:
            return "strobe"
        if strip.stream_index:
            return "movie stream other than the first"
        scene_fps = scene.render.fps / scene.render.fps_base
        if strip.fps and abs(strip.fps - scene_fps) > 1e-3:
            return "movie frame rate differs from the scene's"
    return ""


def movie_source_frame(strip, timeline_frame: int) -> int:
    """Source frame (0-based, in the movie file) that a 1:1 movie strip shows at a frame."""
    length = int(compat.content_duration(strip))
    offset = int(timeline_frame) - int(round(compat.content_start(strip)))
    index = (length - 1 - offset) if strip.use_reverse_frames else offset
    index = min(max(index, 0), length - 1)
    return int(round(compat.content_trim_start(strip))) + index


def _plan_movie(strip, start: int, end: int, library) -> StripSource:
    path = absolute(strip.filepath, library)
    frames = [movie_source_frame(strip, t) for t in range(start, end)]
    return StripSource(strip.name, start, end, "MOVIE", path=path, frames=frames, files=[path])


def _plan_images(strip, start: int, end: int, library) -> StripSource:
    directory = strip.directory
    paths: list[str] = []
    index_of: dict[str, int] = {}
    frames = []
    for t in range(start, end):
        element = strip.strip_elem_from_frame(frame=t)
        if element is None:
            raise SourceError(f"Strip '{strip.name}' has no image at frame {t}")
        path = absolute(os.path.join(directory, element.filename), library)
        if path not in index_of:
            index_of[path] = len(paths)
            paths.append(path)
        frames.append(index_of[path])
    return StripSource(strip.name, start, end, "IMAGE", path=paths, frames=frames, files=paths)


def check_media(source: StripSource) -> None:
    """Raise SourceError naming the first missing media file."""
    for path in source.files:
        if not os.path.isfile(path):
            raise SourceError(f"Strip '{source.strip_name}': media file not found: {path}")


# -- rendering through Blender ------------------------------------------------------------------

def render_strip(scene, strip, start: int, end: int, folder: str, progress=None) -> list[str]:
    """Render the strip alone at timeline frames `start` .. `end - 1` to PNG files in `folder`.

    Every other strip is muted for the duration (the strip's effect inputs and, for a strip
    inside meta strips, its parent metas stay on); the scene's output and colour settings are
    set to 8-bit RGB PNG with the 'Standard' view transform at 100 % resolution. Everything is
    restored afterwards, also on failure. Returns the files in timeline order.
    """
    keep = _strips_to_keep(strip)
    files = [os.path.join(folder, f"render_{i:06d}.png") for i in range(end - start)]
    render = scene.render
    image = render.image_settings
    with contextlib.ExitStack() as stack:
        frame_before = scene.frame_current
        stack.callback(scene.frame_set, frame_before)
        stack.enter_context(_restored(render, filepath=render.filepath,
                                      resolution_percentage=100, use_compositing=False,
                                      use_sequencer=True, use_stamp=False, use_border=False,
                                      use_multiview=False, use_file_extension=True,
                                      use_placeholder=False))
        stack.enter_context(_restored(image, media_type="IMAGE", file_format="PNG",
                                      color_mode="RGB", color_depth="8", compression=15,
                                      color_management="FOLLOW_SCENE"))
        stack.enter_context(_restored(scene.view_settings, view_transform="Standard",
                                      look="None", exposure=0.0, gamma=1.0,
                                      use_curve_mapping=False))
        stack.enter_context(_restored(scene.display_settings, display_device="sRGB"))
        for other in compat.strips_all(scene):
            if other not in keep and not other.mute:
                stack.enter_context(_restored(other, mute=True))
        for position, frame in enumerate(range(start, end)):
            scene.frame_set(frame)
            render.filepath = files[position]
            bpy.ops.render.render(write_still=True, scene=scene.name)
            if not os.path.isfile(files[position]):
                raise SourceError(f"Blender did not render frame {frame} of strip '{strip.name}'")
            if progress is not None:
                progress(position + 1, end - start)
    return files


def _strips_to_keep(strip) -> list:
    """The strip, what it draws (effect inputs, meta contents) and the metas that hold it."""
    keep = []
    pending = [strip]
    while pending:
        current = pending.pop()
        if any(current == k for k in keep):
            continue
        keep.append(current)
        pending.extend(compat.strip_inputs(current))
        pending.extend(compat.meta_children(current))
    parent = strip.parent_meta()
    while parent is not None:
        keep.append(parent)
        parent = parent.parent_meta()
    return _StripSet(keep)


class _StripSet:
    """Membership by equality (RNA wrappers of the same strip are equal, not identical)."""

    def __init__(self, strips):
        self._strips = list(strips)

    def __contains__(self, strip) -> bool:
        return any(strip == s for s in self._strips)


@contextlib.contextmanager
def _restored(owner, **values):
    """Set attributes (those that exist in this Blender) and restore the old values on exit."""
    old = {}
    try:
        for name, value in values.items():
            if not hasattr(owner, name):
                continue
            old[name] = getattr(owner, name)
            if old[name] != value:
                setattr(owner, name, value)
        yield
    finally:
        for name, value in reversed(old.items()):
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                if getattr(owner, name) != value:
                    setattr(owner, name, value)
