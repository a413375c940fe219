"""The stylized strips: the folders their frames go to, what they record of their source, and
adding them above it.

A stylized strip is an image strip of `frame_000001.png` ... (timeline order) in a frames
folder marked with its job's key (`MARKER`: a hash of the source, its media, the style file and
the settings), so that Apply with the same strip and settings finds the folder again. It lies
on the lowest free channel above its source, over the same timeline frames, composites like
it (alpha and 16 bits pass through, colour space, blend mode, opacity, alpha mode, and for
pixels taken before the transform its transform, crop and flip) and records the style file,
the settings and the source strip in its custom property `gan_style` (Re-apply reads it).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os

import bpy

from ..gan import fileio
from . import compat, storage

FRAME_PATTERN = "frame_{:06d}.png"
FIRST_NUMBER = 1
MARKER = "gan_style_frames.json"  # in a frames folder: the key of the job that fills it
# Properties that say how a strip composites; the stylized strip takes them from its source.
COMPOSITE_PROPERTIES = ("blend_type", "blend_alpha", "alpha_mode", "color_multiply",
                        "color_saturation", "use_float")


def output_files(count: int) -> list[str]:
    return [FRAME_PATTERN.format(FIRST_NUMBER + i) for i in range(count)]


def is_stylized(strip) -> bool:
    """A strip this add-on made (it records its source and settings)."""
    return strip is not None and "gan_style" in strip.keys()


def job_key(scene, source, style_path: str, settings: dict) -> str:
    """What the frames depend on: the strip's range and source frames, its media files, the
    style file (path, size and time: a style retrained under its name is another style) and
    the settings. Media are taken as unchanged, as Blender does (a file that was missing or
    damaged and has been put back must resume); a rendered strip is known by its scene, name
    and range."""
    def stamp(path):
        try:
            stat = os.stat(path)
            return [path, stat.st_size, stat.st_mtime_ns]
        except OSError:
            return [path]
    description = {
        "source": [source.strip_name, source.method, source.start, source.end,
                   source.frames, list(source.own_size or ())],
        "media": list(source.files),
        "scene": scene.name if source.method == "RENDER" else "",
        "style": stamp(style_path), "settings": settings}
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def frames_folder(parent: str, name: str, key: str) -> tuple[str, bool]:
    """(folder, created): the folder marked with `key` (`name`, `name_2`, ...), or a new one
    with the marker written. Folders of other jobs are never touched."""
    os.makedirs(parent, exist_ok=True)
    for candidate in storage.numbered_names(parent, name):
        try:
            os.mkdir(candidate)
        except FileExistsError:
            if _marker_key(candidate) == key:
                return candidate, False
            continue
        text = json.dumps({"key": key, "note": "GAN Style frames; applying the same strip "
                           "with the same settings again completes this folder"}).encode()
        fileio.atomic_write(os.path.join(candidate, MARKER), lambda h: h.write(text),
                            overwrite=False)
        return candidate, True
    raise OSError(f"no free folder name for {name!r} in {parent}")


def _marker_key(folder: str) -> str:
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ""
    return data.get("key", "") if isinstance(data, dict) else ""


def record(strip, source, folder: str, relative: bool, resumed: bool) -> dict:
    """What the new strip needs, taken now (the source may change while the job runs)."""
    meta = strip.parent_meta()
    record = {"source": strip.name, "meta": meta.name if meta is not None else "",
              "channel": strip.channel, "start": source.start, "count": source.count,
              "folder": folder, "relative": relative, "method": source.method,
              "resumed": resumed,
              "composite": {k: _plain(getattr(strip, k)) for k in COMPOSITE_PROPERTIES
                            if hasattr(strip, k)}}
    settings = getattr(strip, "colorspace_settings", None)
    # Pixels read from the files keep the files' encoding; renders are sRGB ('Standard').
    record["colorspace"] = (settings.name if settings is not None and source.method != "RENDER"
                            else "sRGB")
    if source.reads_media:  # the stylized pixels still need the source's placement
        t, c = strip.transform, strip.crop
        record["transform"] = {"offset_x": t.offset_x, "offset_y": t.offset_y,
                               "scale_x": t.scale_x, "scale_y": t.scale_y,
                               "rotation": t.rotation, "origin": tuple(t.origin),
                               "filter": t.filter}
        record["crop"] = {"min_x": c.min_x, "max_x": c.max_x, "min_y": c.min_y, "max_y": c.max_y}
        record["flip"] = (strip.use_flip_x, strip.use_flip_y)
    return record


def _plain(value):
    return tuple(value) if hasattr(value, "__len__") and not isinstance(value, str) else value


def select(scene, created: list) -> None:
    """The result becomes the selection and the active strip, as Blender's own add operators
    leave it, so that the next action (or Apply) is about it, not about its source again."""
    for strip in compat.strips_all(scene):
        if strip.select:
            strip.select = False
    for strip in created:
        strip.select = True
    scene.sequence_editor.active_strip = created[-1]


def placement(scene, record: dict, taken: list):
    """The container (editor or meta strip) and the free channel for a record's new strip."""
    container = scene.sequence_editor
    if record["meta"]:
        meta = compat.find_strip(scene, record["meta"])
        container = meta if meta is not None and meta.type == 'META' else container
    source = compat.find_strip(scene, record["source"])
    below = source.channel if source is not None else record["channel"]
    start, end = record["start"], record["start"] + record["count"]
    return container, compat.free_channel_above(container, below, start, end, taken)


def new_strip(container, channel: int, record: dict, data: dict):
    start, end = record["start"], record["start"] + record["count"]
    directory = record["folder"]
    if record["relative"] and bpy.data.filepath:
        try:
            directory = bpy.path.relpath(directory)
        except ValueError:  # another drive (Windows)
            pass
    files = record.get("files") or output_files(record["count"])  # "files": farm frames
    strip = compat.new_image_strip(container, f"{record['source']} [{data['style_name']}]",
                                   directory, files, channel, start)
    for key, value in record["composite"].items():
        try:
            setattr(strip, key, value)
        except (AttributeError, TypeError, ValueError):  # not on an image strip here
            pass
    try:
        strip.colorspace_settings.name = record["colorspace"]
    except TypeError:  # a colour space this configuration lacks: keep the default
        pass
    if "transform" in record:
        for key, value in record["transform"].items():
            setattr(strip.transform, key, value)
        for key, value in record["crop"].items():
            setattr(strip.crop, key, value)
        strip.use_flip_x, strip.use_flip_y = record["flip"]
    strip["gan_style"] = {
        "style_file": data["style_path"],
        "style_name": data["style_title"],
        "mix": data["mix"],
        "device": data["device"],
        "source_strip": record["source"],
        "source_frames": [start, end - 1],
        "source_pixels": record["method"],
        "stabilize": data.get("stabilize", 0.0),
        "stroke_scale": data.get("stroke_scale", 1.0),
        "settings": json.dumps({"mix": data["mix"], "device": data["device"], "format": "png",
                                "stabilize": data.get("stabilize", 0.0),
                                "stroke_scale": data.get("stroke_scale", 1.0)}),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    return strip
