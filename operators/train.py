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
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, StringProperty)

from ..gan import protocol
from ..vse import compat, jobs, keyframes, library, options, storage
from ..vse.errors import UserError
from ..vse.job import Job, RenderStep, Step

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
    use_keyframes: BoolProperty(
        name="Use Painted Keyframes", default=True,
        description="Learn from painted keyframes: single-image strips above the content "
                    "strips at the frames they depict")
    temporal_weight: FloatProperty(
        name="Temporal Stability", default=protocol.DEFAULT_TEMPORAL_WEIGHT, min=0.0, max=1000.0,
        soft_max=50.0,
        description="Weight of the training term against flicker (output of a frame vs. the "
                    "previous output moved by the optical flow; 0: off, steps are faster)")
    learn_strokes: options.learn_strokes()
    stroke_scale: options.stroke_scale(options.TRAIN_STROKE_SCALE)
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
                    "steps": 0, "resume": True,
                    "use_keyframes": props.train_use_keyframes,
                    "temporal_weight": props.train_temporal_weight,
                    "stroke_scale": props.train_stroke_scale,
                    "learn_strokes": props.train_learn_strokes}
        return {"name": self.name, "style_strips": [i.name for i in self.style_strips],
                "style_path": self.style_path,
                "content_strips": [i.name for i in self.content_strips],
                "preset": self.preset, "minutes": self.minutes, "steps": self.steps,
                "resume": self.resume, "use_keyframes": self.use_keyframes,
                "temporal_weight": self.temporal_weight, "stroke_scale": self.stroke_scale,
                "learn_strokes": self.learn_strokes}

    def _prepare(self, context, scene, settings: dict, work_dir: str) -> Job:
        name = settings["name"].strip()
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
        resume = bool(checkpoint) and settings["resume"]

        style_strips = [_strip(scene, n, "style") for n in settings["style_strips"]]
        if settings["content_strips"]:
            content_strips = [_strip(scene, n, "content") for n in settings["content_strips"]]
        else:
            content_strips = default_content(scene, {s.name for s in style_strips})
        style_file = settings["style_path"].strip()
        found = []
        if settings["use_keyframes"]:
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
        steps = settings["steps"] or None
        train_job = protocol.TrainJob(
            style=style_specs, content=content_specs, out=out, preset=settings["preset"],
            minutes=None if steps else float(settings["minutes"]), steps=steps, resume=resume,
            device=storage.device(context), name=name, work_dir=training,
            preview_every_s=PREVIEW_EVERY_S,
            keyframes=[protocol.KeyframeSpec(**k.spec()) for k in found],
            temporal_weight=float(settings["temporal_weight"]),
            stroke_scale=float(settings["stroke_scale"]),
            auto_keyframes=None if settings["learn_strokes"] else 0)
        label = "resuming" if resume else "training"
        job = Job("train", scene, f"Train '{name}'", [*renders, Step(
            protocol.job_to_dict(train_job), label)], work_dir, storage.worker_python(context),
            on_success=_finished, claims=(out, training))
        job.data = {"name": name, "out": out, "training": training, "resumed": resume,
                    "checkpoint": os.path.join(training, "checkpoint.pt"),
                    "keyframes": len(found)}
        return job


def default_content(scene, style_names=frozenset()) -> list:
    """The selected visual strips that are neither style sources nor painted keyframes."""
    chosen = [s for s in compat.selected_strips(scene)
              if compat.is_visual(s) and s.name not in style_names]
    painted = keyframes.keyframe_names(scene, chosen, exclude=style_names)
    return [s for s in chosen if s.name not in painted]


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
