"""`sequencer.gan_style_preview`: the current frame of the active strip, stylized, to look at.

Nothing is added to the timeline: the frame is written to the add-on's user folder and shown in
the Style panel and as the image datablock "GAN Style Preview" (open it in an Image Editor).
Previews run on the serving worker (`worker.ServedRun`): it stays alive between previews with
the style loaded, so only the first one pays for starting Python, importing torch and loading
the model. It exits after `worker.PREVIEW_IDLE_S` without work, and when Blender quits, the
add-on is disabled or another file is loaded.
"""

from __future__ import annotations

import functools
import os
import shutil

import bpy

from ..gan import protocol
from ..vse import compat, jobs, options, preview_frames, storage
from ..vse.job import DONE, Job, Step
from .apply import StylizeOperator

@options.stylize_options("mix", "stroke_scale")
class SEQUENCER_OT_gan_style_preview(StylizeOperator, bpy.types.Operator):
    """Stylize the current frame of the active strip with the current settings and show it """ \
        """in the Style panel and as the image "GAN Style Preview" (nothing is added)"""
    bl_idname = "sequencer.gan_style_preview"
    bl_label = "Preview Style Frame"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        return compat.is_visual(compat.active_strip(compat.sequencer_scene(context)))

    def execute(self, context):
        scene = self.take_panel_settings(context)
        strip = compat.active_strip(scene)
        frame = scene.frame_current
        start, end = compat.left_handle(strip), compat.right_handle(strip)
        if not start <= frame < end:
            self.report({'ERROR'}, f"Frame {frame} is not in strip '{strip.name}' (frames "
                                   f"{start}-{end - 1}): move the playhead over the strip")
            return {'CANCELLED'}
        return jobs.run(self, scene, functools.partial(self._prepare, context, scene, strip,
                                                       frame))

    def _prepare(self, context, scene, strip, frame: int, work_dir: str) -> Job:
        style_path = jobs.chosen_style(context, scene, self.style)
        style_name = jobs.style_label(style_path)
        (source,) = jobs.strip_sources(scene, [strip], work_dir, (frame, frame + 1))
        parent = storage.user_dir("previews")
        preview_frames.remove_old(parent)
        folder = storage.reserve_folder(parent, "preview")
        job = protocol.StylizeJob(
            model=style_path, input=protocol.SourceSpec(**source.spec()), output=folder,
            device=storage.device(context), format="png", first_number=1,
            **options.stylize_fields(self))
        step = Step(protocol.job_to_dict(job), f"'{strip.name}' frame {frame}",
                    subject=f"Strip '{strip.name}'")
        preview = Job("preview", scene, f"Preview '{style_name}'", [step], work_dir,
                      storage.worker_python(context), on_success=_show, cleanup=_cleanup,
                      claims=(folder,), served=True)
        preview.data = {"folder": folder, "label": f"'{strip.name}' frame {frame}, {style_name}"}
        return preview


def _show(job: Job) -> str:
    """Completion: load the frame into the preview image and remember it for the panel."""
    folder = job.data["folder"]
    names = [n for n in os.listdir(folder) if not n.startswith(".")]
    if len(names) != 1:
        raise RuntimeError(f"The worker finished but wrote no preview frame in {folder}")
    path = os.path.join(folder, names[0])
    image = bpy.data.images.get(preview_frames.IMAGE)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = preview_frames.IMAGE
    else:
        image.filepath = path
        image.reload()
    preview_frames.remember(job.scene_uid, path, job.data["label"])
    return f"Preview of {job.data['label']}: see the Style panel, or the image " \
           f"'{preview_frames.IMAGE}' in an Image Editor"


def _cleanup(job: Job) -> None:
    if job.state != DONE:
        shutil.rmtree(job.data.get("folder", ""), ignore_errors=True)


classes = (SEQUENCER_OT_gan_style_preview,)
