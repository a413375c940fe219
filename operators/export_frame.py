"""`sequencer.gan_style_export_frame`: the current frame of a strip to a PNG, to paint over.

The frame is written by the worker Python (`python -m gan frame`), exactly as training and
stylizing decode it, as `<strip>_frame_<NNNNNN>.png` (NNNNNN: the timeline frame) beside the
.blend (unsaved files: the add-on's output folder); nothing is overwritten. With `add_strip`
the PNG is added as a one-frame image strip above the footage at the current frame: once the
artist has painted over that file it is a painted keyframe of the footage (see keyframes.py).
With `filepath` (an image already painted) the operator only adds that file as the keyframe
strip at the current frame.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, StringProperty

from ..vse import compat, deps, errors, keyframes, storage, strip_source, worker
from ..vse.errors import UserError

EXPORT_TIMEOUT_S = 60.0


def frame_file_name(strip_name: str, frame: int) -> str:
    return f"{storage.safe_name(strip_name)}_frame_{frame:06d}.png"


def export_folder() -> str:
    """Beside the saved .blend, else the add-on's output folder."""
    if bpy.data.filepath:
        return os.path.dirname(os.path.abspath(bpy.data.filepath))
    return storage.output_parent("")[0]


def free_path(folder: str, name: str) -> str:
    """`folder/name`, or `stem_2.ext`, `stem_3.ext`, ... when taken."""
    stem, ext = os.path.splitext(name)
    for number in range(1, 10000):
        path = os.path.join(folder, name if number == 1 else f"{stem}_{number}{ext}")
        if not os.path.lexists(path):
            return path
    raise UserError(f"No free file name for {name} in {folder}")


def export_source(scene, strip, timeline_frame: int) -> tuple[str, int]:
    """(input path, source frame) for `python -m gan frame` at a timeline frame."""
    problem = keyframes.footage_problem(scene, strip)
    if problem:
        raise UserError(problem)
    source = strip_source.plan(scene, strip, timeline_frame, timeline_frame + 1)
    strip_source.check_media(source)
    if source.method == "MOVIE":
        return source.path, source.frames[0]
    return source.path[source.frames[0]], 0  # an image strip: the file shown at that frame


def run_export(python: str, path: str, frame: int, out: str) -> str:
    """Run `<python> -m gan frame` (`worker.run`: as every worker starts); returns the file."""
    done = worker.run(python, worker.gan_command("frame", "--input", path, "--frame", str(frame),
                                                 "--out", out),
                      EXPORT_TIMEOUT_S, "Writing the frame")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"exit status {done.returncode}"
        message = message[len("error: "):] if message.startswith("error: ") else message
        raise UserError(deps.explain(message, python))
    if not os.path.isfile(out):
        raise UserError(f"The worker Python wrote no file ({out})")
    return out


def add_keyframe_strip(scene, footage, painted: str, frame: int):
    """A one-frame image strip showing `painted` above `footage` at `frame`, placed like it."""
    container = compat.container_of(scene, footage)
    channel = compat.free_channel_above(container, footage.channel, frame, frame + 1)
    if channel is None:
        raise UserError(f"No free channel above '{footage.name}' at frame {frame}")
    directory, filename = os.path.split(painted)
    if bpy.data.filepath:
        try:
            directory = bpy.path.relpath(directory)
        except ValueError:  # another drive (Windows)
            pass
    stem = os.path.splitext(filename)[0]
    strip = compat.new_image_strip(container, stem, directory, [filename], channel, frame)
    for group in ("transform", "crop"):  # lie exactly over the footage
        source, target = getattr(footage, group), getattr(strip, group)
        for prop in source.bl_rna.properties:
            if prop.identifier != "rna_type" and not prop.is_readonly:
                setattr(target, prop.identifier, getattr(source, prop.identifier))
    strip.use_flip_x, strip.use_flip_y = footage.use_flip_x, footage.use_flip_y
    return strip


class SEQUENCER_OT_gan_style_export_frame(bpy.types.Operator):
    """Write the current frame of the active strip to a PNG to paint over, as a keyframe strip"""
    bl_idname = "sequencer.gan_style_export_frame"
    bl_label = "Export Frame to Paint"
    bl_options = {'REGISTER', 'UNDO'}

    add_strip: BoolProperty(
        name="Add Keyframe Strip", default=True,
        description="Add the PNG as a one-frame image strip above the footage at the current "
                    "frame: once painted over, it is a keyframe of the footage")
    filepath: StringProperty(
        name="Painted Image", subtype='FILE_PATH',
        options={'SKIP_SAVE', *compat.BLEND_RELATIVE_PATH},
        description="An image painted over this frame: add it as the keyframe strip at the "
                    "current frame (nothing is exported)")
    browse: BoolProperty(options={'HIDDEN', 'SKIP_SAVE'},
                         description="Choose the painted image in the file browser")
    filter_image: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})
    filter_folder: BoolProperty(default=True, options={'HIDDEN', 'SKIP_SAVE'})

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        strip = compat.active_strip(scene)
        if strip is None or strip.type not in strip_source.DIRECT_TYPES:
            cls.poll_message_set("The active strip must be a movie or image strip")
            return False
        if not compat.left_handle(strip) <= scene.frame_current < compat.right_handle(strip):
            cls.poll_message_set("The active strip is not under the current frame")
            return False
        return True

    def invoke(self, context, _event):
        if self.browse and not self.filepath:
            context.window_manager.fileselect_add(self)
            return {'RUNNING_MODAL'}
        return self.execute(context)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        strip = compat.active_strip(scene)
        frame = scene.frame_current
        try:
            if self.filepath:
                painted = storage.absolute(self.filepath)
                if not os.path.isfile(painted):
                    raise UserError(f"Painted image not found: {painted}")
                problem = keyframes.footage_problem(scene, strip)
                if problem:
                    raise UserError(problem)
                added = add_keyframe_strip(scene, strip, painted, frame)
                message = self._added_message(scene, strip, added, frame)
                self.report({'INFO'}, message[0].upper() + message[1:])
                return {'FINISHED'}
            path, index = export_source(scene, strip, frame)
            folder = storage.check_writable(export_folder(), "the frame",
                                            "save the .blend in a folder you can write to")
            out = free_path(folder, frame_file_name(strip.name, frame))
            run_export(storage.worker_python(context), path, index, out)
            if not self.add_strip:
                self.report({'INFO'}, f"Wrote {out} (source frame {index} of '{strip.name}')")
                return {'FINISHED'}
            added = add_keyframe_strip(scene, strip, out, frame)
        except errors.EXPECTED as exc:
            return errors.report(self, exc)
        self.report({'INFO'}, f"Wrote {out}; {self._added_message(scene, strip, added, frame)}; "
                              "paint over that file")
        return {'FINISHED'}

    @staticmethod
    def _added_message(scene, footage, added, frame: int) -> str:
        text = (f"added keyframe strip '{added.name}' (channel {added.channel}, frame {frame}) "
                f"above '{footage.name}'")
        if added.name not in {k.strip_name for k in keyframes.find(scene, footage)}:
            text += " (another strip lies between them: it is not a keyframe of that footage)"
        return text


classes = (SEQUENCER_OT_gan_style_export_frame,)
