"""Painted keyframes: image strips above the footage at the frames they depict.

The artist exports a frame of the footage (`sequencer.gan_style_export_frame`), paints over the
PNG in any paint program and leaves it as a one-image strip above the footage at that frame
(the operator adds that strip). Training then learns from the (footage frame, painted image)
pairs (`gan.protocol.KeyframeSpec`).

A keyframe of a footage strip F is a single-image IMAGE strip K that

- lies on a higher channel than F, in the same editor or meta strip,
- starts at a timeline frame inside F's visible range,
- is not muted (nor its channel), is not a stylized strip made by Apply (`gan_style`),
- and has no other movie or image-sequence strip between F and K covering that frame (that
  strip is what K was painted over).

K depicts the source frame of F shown at K's start frame, mapped by `strip_source.plan` (trims,
offsets, reversed strips, image-strip lookup: the same mapping training and stylizing use).
Footage is a movie or image strip whose pixels come from its files 1:1; other strips (scene,
colour, text, effects, meta, retimed strips) have no keyframes: `footage_problem` says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import compat, strip_source
from .errors import UserError
from .storage import absolute


@dataclass
class Keyframe:
    """One painted keyframe found above a footage strip."""
    strip_name: str           # the painted image strip
    footage_strip: str
    timeline_frame: int       # where the painted strip starts
    footage: str | list[str]  # the footage's source (movie file, or its image files in order)
    frame: int                # source index in `footage`
    painted: str              # absolute path of the painted image

    @property
    def exists(self) -> bool:
        return os.path.isfile(self.painted)

    def spec(self) -> dict:
        """The worker's KeyframeSpec as a dict (see gan.protocol.KeyframeSpec)."""
        return {"footage": self.footage, "frame": self.frame, "painted": self.painted}

    def missing_message(self) -> str:
        return (f"Keyframe strip '{self.strip_name}' (frame {self.timeline_frame} of "
                f"'{self.footage_strip}'): painted image not found: {self.painted}")


def footage_problem(scene, strip) -> str:
    """Why `strip` cannot have painted keyframes ('' when it can)."""
    if strip is None:
        return "no strip"
    if strip.type not in strip_source.DIRECT_TYPES:
        kind = strip.type.lower().replace("_", " ")
        return (f"'{strip.name}' is a {kind} strip: painted keyframes belong to movie and "
                "image strips")
    reason = strip_source.render_reason(scene, strip)
    if reason:
        return (f"'{strip.name}' is not read 1:1 from its files ({reason}): painted keyframes "
                "need a plain movie or image strip")
    return ""


def is_candidate(strip) -> bool:
    """A strip that can be a painted keyframe: one image, not muted, not made by Apply."""
    return (strip.type == 'IMAGE' and len(strip.elements) == 1 and not _muted(strip)
            and "gan_style" not in strip.keys())


def find(scene, footage, exclude=()) -> list[Keyframe]:
    """The painted keyframes of a footage strip, in timeline order ([] for other strips).

    `exclude`: names of strips that are not keyframes (e.g. the style strips of a training).
    Painted files are not checked here (see `check_files`).
    """
    if footage_problem(scene, footage):
        return []
    container = compat.container_of(scene, footage)
    start, end = strip_source.visible_range(footage)
    others = [s for s in compat.strips_of(container) if s != footage]
    found = []
    for strip in others:
        if strip.name in exclude or strip.channel <= footage.channel or not is_candidate(strip):
            continue
        frame = int(compat.left_handle(strip))
        if not start <= frame < end or _covered_between(others, footage, strip, frame):
            continue
        path, index = source_frame(scene, footage, frame)
        painted = absolute(os.path.join(strip.directory, strip.elements[0].filename),
                           strip.id_data.library)
        found.append(Keyframe(strip.name, footage.name, frame, path, index, painted))
    found.sort(key=lambda k: (k.timeline_frame, k.strip_name))
    return found


def source_frame(scene, footage, timeline_frame: int) -> tuple[str | list[str], int]:
    """(source path, source index) of what a footage strip shows at a timeline frame.

    Movies: (movie file, frame). Image strips: (all of the strip's image files in order,
    index of the file shown), so that keyframes of one strip share one footage path.
    """
    source = strip_source.plan(scene, footage, timeline_frame, timeline_frame + 1)
    if source.method == "MOVIE":
        return source.path, source.frames[0]
    shown = source.path[source.frames[0]]
    files = image_files(footage)
    return files, files.index(shown)


def image_files(strip) -> list[str]:
    """Absolute paths of an image strip's files, in strip order."""
    library = strip.id_data.library
    return [absolute(os.path.join(strip.directory, e.filename), library) for e in strip.elements]


def check_files(keyframes: list[Keyframe]) -> None:
    """Raise UserError for the first keyframe whose painted image file is missing."""
    for keyframe in keyframes:
        if not keyframe.exists:
            raise UserError(keyframe.missing_message())


@dataclass
class Found:
    """What `survey` found for one strip: its keyframes, or why it has none."""
    strip: object
    keyframes: list[Keyframe]
    problem: str = ""  # why the strip cannot have keyframes (`footage_problem`)
    error: str = ""    # why its keyframes could not be found (frames that cannot be mapped)


def survey(scene, strips, exclude=()) -> list[Found]:
    """Look for the keyframes of each strip once (what the Train panel and training share)."""
    found = []
    for strip in strips:
        problem = footage_problem(scene, strip)
        if problem:
            found.append(Found(strip, [], problem=problem))
            continue
        try:
            found.append(Found(strip, find(scene, strip, exclude)))
        except UserError as exc:
            found.append(Found(strip, [], error=str(exc)))
    return found


def keyframe_names(found: list[Found]) -> set[str]:
    """Names of the strips that are keyframes in a `survey` (a strip whose frames cannot be
    mapped has none here: training reports it)."""
    return {k.strip_name for f in found for k in f.keyframes}


def _muted(strip) -> bool:
    if strip.mute:
        return True
    container = strip.parent_meta() or strip.id_data.sequence_editor
    channels = getattr(container, "channels", None)
    try:
        return bool(channels[strip.channel].mute) if channels is not None else False
    except (IndexError, KeyError, TypeError):
        return False


def _is_footage_like(strip) -> bool:
    """A movie or image-sequence strip of the user's (not a still, not a stylized strip)."""
    sequence = strip.type == 'MOVIE' or (strip.type == 'IMAGE' and len(strip.elements) > 1)
    return sequence and not _muted(strip) and "gan_style" not in strip.keys()


def _covered_between(others, footage, keyframe, frame: int) -> bool:
    """True when another movie/image-sequence strip between the two channels shows `frame`."""
    for strip in others:
        if (footage.channel < strip.channel < keyframe.channel and _is_footage_like(strip)
                and compat.left_handle(strip) <= frame < compat.right_handle(strip)):
            return True
    return False


def default_content(scene, style_names=frozenset()) -> list:
    """The selected visual strips that are neither style sources nor painted keyframes."""
    return content_survey(scene, style_names)[0]


def content_survey(scene, style_names=frozenset()) -> tuple[list, list[Found]]:
    """`default_content` and what `survey` found above each of those strips, from
    one search (the Train panel draws both)."""
    chosen = [s for s in compat.selected_strips(scene)
              if compat.is_visual(s) and s.name not in style_names]
    found = survey(scene, chosen, exclude=style_names)
    painted = keyframe_names(found)
    content = [f for f in found if f.strip.name not in painted]
    return [f.strip for f in content], content
