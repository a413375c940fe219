"""`sequencer.gan_style_train`: learn a style into the style library.

Style sources: strips (`style_strips`) and/or an image or video file (`style_path`). Content:
the footage the style is for (`content_strips`, default: the selected visual strips that are
not style sources). The style file is `<library>/<name>.ganstyle`; checkpoints and previews go
to `<library>/.training/<name>/`, kept when training is cancelled so that training the same
name again resumes from there.
"""

from __future__ import annotations

import functools
import os
import shutil

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, StringProperty)

from ..gan import protocol
from . import compat, jobs, library, runner, storage

PRESET_ITEMS = (
    ('draft', "Draft", "Small and fast: minutes on a CPU"),
    ('standard', "Standard", "Better detail: a GPU helps"),
    ('high', "High", "Largest model: for a GPU"),
)
PREVIEW_EVERY_S = 15.0


class GANSTYLE_PG_strip_name(bpy.types.PropertyGroup):
    """A strip, by name (operator arguments: `[{"name": "Clip"}]`)."""
    name: StringProperty(name="Strip")


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
    preset: EnumProperty(name="Preset", items=PRESET_ITEMS, default='draft')
    minutes: FloatProperty(name="Time Budget", description="Training time in minutes",
                           default=5.0, min=0.05, soft_max=240.0)
    steps: IntProperty(name="Steps", description="Train this many steps instead of for a time "
                       "budget (0: use the time budget)", default=0, min=0)
    resume: BoolProperty(
        name="Resume", default=True,
        description="Continue an unfinished training of the same name from its checkpoint "
                    "(off: start over, discarding that checkpoint)")
    use_scene_settings: BoolProperty(
        name="Use Panel Settings", default=False, options={'HIDDEN', 'SKIP_SAVE'},
        description="Take every setting from the Train panel (the scene's Style settings)")

    @classmethod
    def poll(cls, context):
        scene = compat.sequencer_scene(context)
        return scene is not None

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        settings = self._settings(scene)
        return jobs.run(self, scene, functools.partial(self._prepare, context, scene, settings))

    def _settings(self, scene) -> dict:
        """The operator's arguments, or the Train panel's settings."""
        if self.use_scene_settings and getattr(scene, "gan_style", None) is not None:
            props = scene.gan_style
            return {"name": props.train_name,
                    "style_strips": [props.train_style_strip] if props.train_style_strip else [],
                    "style_path": props.train_style_path,
                    "content_strips": [],
                    "preset": props.train_preset, "minutes": props.train_minutes,
                    "steps": 0, "resume": True}
        return {"name": self.name, "style_strips": [i.name for i in self.style_strips],
                "style_path": self.style_path,
                "content_strips": [i.name for i in self.content_strips],
                "preset": self.preset, "minutes": self.minutes, "steps": self.steps,
                "resume": self.resume}

    def _prepare(self, context, scene, settings: dict, work_dir: str) -> runner.Job:
        name = settings["name"].strip()
        if not name:
            raise jobs.PrepareError("Give the new style a name")
        if name != storage.safe_name(name, limit=200):
            raise jobs.PrepareError(f"'{name}' cannot be a style name: use letters, digits, "
                                    "'-', '_' and '.'")
        lib = storage.library_dir(context)
        out = storage.style_path_in_library(lib, name)
        if os.path.exists(out):
            raise jobs.PrepareError(f"A style named '{name}' exists already: choose another "
                                    "name, or rename or remove that style")
        training = storage.training_dir(lib, name)
        checkpoint = library.unfinished_training(lib, name)
        resume = bool(checkpoint) and settings["resume"]
        if os.path.isdir(training) and not resume:
            shutil.rmtree(training)  # start over: this style's own earlier, unfinished state

        style_strips = [_strip(scene, n, "style") for n in settings["style_strips"]]
        if settings["content_strips"]:
            content_strips = [_strip(scene, n, "content") for n in settings["content_strips"]]
        else:
            style_names = {s.name for s in style_strips}
            content_strips = [s for s in compat.selected_strips(scene)
                              if compat.is_visual(s) and s.name not in style_names]
        style_file = settings["style_path"].strip()
        if not style_strips and not style_file:
            raise jobs.PrepareError("Choose a style source: a strip or an image/video file")
        if not content_strips:
            raise jobs.PrepareError("Select the content strips (the footage the style is for)")

        style_specs = [protocol.SourceSpec(**s.spec())
                       for s in jobs.strip_sources(scene, style_strips, work_dir)]
        if style_file:
            path = storage.absolute(style_file)
            if not os.path.exists(path):
                raise jobs.PrepareError(f"Style file not found: {path}")
            style_specs.append(protocol.SourceSpec(path))
        content_specs = [protocol.SourceSpec(**s.spec())
                         for s in jobs.strip_sources(scene, content_strips, work_dir)]

        steps = settings["steps"] or None
        train_job = protocol.TrainJob(
            style=style_specs, content=content_specs, out=out, preset=settings["preset"],
            minutes=None if steps else float(settings["minutes"]), steps=steps, resume=resume,
            device=storage.device(context), name=name, work_dir=training,
            preview_every_s=PREVIEW_EVERY_S)
        label = "resuming" if resume else "training"
        job = runner.Job("train", scene, f"Train '{name}'", [runner.Step(
            protocol.job_to_dict(train_job), label)], work_dir, storage.worker_python(context),
            on_success=_finished, claims=(out, training))
        job.data = {"name": name, "out": out, "training": training, "resumed": resume}
        return job


def _strip(scene, name: str, role: str):
    strip = compat.find_strip(scene, name)
    if strip is None:
        raise jobs.PrepareError(f"No strip named '{name}' ({role} strip) in scene '{scene.name}'")
    return strip


def _finished(job: runner.Job) -> str:
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
