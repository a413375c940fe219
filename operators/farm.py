"""`sequencer.gan_style_export_farm_job`: a render-farm job for the selected strips, and Apply's
reuse of the frames a farm finished.

The job is an Open Job Description bundle written by `gan.farm` (no torch here): the style file
copied in, each strip's source frames (its media files, or frames Blender renders first for
strips it must draw), the settings, the output folders and the chunk size. The farm writes
`frame_NNNNNN.png` numbered by source frame, so a strip that shows source frames out of order
(reversed, held frames) maps its timeline frames onto those files.

Each export is remembered in the scene (custom property `gan_style_farm`: a key of strip,
frames, style file contents and settings -> the output folder and the files in timeline order).
*Apply* with the same strip and settings adds its strip from those frames once they are all
there, instead of stylizing again (`add_finished_strips`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import bpy
from bpy.props import IntProperty, StringProperty

from ..gan import farm, stylefile
from ..vse import compat, errors, jobs, library, options, storage, strip_source, stylized
from ..vse.errors import UserError

RECORDS = "gan_style_farm"
DEFAULT_DIRECTORY = "//gan_style/farm/"


def _settings(operator) -> dict:
    """The settings of the job's key (rounded: a float property read back differs slightly)."""
    return {k: round(v, 6) for k, v in options.stylize_fields(operator).items()}


def farm_key(source: strip_source.StripSource, style_digest: str, settings: dict) -> str:
    """What makes farm frames the right ones for an Apply: the strip and its frames, the style
    file's contents and the settings."""
    data = {"strip": source.strip_name, "start": source.start, "end": source.end,
            "method": source.method, "path": source.path, "frames": source.frames,
            "reason": source.reason, "style": style_digest, **settings}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def _records(scene) -> dict:
    try:
        records = json.loads(scene.get(RECORDS, "{}"))
    except (TypeError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _farm_source(source, output: str, render_dir: str | None) -> tuple[farm.FarmSource, list]:
    """The run of frames the farm makes for one strip, and the files of its timeline frames."""
    if source.method == "RENDER":
        run = farm.FarmSource(source.strip_name, render_dir, 0, source.count - 1, output,
                              bundled=True)
        return run, [f"frame_{i:06d}.png" for i in range(source.count)]
    files = [f"frame_{i:06d}.png" for i in source.frames]
    if source.method == "IMAGE":
        folder = os.path.dirname(source.path[0])
        if any(os.path.dirname(p) != folder for p in source.path):
            raise UserError(f"Strip '{source.strip_name}': its images are not in one "
                            "folder")
        run = farm.FarmSource(source.strip_name, folder, 0, len(source.path) - 1, output,
                              files=[os.path.basename(p) for p in source.path])
        return run, files
    run = farm.FarmSource(source.strip_name, source.path, min(source.frames),
                          max(source.frames), output)
    return run, files


# Stabilize: chunks start a few frames early, so that they meet without a seam.
@options.stylize_options("mix", "stabilize", "stroke_scale", "use_frame_range", "frame_start",
                         "frame_end")
class SEQUENCER_OT_gan_style_export_farm_job(bpy.types.Operator):
    """Write a render-farm job (Open Job Description bundle for AWS Deadline Cloud) that
    stylizes the selected strips in chunks; Apply then adds the farm's frames"""
    bl_idname = "sequencer.gan_style_export_farm_job"
    bl_label = "Export Farm Job"
    # No redo panel (REGISTER): changing a setting there would run the export again and write
    # another bundle. UNDO: the scene's record of the export is undoable.
    bl_options = {'UNDO'}

    style: options.style()
    use_scene_settings: options.use_scene_settings()
    directory: StringProperty(
        name="Job Folder", subtype='DIR_PATH', default=DEFAULT_DIRECTORY,
        description="Where the job bundle is written (a new folder in it)")
    output_directory: StringProperty(
        name="Output Folder", subtype='DIR_PATH',
        description="Where the farm writes the frames, one folder per strip (empty: beside "
                    "the bundle). Apply finds them there")
    chunk_size: IntProperty(name="Chunk Size", default=farm.DEFAULT_CHUNK_SIZE, min=1,
                            soft_max=500, description="Frames per farm task")
    python: StringProperty(
        name="Farm Python", default="python",
        description="The Python on the farm's workers, with torch, numpy and OpenCV")

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None and scene.sequence_editor is not None

    def invoke(self, context, _event):
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, _context):
        layout = self.layout
        layout.use_property_split = True
        for name in ("chunk_size", "directory", "output_directory", "python"):
            layout.prop(self, name)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        if self.use_scene_settings:
            options.from_panel(self, scene, options.STYLIZE)
        strips = [s for s in compat.selected_strips(scene) if compat.is_visual(s)]
        if not strips and compat.is_visual(compat.active_strip(scene)):
            strips = [compat.active_strip(scene)]
        if not strips:
            self.report({'ERROR'}, "Select the strips to stylize on the farm")
            return {'CANCELLED'}
        try:
            message = self._export(context, scene, strips)
        except errors.EXPECTED as exc:
            return errors.report(self, exc)
        self.report({'INFO'}, message)
        return {'FINISHED'}

    def _export(self, context, scene, strips) -> str:
        props = getattr(scene, "gan_style", None)
        style_text = self.style or (props.style_name if props is not None else "")
        style_path = library.resolve_style(storage.library_path(context), style_text)
        stylefile.read_style_info(style_path)  # a broken file stops here, with its reason
        style_name = jobs.style_label(style_path)
        start, end = options.frame_range(self) or (None, None)
        sources = [strip_source.plan(scene, s, start, end) for s in strips]
        for source in sources:
            strip_source.check_media(source)
        if not bpy.data.filepath and not (os.path.isabs(self.directory)
                                          and (not self.output_directory
                                               or os.path.isabs(self.output_directory))):
            raise UserError("Save the .blend first, or choose absolute job and output "
                            "folders")
        parent = storage.check_writable(storage.absolute(self.directory), "the farm job",
                                        "choose another job folder")
        blend_name = os.path.splitext(os.path.basename(bpy.data.filepath))[0] or "untitled"
        bundle = _free_name(parent, f"{storage.safe_name(blend_name)}_"
                                    f"{storage.safe_name(style_name)}")
        outputs = (storage.absolute(self.output_directory) if self.output_directory
                   else bundle + "_frames")
        settings = _settings(self)
        digest = farm.file_digest(style_path)
        runs, records, renders = [], {}, []
        try:
            for strip, source in zip(strips, sources):
                render_dir = None
                if source.method == "RENDER":
                    render_dir = tempfile.mkdtemp(prefix=".render_", dir=parent)
                    renders.append(render_dir)
                    print(f"GAN Style: rendering {source.count} frames of '{strip.name}' for the "
                          f"farm ({source.reason})", flush=True)
                    strip_source.render_strip(scene, strip, source.start, source.end, render_dir)
                output = os.path.join(outputs, storage.safe_name(strip.name))
                run, files = _farm_source(source, output, render_dir)
                runs.append(run)
                records[farm_key(source, digest, settings)] = {
                    "folder": output, "files": files, "bundle": bundle}
            farm.write_bundle(bundle, style_path, runs, farm.FarmSettings(
                mix=settings["mix"], stabilize=settings["stabilize"],
                stroke_scale=settings["stroke_scale"], chunk_size=int(self.chunk_size),
                device="auto", python=self.python.strip() or "python"),  # the farm's GPUs
                title=f"{blend_name} [{style_name}]")
        finally:
            for folder in renders:  # moved into the bundle, or not needed any more
                shutil.rmtree(folder, ignore_errors=True)
        known = _records(scene)
        known.update(records)
        scene[RECORDS] = json.dumps(known)
        frames = sum(run.last - run.first + 1 for run in runs)
        return (f"Wrote the farm job {bundle} ({len(runs)} strips, {frames} frames in chunks of "
                f"{self.chunk_size}); submit it with: deadline bundle submit {bundle}")


def _free_name(parent: str, name: str) -> str:
    """`parent/name`, `name_2`, ... where neither the bundle nor its frames folder exists."""
    for number in range(1, 10000):
        candidate = os.path.join(parent, name if number == 1 else f"{name}_{number}")
        if not os.path.lexists(candidate) and not os.path.lexists(candidate + "_frames"):
            return candidate
    raise UserError(f"No free folder name for {name!r} in {parent}")


# -- Apply: frames a farm finished ---------------------------------------------------------------

def add_finished_strips(operator, context, scene, strips, frame_range) -> list:
    """Add the stylized strip of every strip whose farm frames (same strip, frames, style and
    settings as an exported farm job) are all there; returns the strips still to stylize.
    `frame_range`: (first, last + 1) timeline frames, or None for each strip's own."""
    records = _records(scene)
    if not records:
        return strips
    props = getattr(scene, "gan_style", None)
    try:
        style_path = library.resolve_style(storage.library_path(context),
                                           operator.style or (props.style_name if props else ""))
        info = stylefile.read_style_info(style_path)
        start, end = frame_range or (None, None)
        digest = farm.file_digest(style_path)
    except errors.EXPECTED:
        return strips  # Apply itself reports the problem
    settings = _settings(operator)
    data = {"style_path": style_path, "style_name": jobs.style_label(style_path),
            "style_title": info.name, "device": storage.device(context), **settings}
    remaining, added, taken = [], [], []
    for strip in strips:
        try:
            source = strip_source.plan(scene, strip, start, end)
        except UserError:
            remaining.append(strip)
            continue
        found = records.get(farm_key(source, digest, settings))
        if found is None or not all(os.path.isfile(os.path.join(found["folder"], name))
                                    for name in found["files"]):
            remaining.append(strip)
            continue
        record = stylized.record(strip, source, found["folder"], bool(bpy.data.filepath),
                                 resumed=False)
        record["files"] = found["files"]
        container, channel = stylized.placement(scene, record, taken)
        if channel is None:
            remaining.append(strip)  # Apply reports the missing channel
            continue
        taken.append((channel, record["start"], record["start"] + record["count"]))
        added.append(stylized.new_strip(container, channel, record, data))
    if added:
        compat.undo_push(f"Apply '{data['style_name']}' (farm frames)")
        names = ", ".join(f"'{s.name}' (channel {s.channel})" for s in added)
        operator.report({'INFO'}, f"Added {names} from the farm's frames")
    return remaining


classes = (SEQUENCER_OT_gan_style_export_farm_job,)
