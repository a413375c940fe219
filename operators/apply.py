"""`sequencer.gan_style_apply` and `sequencer.gan_style_reapply`: stylize strips into new
image-sequence strips.

Each source strip gets a folder of frames (`frame_000001.png` ... in timeline order) and, once
every frame is written, a new image strip on the lowest free channel above the source, starting
at the same timeline frame with the same length, selected and active (the source deselected).
It composites like its source: alpha and 16 bits pass through (`gan.frames`), and it copies the
source's colour space, blend mode, opacity, alpha mode and (for pixels taken before the
transform) its transform, crop and flip. Its custom property `gan_style` records the style
file, the settings and the source strip; *Re-apply* reads it.

The folder is named after the strip and style and marked with the job's key (`MARKER`: a hash
of the source, its media, the style file and the settings). A cancelled or failed job keeps
the frames it finished, and Apply with the same strip and settings finds that folder again and
makes only the missing frames (with Stabilize, the blending restarts where a run resumes). A
folder in which no frame was finished is removed.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import shutil

import bpy
from bpy.props import BoolProperty

from ..gan import fileio, protocol, stylefile
from ..vse import compat, errors, jobs, options, storage
from ..vse.errors import UserError
from ..vse.job import DONE, Job, Step
from . import farm

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


class StylizeOperator:
    """What the stylizing operators share: the style, and the Style panel's settings for every
    option the caller did not give (the panel's buttons, the Strip menu, F3 search)."""
    style: options.style()
    use_scene_settings: options.use_scene_settings()

    def invoke(self, context, _event):
        if not self.properties.is_property_set("use_scene_settings"):
            self.use_scene_settings = True
        return self.execute(context)

    def take_panel_settings(self, context):
        scene = compat.sequencer_scene(context)
        if self.use_scene_settings:
            options.from_panel(self, scene, options.STYLIZE)
        return scene


@options.stylize_options("mix", "stabilize", "stroke_scale", "use_frame_range", "frame_start",
                         "frame_end")
class SEQUENCER_OT_gan_style_apply(StylizeOperator, bpy.types.Operator):
    """Stylize the selected visual strips (or the active one) into new image strips above them"""
    bl_idname = "sequencer.gan_style_apply"
    bl_label = "Apply Style"
    bl_options = {'REGISTER', 'UNDO'}

    include_stylized: BoolProperty(
        name="Include Stylized Strips",
        description="Also stylize selected strips that are themselves results of a style "
                    "(off: they are skipped; use Re-apply to change their settings)")

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None and scene.sequence_editor is not None

    def execute(self, context):
        scene = self.take_panel_settings(context)
        strips = [s for s in compat.selected_strips(scene) if compat.is_visual(s)]
        if not strips:
            active = compat.active_strip(scene)
            strips = [active] if compat.is_visual(active) else []
        if not strips:
            self.report({'ERROR'}, "Select a visual strip to stylize (movie, image, scene, "
                                   "colour, text, effect or meta strip)")
            return {'CANCELLED'}
        if not self.include_stylized:
            skipped = [s for s in strips if is_stylized(s)]
            strips = [s for s in strips if not is_stylized(s)]
            if not strips:
                self.report({'ERROR'}, f"'{skipped[0].name}' is already stylized: use Re-apply "
                                       "to change its settings, or Include Stylized Strips")
                return {'CANCELLED'}
        try:
            frame_range = options.frame_range(self)
        except UserError as exc:
            return errors.report(self, exc)
        return start(self, context, scene, strips, frame_range)


@options.stylize_options("mix", "stabilize", "stroke_scale")
class SEQUENCER_OT_gan_style_reapply(StylizeOperator, bpy.types.Operator):
    """Stylize the source of the active stylized strip again with these settings, into a """ \
        """new strip over the same frames"""
    bl_idname = "sequencer.gan_style_reapply"
    bl_label = "Re-apply Style"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return is_stylized(compat.active_strip(compat.sequencer_scene(context)))

    def execute(self, context):
        scene = self.take_panel_settings(context)
        record = compat.active_strip(scene)["gan_style"]
        name = record.get("source_strip", "")
        source = compat.find_strip(scene, name)
        if source is None:
            self.report({'ERROR'}, f"The source strip '{name}' of this stylized strip is gone "
                                   "(removed or renamed): select a strip and use Apply")
            return {'CANCELLED'}
        first, last = (int(f) for f in record.get("source_frames", (0, -1)))
        frame_range = (first, last + 1) if last >= first else None
        return start(self, context, scene, [source], frame_range)


def start(operator, context, scene, strips, frame_range) -> set[str]:
    """Prepare and start the job that stylizes `strips` with the operator's settings."""
    # strips whose frames a farm made (an exported farm job) are added from those frames
    strips = farm.add_finished_strips(operator, context, scene, strips, frame_range)
    if not strips:
        return {'FINISHED'}
    return jobs.run(operator, scene, functools.partial(_prepare, operator, context, scene,
                                                       strips, frame_range))


def _prepare(operator, context, scene, strips, frame_range, work_dir) -> Job:
    style_path = jobs.chosen_style(context, scene, operator.style)
    info = stylefile.read_style_info(style_path)  # a broken file stops here, with its reason
    style_name = jobs.style_label(style_path)
    if frame_range is not None:
        strips = [s for s in strips if compat.left_handle(s) < frame_range[1]
                  and frame_range[0] < compat.right_handle(s)]
        if not strips:
            raise UserError("No selected strip has frames in the chosen range")

    sources = jobs.plan_sources(scene, strips, frame_range)
    out_parent, relative = storage.output_parent(bpy.data.filepath)
    storage.check_writable(out_parent, "the stylized frames", storage.output_hint(relative))
    device = storage.device(context)
    settings = {**options.stylize_fields(operator), "format": "png"}
    records, steps, created = [], [], []
    try:
        for strip, source in zip(strips, sources):
            key = _job_key(scene, source, style_path, settings)
            try:
                folder, new = _frames_folder(out_parent, f"{storage.safe_name(strip.name)}_"
                                             f"{storage.safe_name(style_name)}", key)
            except OSError as exc:
                raise UserError(
                    f"Cannot create a folder for the stylized frames in {out_parent}: "
                    f"{exc.strerror or exc}; {storage.output_hint(relative)}") from None
            if new:
                created.append(folder)
            names = output_files(source.count)
            missing = [i for i, n in enumerate(names)
                       if not os.path.isfile(os.path.join(folder, n))]
            steps.extend(_steps(scene, strip, source, missing, folder, work_dir, style_path,
                                settings, device))
            records.append(_record(strip, source, folder, relative,
                                   resumed=len(missing) < source.count))
    except BaseException:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    job = Job("apply", scene, f"Apply '{style_name}'", steps, work_dir,
              storage.worker_python(context), on_success=_add_strips, cleanup=_cleanup,
              claims=[r["folder"] for r in records])
    job.data = {"records": records, "style_path": style_path, "style_name": style_name,
                "style_title": info.name, "device": device, **settings}
    return job


def _steps(scene, strip, source, missing: list[int], folder: str, work_dir: str,
           style_path: str, settings: dict, device: str) -> list[Step]:
    """Render steps (strips Blender draws) and one worker run per unbroken run of missing
    frames, numbered by timeline position so that resumed frames land in their places."""
    if not missing:
        return []
    steps: list[Step] = []
    rendered: dict[int, str] = {}
    if source.method == "RENDER":
        render_dir = storage.reserve_folder(work_dir, "render_" + storage.safe_name(strip.name))
        step, rendered = jobs.render_step(scene, strip, source, missing, render_dir)
        steps.append(step)
    left = f" ({len(missing)} of {source.count} frames left)" if len(missing) < source.count else ""
    for run in _runs(missing):
        if rendered:
            spec = protocol.SourceSpec(path=[rendered[i] for i in run])
        else:
            spec = protocol.SourceSpec(path=source.path, frames=[source.frames[i] for i in run])
        job = protocol.StylizeJob(model=style_path, input=spec, output=folder, device=device,
                                  first_number=FIRST_NUMBER + run[0], **settings)
        steps.append(Step(protocol.job_to_dict(job), f"'{strip.name}'{left}",
                          weight=len(run), subject=f"Strip '{strip.name}'"))
    return steps


def _runs(positions: list[int]) -> list[list[int]]:
    """[0, 1, 2, 5, 6] -> [[0, 1, 2], [5, 6]]."""
    runs: list[list[int]] = []
    for position in positions:
        if runs and position == runs[-1][-1] + 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _job_key(scene, source, style_path: str, settings: dict) -> str:
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


def _frames_folder(parent: str, name: str, key: str) -> tuple[str, bool]:
    """(folder, created): the folder marked with `key` (`name`, `name_2`, ...), or a new one
    with the marker written. Folders of other jobs are never touched."""
    os.makedirs(parent, exist_ok=True)
    for number in range(1, 10000):
        candidate = os.path.join(parent, name if number == 1 else f"{name}_{number}")
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


def _record(strip, source, folder: str, relative: bool, resumed: bool) -> dict:
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


def _add_strips(job: Job) -> str:
    """Completion (main thread): check every frame and channel first, then add all strips."""
    records = job.data["records"]
    for record in records:
        missing = [f for f in output_files(record["count"])
                   if not os.path.isfile(os.path.join(record["folder"], f))]
        if missing:
            raise RuntimeError(f"The worker finished but {len(missing)} of {record['count']} "
                               f"frames are missing in {record['folder']}")
    job.data["keep_output"] = True  # complete frames: never deleted from here on
    folders = ", ".join(r["folder"] for r in records)
    scene = job.scene()
    if scene is None or scene.sequence_editor is None:
        raise RuntimeError(f"The scene '{job.scene_name}' is gone; the frames are in {folders}")
    placements, taken = [], []
    for record in records:
        container, channel = _placement(scene, record, taken)
        if channel is None:
            raise RuntimeError(f"No free channel above '{record['source']}' for the stylized "
                               f"strip; the frames are in {record['folder']}")
        taken.append((channel, record["start"], record["start"] + record["count"]))
        placements.append((container, channel))
    created = [_new_strip(container, channel, record, job.data)
               for record, (container, channel) in zip(records, placements)]
    _select(scene, created)
    compat.undo_push(job.title)
    names = ", ".join(f"'{s.name}' (channel {s.channel})" for s in created)
    frames = sum(r["count"] for r in records)
    resumed = " (resumed: only the missing frames were made)" if any(
        r["resumed"] for r in records) else ""
    return f"Added {names}: {frames} frames{resumed}"


def _select(scene, created: list) -> None:
    """The result becomes the selection and the active strip, as Blender's own add operators
    leave it, so that the next action (or Apply) is about it, not about its source again."""
    for strip in compat.strips_all(scene):
        if strip.select:
            strip.select = False
    for strip in created:
        strip.select = True
    scene.sequence_editor.active_strip = created[-1]


def _placement(scene, record: dict, taken: list):
    """The container (editor or meta strip) and the free channel for a record's new strip."""
    container = scene.sequence_editor
    if record["meta"]:
        meta = compat.find_strip(scene, record["meta"])
        container = meta if meta is not None and meta.type == 'META' else container
    source = compat.find_strip(scene, record["source"])
    below = source.channel if source is not None else record["channel"]
    start, end = record["start"], record["start"] + record["count"]
    return container, compat.free_channel_above(container, below, start, end, taken)


def _new_strip(container, channel: int, record: dict, data: dict):
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


def _cleanup(job: Job) -> None:
    """A cancelled or failed job keeps the frames it finished (Apply again resumes); folders
    in which no frame was finished are removed (this job created or marked them)."""
    if job.state == DONE or job.data.get("keep_output"):
        return
    kept = []
    for record in job.data.get("records", ()):
        folder = record["folder"]
        try:
            frames = [n for n in os.listdir(folder) if n.startswith("frame_")]
        except OSError:
            continue
        if frames:
            kept.append(f"{len(frames)} of {record['count']} in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if kept:
        job.message += (f"; finished frames are kept ({'; '.join(kept)}): Apply again with the "
                        "same settings to make only the missing ones")


classes = (SEQUENCER_OT_gan_style_apply, SEQUENCER_OT_gan_style_reapply)
