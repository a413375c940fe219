"""`sequencer.gan_style_apply` and `sequencer.gan_style_reapply`: stylize strips into new
image-sequence strips (what they are, where their frames go: `vse/stylized.py`).

Each source strip gets a frames folder and, once every frame is written, a new image strip on
the lowest free channel above the source, over the same timeline frames, selected and active
(the source deselected). A cancelled or failed job keeps the frames it finished, and Apply with
the same strip and settings finds that folder again and makes only the missing frames (with
Stabilize, the blending restarts where a run resumes). A folder in which no frame was finished
is removed.
"""

from __future__ import annotations

import functools
import os
import shutil

import bpy
from bpy.props import BoolProperty

from ..gan import protocol, stylefile
from ..vse import compat, errors, jobs, options, storage, stylized
from ..vse.errors import UserError
from ..vse.job import DONE, Job, Step
from . import farm

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
            skipped = [s for s in strips if stylized.is_stylized(s)]
            strips = [s for s in strips if not stylized.is_stylized(s)]
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
        return stylized.is_stylized(compat.active_strip(compat.sequencer_scene(context)))

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
            key = stylized.job_key(scene, source, style_path, settings)
            try:
                folder, new = stylized.frames_folder(
                    out_parent, f"{storage.safe_name(strip.name)}_{storage.safe_name(style_name)}",
                    key)
            except OSError as exc:
                raise UserError(
                    f"Cannot create a folder for the stylized frames in {out_parent}: "
                    f"{exc.strerror or exc}; {storage.output_hint(relative)}") from None
            if new:
                created.append(folder)
            names = stylized.output_files(source.count)
            missing = [i for i, n in enumerate(names)
                       if not os.path.isfile(os.path.join(folder, n))]
            steps.extend(_steps(scene, strip, source, missing, folder, work_dir, style_path,
                                settings, device))
            records.append(stylized.record(strip, source, folder, relative,
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
                                  first_number=stylized.FIRST_NUMBER + run[0], **settings)
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


def _add_strips(job: Job) -> str:
    """Completion (main thread): check every frame and channel first, then add all strips."""
    records = job.data["records"]
    for record in records:
        missing = [f for f in stylized.output_files(record["count"])
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
        container, channel = stylized.placement(scene, record, taken)
        if channel is None:
            raise RuntimeError(f"No free channel above '{record['source']}' for the stylized "
                               f"strip; the frames are in {record['folder']}")
        taken.append((channel, record["start"], record["start"] + record["count"]))
        placements.append((container, channel))
    created = [stylized.new_strip(container, channel, record, job.data)
               for record, (container, channel) in zip(records, placements)]
    stylized.select(scene, created)
    compat.undo_push(job.title)
    names = ", ".join(f"'{s.name}' (channel {s.channel})" for s in created)
    frames = sum(r["count"] for r in records)
    resumed = " (resumed: only the missing frames were made)" if any(
        r["resumed"] for r in records) else ""
    return f"Added {names}: {frames} frames{resumed}"


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
