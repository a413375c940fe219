"""`sequencer.gan_style_train`: learn a style into the style library.

Style sources: strips (`style_strips`) and/or an image or video file (`style_path`), and/or
painted keyframes: single-image strips above the content strips at the frames they depict
(`use_keyframes`, see keyframes.py; keyframes alone are enough). Content: the footage the
style is for (`content_strips`, default: the selected visual strips that are not style sources
or keyframes). `temporal_weight` weighs the training term for temporal stability (0: off).
The style file is `<library>/<name>.ganstyle`; checkpoints and previews go to
`<library>/.training/<name>/`, kept when training is cancelled so that training the same name
again resumes from there.
"""

from __future__ import annotations

import functools
import os
import shutil

import bpy
from bpy.props import BoolProperty, CollectionProperty, IntProperty, StringProperty

from ..gan import protocol
from ..vse import compat, jobs, keyframes, library, options, storage
from ..vse.errors import UserError
from ..vse.job import Job, RenderStep, Step

PREVIEW_EVERY_S = 15.0


class GANSTYLE_PG_strip_name(bpy.types.PropertyGroup):
    """A strip, by name (operator arguments: `[{"name": "Clip"}]`)."""
    name: StringProperty(name="Strip")


@options.train_options
class SEQUENCER_OT_gan_style_train(bpy.types.Operator):
    """Learn a style from style sources and footage, into the style library"""
    bl_idname = "sequencer.gan_style_train"
    bl_label = "Train Style"
    bl_options = {'REGISTER'}

    name: StringProperty(name="Name", description="Library name of the new style")
    style_strips: CollectionProperty(
        type=GANSTYLE_PG_strip_name, name="Style Strips",
        description="Strips that show the style (movie, image or any visual strip)")
    style_path: StringProperty(
        name="Style File", subtype='FILE_PATH',
        description="An image, image folder or video that shows the style")
    content_strips: CollectionProperty(
        type=GANSTYLE_PG_strip_name, name="Content Strips",
        description="Footage the style is for (empty: the selected strips that are not style "
                    "strips)")
    steps: IntProperty(name="Steps", description="Train this many steps instead of for a time "
                       "budget (0: use the time budget)", default=0, min=0)
    resume: BoolProperty(
        name="Resume", default=True,
        description="Continue an unfinished training of the same name from its checkpoint "
                    "(off: start over, discarding that checkpoint)")
    use_scene_settings: options.use_scene_settings()

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None

    def invoke(self, context, _event):
        if not self.properties.is_property_set("use_scene_settings"):
            self.use_scene_settings = True
        return self.execute(context)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        if self.use_scene_settings:
            self._take_panel_settings(scene)
        return jobs.run(self, scene, functools.partial(self._prepare, context, scene))

    def _take_panel_settings(self, scene) -> None:
        """What the caller did not give comes from the Train panel (the scene's settings)."""
        options.from_panel(self, scene, options.TRAIN, options.TRAIN_PREFIX)
        panel = getattr(scene, "gan_style", None)
        if panel is None:
            return
        given = self.properties.is_property_set
        if not given("name"):
            self.name = panel.train_name
        if not given("style_path"):
            self.style_path = panel.train_style_path
        if not given("style_strips") and panel.train_style_strip:
            self.style_strips.add().name = panel.train_style_strip

    def _prepare(self, context, scene, work_dir: str) -> Job:
        name = self.name.strip()
        if not name:
            raise UserError("Give the new style a name")
        if name != storage.safe_name(name, limit=200):
            raise UserError(f"'{name}' cannot be a style name: use letters, digits, "
                            "'-', '_' and '.'")
        try:
            lib = storage.library_dir(context)
        except OSError as exc:
            raise UserError(f"Cannot create the style library folder: "
                            f"{exc.strerror or exc}: {exc.filename or ''}; choose "
                            "another folder in the add-on preferences") from None
        storage.check_writable(lib, "the style", "choose another style library folder in the "
                               "add-on preferences")
        out = storage.style_path_in_library(lib, name)
        if os.path.exists(out):
            raise UserError(f"A style named '{name}' exists already: choose another "
                            "name, or rename or remove that style")
        training = storage.training_dir(lib, name)
        checkpoint = library.unfinished_training(lib, name)
        resume = bool(checkpoint) and self.resume

        style_strips = [_strip(scene, i.name, "style") for i in self.style_strips]
        if len(self.content_strips):
            content_strips = [_strip(scene, i.name, "content") for i in self.content_strips]
        else:
            content_strips = keyframes.default_content(scene, {s.name for s in style_strips})
        style_file = self.style_path.strip()
        found = []
        if self.use_keyframes:
            style_names = {s.name for s in style_strips}
            found = [k for strip in content_strips
                     for k in keyframes.find(scene, strip, exclude=style_names)]
            keyframes.check_files(found)
        if not style_strips and not style_file and not found:
            raise UserError("Choose a style source: a strip, an image/video file, or "
                            "painted keyframes above the footage")
        if not content_strips:
            raise UserError("Select the content strips (the footage the style is for)")

        renders: list[RenderStep] = []  # strips Blender draws, before the training
        style_specs = [protocol.SourceSpec(**s.spec()) for s in
                       jobs.strip_sources(scene, style_strips, work_dir, render_steps=renders)]
        if style_file:
            path = storage.absolute(style_file)
            if not os.path.exists(path):
                raise UserError(f"Style file not found: {path}")
            style_specs.append(protocol.SourceSpec(path))
        content_specs = [protocol.SourceSpec(**s.spec()) for s in
                         jobs.strip_sources(scene, content_strips, work_dir, render_steps=renders)]

        if os.path.isdir(training) and not resume:
            # Start over, only now that every input checked out: this style's own earlier,
            # unfinished state is dropped.
            shutil.rmtree(training)
        train_job = options.train_job(
            self, steps=self.steps, style=style_specs, content=content_specs, out=out,
            resume=resume, device=storage.device(context), name=name, work_dir=training,
            preview_every_s=PREVIEW_EVERY_S,
            keyframes=[protocol.KeyframeSpec(**k.spec()) for k in found])
        label = "resuming" if resume else "training"
        job = Job("train", scene, f"Train '{name}'", [*renders, Step(
            protocol.job_to_dict(train_job), label)], work_dir, storage.worker_python(context),
            on_success=_finished, claims=(out, training))
        job.data = {"name": name, "out": out, "training": training, "resumed": resume,
                    "checkpoint": os.path.join(training, "checkpoint.pt"),
                    "keyframes": len(found)}
        return job


def _strip(scene, name: str, role: str):
    strip = compat.find_strip(scene, name)
    if strip is None:
        raise UserError(f"No strip named '{name}' ({role} strip) in scene '{scene.name}'")
    return strip


def _finished(job: Job) -> str:
    """Completion (main thread): the style file is in the library; training state is dropped."""
    out = job.data["out"]
    if not os.path.isfile(out):
        raise RuntimeError(f"The worker finished but wrote no style file ({out})")
    shutil.rmtree(job.data["training"], ignore_errors=True)
    try:
        library.refresh(bpy.context)
    except (AttributeError, TypeError):  # no window manager (odd contexts): listed on next draw
        pass
    return f"Style '{job.data['name']}' saved in the style library"


classes = (GANSTYLE_PG_strip_name, SEQUENCER_OT_gan_style_train)
