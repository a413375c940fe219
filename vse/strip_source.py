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
- Movie and image strips whose timing is not 1:1 (retiming keys, strobe, a movie at another
  frame rate than the scene: Blender may stretch those, and whether it does is not in the
  Python API) are rendered through Blender's sequencer alone, at the media's own size and
  without their transform, crop and flip: exactly the source frame Blender shows, with no
  canvas borders. The stylized strip then copies the transform like a strip read from files.
- Every other visual strip (scene, colour, text, effects, meta strips) is rendered alone on
  the scene's canvas. Those frames include the strip's transform, crop, flip and modifiers
  (that is how the sequencer draws the strip), so the stylized strip gets no transform.
- Renders are 8-bit RGBA PNG with the 'Standard' view transform, the strip's own opacity and
  blend mode left out (the stylized strip copies them): what lies outside a text or a
  transformed picture stays transparent.
- Adjustment and multicam strips show other strips' pixels, and float images (EXR, HDR) have
  a range the 8-bit style model cannot carry: they are refused with one line that says so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import bpy

from . import compat
from .errors import UserError
from .storage import absolute

DIRECT_TYPES = ("MOVIE", "IMAGE")
REFUSED_TYPES = {
    "ADJUSTMENT": "an adjustment strip has no pixels of its own (it changes the strips below "
                  "it): stylize those strips instead",
    "MULTICAM": "a multicam strip shows other strips: stylize the camera strips it switches "
                "between instead",
}
FLOAT_IMAGE_EXTENSIONS = (".exr", ".hdr")


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
    own_size: tuple[int, int] | None = None  # a render at the media's size, without transform

    @property
    def count(self) -> int:
        return self.end - self.start

    @property
    def reads_media(self) -> bool:
        """True when the pixels are the strip's own, before its transform (read from the
        files, or rendered at the media's own size): the new strip needs its placement."""
        return self.method != "RENDER" or self.own_size is not None

    def spec(self) -> dict:
        """The worker's SourceSpec as a dict (see gan.protocol.SourceSpec)."""
        return {"path": self.path, "frames": self.frames}


def visible_range(strip) -> tuple[int, int]:
    return int(compat.left_handle(strip)), int(compat.right_handle(strip))


def plan(scene, strip, start: int | None = None, end: int | None = None) -> StripSource:
    """Map the strip's frames `start` .. `end - 1` (default: its visible range) to sources."""
    if not compat.is_visual(strip):
        raise UserError(f"Strip '{strip.name}' has no picture ({strip.type.lower()} strip)")
    if strip.type in REFUSED_TYPES:
        raise UserError(f"Strip '{strip.name}': {REFUSED_TYPES[strip.type]}")
    first, last = visible_range(strip)
    start = first if start is None else max(int(start), first)
    end = last if end is None else min(int(end), last)
    if end <= start:
        raise UserError(f"Strip '{strip.name}' has no frames in the chosen range")
    library = strip.id_data.library
    if strip.type == "IMAGE":
        _refuse_float_images(strip, start, end, library)
    reason = render_reason(scene, strip)
    if reason:
        return StripSource(strip.name, start, end, "RENDER", reason=reason,
                           own_size=media_size(strip, library))
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


def _refuse_float_images(strip, start: int, end: int, library) -> None:
    for t in range(start, end):
        element = strip.strip_elem_from_frame(frame=t)
        if element is not None and element.filename.lower().endswith(FLOAT_IMAGE_EXTENSIONS):
            raise UserError(
                            f"Strip '{strip.name}' shows float images ({element.filename}): their range "
                            "does not fit the 8-bit style model; convert them to 16-bit PNG or TIFF")


def media_size(strip, library=None) -> tuple[int, int] | None:
    """(width, height) of a movie or image strip's media, None for other strips (or when it
    cannot be read)."""
    if strip.type not in DIRECT_TYPES or not len(strip.elements):
        return None
    element = strip.elements[0]
    if element.orig_width > 0 and element.orig_height > 0:
        return int(element.orig_width), int(element.orig_height)
    if strip.type == "IMAGE":  # sizes are filled in once Blender has drawn the strip
        path = absolute(os.path.join(strip.directory, element.filename), library)
        try:
            image = bpy.data.images.load(path, check_existing=False)
        except RuntimeError:
            return None
        try:
            width, height = image.size
        finally:
            bpy.data.images.remove(image)
        return (int(width), int(height)) if width and height else None
    return None


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
            raise UserError(f"Strip '{strip.name}' has no image at frame {t}")
        path = absolute(os.path.join(directory, element.filename), library)
        if path not in index_of:
            index_of[path] = len(paths)
            paths.append(path)
        frames.append(index_of[path])
    return StripSource(strip.name, start, end, "IMAGE", path=paths, frames=frames, files=paths)


def check_media(source: StripSource) -> None:
    """Raise UserError naming the first missing media file."""
    for path in source.files:
        if not os.path.isfile(path):
            raise UserError(f"Strip '{source.strip_name}': media file not found: {path}")


# -- rendering through Blender ------------------------------------------------------------------

def render_strip(scene, strip, start: int, end: int, folder: str,
                 own_size: tuple[int, int] | None = None) -> list[str]:
    """Render the strip alone at timeline frames `start` .. `end - 1` to PNG files in `folder`
    (blocking; see `rendering` for what is set while it renders). Returns the files in
    timeline order."""
    files = [os.path.join(folder, f"render_{i:06d}.png") for i in range(end - start)]
    with rendering(scene, strip, own_size):
        for position, frame in enumerate(range(start, end)):
            render_frame(scene, strip, frame, files[position])
    return files


def render_frame(scene, strip, frame: int, path: str) -> None:
    """Render one timeline frame inside `rendering(scene, strip, ...)`."""
    scene.frame_set(frame)
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True, scene=scene.name)
    if not os.path.isfile(path):
        raise UserError(f"Blender did not render frame {frame} of strip '{strip.name}'")


@contextlib.contextmanager
def rendering(scene, strip, own_size: tuple[int, int] | None = None):
    """While inside: only the strip (its effect inputs, meta contents and the metas that hold
    it) is drawn, the scene's output and colour settings are 8-bit RGBA PNG with the
    'Standard' view transform at 100 % resolution, the strip is drawn opaque over nothing
    (its opacity and blend mode are the new strip's business), and with `own_size` the canvas
    is the media's size and the strip has no transform, crop or flip. Everything is restored
    on exit, also on failure."""
    keep = _strips_to_keep(strip)
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
                                      color_mode="RGBA", color_depth="8", compression=15,
                                      color_management="FOLLOW_SCENE"))
        stack.enter_context(_restored(scene.view_settings, view_transform="Standard",
                                      look="None", exposure=0.0, gamma=1.0,
                                      use_curve_mapping=False))
        stack.enter_context(_restored(scene.display_settings, display_device="sRGB"))
        stack.enter_context(_restored(strip, blend_type="ALPHA_OVER", blend_alpha=1.0))
        if own_size is not None:
            stack.enter_context(_restored(render, resolution_x=own_size[0],
                                          resolution_y=own_size[1], pixel_aspect_x=1.0,
                                          pixel_aspect_y=1.0))
            stack.enter_context(_restored(strip.transform, offset_x=0.0, offset_y=0.0,
                                          scale_x=1.0, scale_y=1.0, rotation=0.0))
            stack.enter_context(_restored(strip.crop, min_x=0, max_x=0, min_y=0, max_y=0))
            stack.enter_context(_restored(strip, use_flip_x=False, use_flip_y=False))
        for other in compat.strips_all(scene):
            if other not in keep and not other.mute:
                stack.enter_context(_restored(other, mute=True))
        yield


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
