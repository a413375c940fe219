"""The jobs of this Blender session: one per scene, started, polled and cancelled here.

With a window, a `bpy.app.timers` callback (`tick`) polls the running jobs and redraws. In
background mode (`blender -b`, the bpy module) timers never fire, so `submit` runs the job to
its end in the operator itself, printing progress lines (`blocking`).
"""

from __future__ import annotations

import bpy

from . import notify
from .errors import UserError
from .job import CANCELLED, DONE, FAILED, POLL_S, RUNNING, Job

# The states come along: code that asks the scheduler for a job reads its state from here.
__all__ = ("CANCELLED", "DONE", "FAILED", "RUNNING", "FORCE_ASYNC", "blocking", "cancel_all",
           "dismiss", "ensure_idle", "job_for", "running_jobs", "submit", "tick")

# Tests set this to exercise the timer path without a window (they call `tick()` themselves).
FORCE_ASYNC = False


def blocking() -> bool:
    """True when jobs must run inside the operator (no event loop to poll them)."""
    return bpy.app.background and not FORCE_ASYNC


_jobs: dict[int, Job] = {}  # scene session_uid -> running or last finished job


def job_for(scene) -> Job | None:
    return _jobs.get(scene.session_uid) if scene is not None else None


def running_jobs() -> list[Job]:
    return [job for job in _jobs.values() if job.active]


def ensure_idle(scene) -> None:
    """Raise UserError when the scene already runs a job (one job per scene)."""
    current = job_for(scene)
    if current is not None and current.active:
        raise UserError(f"A style job is already running in scene '{scene.name}' "
                        f"({current.title}); cancel it or wait for it")


def submit(job: Job) -> None:
    """Start a job (raises UserError when the scene is busy or an output is already claimed).

    In background mode the job runs to its end here, printing progress lines; otherwise a
    timer polls it and this returns at once. A refused job is cleaned up like a failed one.
    """
    try:
        scene = job.scene()
        if scene is not None:
            ensure_idle(scene)
        for other in running_jobs():
            if set(other.claims) & set(job.claims):
                raise UserError(f"Another job ({other.title}) is writing the same output")
    except UserError as exc:
        job._finish(FAILED, str(exc))
        raise
    _jobs[job.scene_uid] = job
    if blocking():
        job._printer = lambda text: print(f"GAN Style: {text}", flush=True)
        job.free_cores = 0  # Blender only waits: the worker may use every core
    try:
        job.start()
    except UserError as exc:
        job._finish(FAILED, str(exc))
        raise
    if blocking():
        job.run_blocking()
    elif not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=POLL_S, persistent=True)


def dismiss(scene) -> None:
    """Forget the last finished job of a scene (the panel stops showing it)."""
    job = job_for(scene)
    if job is not None and not job.active:
        del _jobs[scene.session_uid]


def tick() -> float | None:
    """Timer callback: poll all running jobs, redraw the sequencer. None ends the timer."""
    for job in list(_jobs.values()):
        if job.active:
            try:
                job.poll()
            except Exception as exc:  # never let one job stop the timer for the others
                job._finish(FAILED, f"{type(exc).__name__}: {exc}")
            if not job.active:
                notify.job_ended(job)
    notify.redraw()
    return POLL_S if running_jobs() else None


def cancel_all(wait: bool = True) -> None:
    """Cancel every job (add-on disabled, another file loaded) and leave no process behind."""
    for job in running_jobs():
        job.cancel()
        if wait:
            if job._worker is not None:
                job._worker.close()
            job.poll()
            if job.active:
                job._finish(CANCELLED, "Cancelled")
