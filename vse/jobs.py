"""What the apply and train operators share: turning strips into worker sources, starting a job.

Strips are planned (`strip_source.plan`) and, where needed, rendered by Blender on the main
thread before the worker starts; the worker only sees file paths and frame indices.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import bpy

from . import compat, errors, library, scheduler, storage, strip_source
from .errors import UserError
from .job import DONE, RenderStep

def new_work_dir() -> str:
    """A private temporary folder for one job (job files, frames rendered by Blender)."""
    return tempfile.mkdtemp(prefix="job_", dir=storage.user_dir("jobs"))


def plan_sources(scene, strips,
                 frame_range: tuple[int, int] | None = None) -> list[strip_source.StripSource]:
    """Plan every strip and check its media (all problems before any slow work)."""
    start, end = frame_range if frame_range else (None, None)
    sources = [strip_source.plan(scene, strip, start, end) for strip in strips]
    for source in sources:
        strip_source.check_media(source)
    return sources


def strip_sources(scene, strips, work_dir: str, frame_range: tuple[int, int] | None = None,
                  render_steps: list | None = None) -> list[strip_source.StripSource]:
    """Plan every strip and check its media; the strips Blender must draw get a `render_step`
    each, appended to `render_steps` (the job draws them one frame per poll, the files are
    known now), or, without that list, are rendered here and now (blocking: one frame)."""
    sources = plan_sources(scene, strips, frame_range)
    for strip, source in zip(strips, sources):
        if source.method != "RENDER":
            continue
        folder = storage.reserve_folder(work_dir, "render_" + storage.safe_name(strip.name))
        if render_steps is not None:
            step, files = render_step(scene, strip, source, list(range(source.count)), folder)
            render_steps.append(step)
            source.path = [files[i] for i in range(source.count)]
        else:
            source.path = strip_source.render_strip(scene, strip, source.start, source.end,
                                                    folder, own_size=source.own_size)
    return sources


def render_step(scene, strip, source: strip_source.StripSource, positions: list[int],
                folder: str) -> tuple[RenderStep, dict[int, str]]:
    """A job step that renders the strip's frames at `positions` (0-based in the source's
    range) one by one into `folder`; returns it and the file of each position. The scene and
    strip are looked up again for every frame: the user may edit while it renders."""
    files = {p: os.path.join(folder, f"render_{p:06d}.png") for p in positions}
    scene_uid, name, own_size = scene.session_uid, strip.name, source.own_size

    def render(position: int) -> None:
        scene = next((s for s in bpy.data.scenes if s.session_uid == scene_uid), None)
        strip = compat.find_strip(scene, name) if scene is not None else None
        if strip is None:
            raise UserError(f"Strip '{name}' was removed or renamed while it was being "
                            "rendered; nothing was added")
        try:
            with strip_source.rendering(scene, strip, own_size):
                strip_source.render_frame(scene, strip, source.start + position, files[position])
        except RuntimeError as exc:  # bpy.ops.render.render: e.g. a render is already running
            raise UserError(f"Blender could not render frame {source.start + position} "
                            f"of strip '{name}': {exc}") from None

    label = f"Rendering '{name}' ({source.reason})"
    return RenderStep(label, list(positions), render, subject=f"Strip '{name}'"), files


def discard(work_dir: str) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)


STALE_AFTER_S = 2 * 24 * 3600


def remove_stale_work_dirs() -> None:
    """Job folders left by a Blender that crashed (days old: no running job owns them)."""
    try:
        parent = storage.user_dir("jobs")
        names = os.listdir(parent)
    except OSError:
        return
    now = time.time()
    for name in names:
        path = os.path.join(parent, name)
        try:
            stale = name.startswith("job_") and now - os.path.getmtime(path) > STALE_AFTER_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


def run(operator, scene, prepare) -> set[str]:
    """What the apply and train operators do: prepare a job in a fresh work folder, start it.

    `prepare(work_dir) -> Job` may raise UserError (or OSError): the operator then reports
    one ERROR line (`errors.report`) and nothing is left behind. In background mode the job runs to
    its end here and its outcome is the operator's result.
    """
    try:
        scheduler.ensure_idle(scene)  # before any rendering or folder
    except UserError as exc:
        return errors.report(operator, exc)
    work_dir = new_work_dir()
    try:
        job = prepare(work_dir)
        scheduler.submit(job)
    except errors.EXPECTED as exc:
        discard(work_dir)
        return errors.report(operator, exc)
    if not scheduler.blocking() and job.active:
        operator.report({'INFO'}, f"{job.title}: started (Esc cancels; progress in the status "
                                  "bar and the Style tab of the sidebar)")
        if getattr(bpy.context, "window", None) is not None:
            bpy.ops.sequencer.gan_style_watch('INVOKE_DEFAULT')
        return {'FINISHED'}
    if job.state == DONE:
        operator.report({'INFO'}, job.message)
        return {'FINISHED'}
    operator.report({'ERROR'}, job.message)  # farm scripts see a failure (RuntimeError)
    return {'CANCELLED'}


def chosen_style(context, scene, text: str) -> str:
    """The style file an operator means: its `style` argument, else the Style panel's choice
    (raises UserError with the reason)."""
    props = getattr(scene, "gan_style", None)
    text = text or (props.style_name if props is not None else "")
    return library.resolve_style(storage.library_path(context), text)


def style_label(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
