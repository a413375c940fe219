"""`sequencer.gan_style_apply`: stylize strips into new image-sequence strips.

Each source strip gets a new folder of frames (`frame_000001.png` ... in timeline order) and,
once every frame is written, a new image strip on the lowest free channel above the source,
starting at the same timeline frame with the same length. Its custom property `gan_style`
records the style file, the settings and the source strip. Cancel or failure adds no strip and
removes the unfinished frame folders (they were created by this job, nothing else is touched).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shutil

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ..gan import protocol, stylefile
from . import compat, jobs, library, options, runner, storage

FRAME_PATTERN = "frame_{:06d}.png"
FIRST_NUMBER = 1


def output_files(count: int) -> list[str]:
    return [FRAME_PATTERN.format(FIRST_NUMBER + i) for i in range(count)]


class SEQUENCER_OT_gan_style_apply(bpy.types.Operator):
    """Stylize the selected visual strips (or the active one) into new image strips above them"""
    bl_idname = "sequencer.gan_style_apply"
    bl_label = "Apply Style"
    bl_options = {'REGISTER', 'UNDO'}

    style: StringProperty(
        name="Style",
        description="Library name of the style, or the path of a .ganstyle file "
                    "(empty: the style chosen in the Style panel)")
    mix: FloatProperty(
        name="Mix", description="0 keeps the original pixels, 1 is the full style",
        default=1.0, min=0.0, max=1.0, subtype='FACTOR')
    use_frame_range: BoolProperty(
        name="Limit Frames",
        description="Stylize only the timeline frames from Start to End "
                    "(off: each strip's whole visible range)")
    stabilize: FloatProperty(
        name="Stabilize", default=0.0, min=0.0, max=1.0, subtype='FACTOR',
        description="Against flicker: blend in the previous stylized frame moved by the "
                    "optical flow (0: off, each frame on its own; 0.5-0.7 calms flicker "
                    "by a third to a half)")
    stroke_scale: options.stroke_scale(options.APPLY_STROKE_SCALE)
    frame_start: IntProperty(name="Start", description="First timeline frame", default=1)
    frame_end: IntProperty(name="End", description="Last timeline frame (included)", default=250)

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None and scene.sequence_editor is not None

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        strips = [s for s in compat.selected_strips(scene) if compat.is_visual(s)]
        if not strips:
            active = compat.active_strip(scene)
            strips = [active] if compat.is_visual(active) else []
        if not strips:
            self.report({'ERROR'}, "Select a visual strip to stylize (movie, image, scene, "
                                   "colour, text, effect or meta strip)")
            return {'CANCELLED'}
        return jobs.run(self, scene, functools.partial(self._prepare, context, scene, strips))

    def _prepare(self, context, scene, strips, work_dir) -> runner.Job:
        props = getattr(scene, "gan_style", None)
        style_text = self.style or (props.style_name if props is not None else "")
        style_path = library.resolve_style(storage.library_dir(context), style_text)
        info = stylefile.read_style_info(style_path)  # a broken file stops here, with its reason
        style_name = jobs.style_label(style_path)

        frame_range = None
        if self.use_frame_range:
            if self.frame_end < self.frame_start:
                raise jobs.PrepareError("The frame range ends before it starts")
            frame_range = (self.frame_start, self.frame_end + 1)
            strips = [s for s in strips if compat.left_handle(s) < frame_range[1]
                      and frame_range[0] < compat.right_handle(s)]
            if not strips:
                raise jobs.PrepareError("No selected strip has frames in the chosen range")

        sources = jobs.strip_sources(scene, strips, work_dir, frame_range)
        out_parent, relative = storage.output_parent(bpy.data.filepath)
        storage.check_writable(out_parent, "the stylized frames", storage.output_hint(relative))
        device = storage.device(context)
        records, steps, folders = [], [], []
        try:
            for strip, source in zip(strips, sources):
                try:
                    folder = storage.reserve_folder(out_parent, f"{storage.safe_name(strip.name)}"
                                                    f"_{storage.safe_name(style_name)}")
                except OSError as exc:
                    raise storage.FolderError(
                        f"Cannot create a folder for the stylized frames in {out_parent}: "
                        f"{exc.strerror or exc}; {storage.output_hint(relative)}") from None
                folders.append(folder)
                job = protocol.StylizeJob(
                    model=style_path, input=protocol.SourceSpec(**source.spec()), output=folder,
                    mix=float(self.mix), device=device, format="png", first_number=FIRST_NUMBER,
                    stabilize=float(self.stabilize), stroke_scale=float(self.stroke_scale))
                steps.append(runner.Step(protocol.job_to_dict(job), f"'{strip.name}'",
                                         weight=source.count, subject=f"Strip '{strip.name}'"))
                records.append(_record(scene, strip, source, folder, relative))
        except BaseException:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        title = f"Apply '{style_name}'"
        job = runner.Job("apply", scene, title, steps, work_dir, storage.worker_python(context),
                         on_success=_add_strips, cleanup=_cleanup, claims=folders)
        job.data = {"records": records, "style_path": style_path, "style_name": style_name,
                    "style_title": info.name, "mix": float(self.mix), "device": device,
                    "stabilize": float(self.stabilize), "stroke_scale": float(self.stroke_scale)}
        return job


def _record(scene, strip, source, folder: str, relative: bool) -> dict:
    """What the new strip needs, taken now (the source may change while the job runs)."""
    meta = strip.parent_meta()
    record = {"source": strip.name, "meta": meta.name if meta is not None else "",
              "channel": strip.channel, "start": source.start, "count": source.count,
              "folder": folder, "relative": relative, "method": source.method}
    if source.reads_media:  # the stylized pixels still need the source's placement
        t, c = strip.transform, strip.crop
        record["transform"] = {"offset_x": t.offset_x, "offset_y": t.offset_y,
                               "scale_x": t.scale_x, "scale_y": t.scale_y,
                               "rotation": t.rotation, "origin": tuple(t.origin),
                               "filter": t.filter}
        record["crop"] = {"min_x": c.min_x, "max_x": c.max_x, "min_y": c.min_y, "max_y": c.max_y}
        record["flip"] = (strip.use_flip_x, strip.use_flip_y)
    return record


def _add_strips(job: runner.Job) -> str:
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
    compat.undo_push(job.title)
    names = ", ".join(f"'{s.name}' (channel {s.channel})" for s in created)
    return f"Added {names}"


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
    strip = compat.new_image_strip(container, f"{record['source']} [{data['style_name']}]",
                                   directory, output_files(record["count"]), channel, start)
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


def _cleanup(job: runner.Job) -> None:
    """Unfinished output is removed: those folders were created empty by this job."""
    if job.state == runner.DONE or job.data.get("keep_output"):
        return
    for record in job.data.get("records", ()):
        shutil.rmtree(record["folder"], ignore_errors=True)


classes = (SEQUENCER_OT_gan_style_apply,)
