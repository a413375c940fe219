"""The add-on's operators, one small class per action in Blender's style (the domain they act
on is `vse/`)."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from ..vse import jobs, scheduler, storage, worker
from . import apply, cancel, cleanup, deps, export_frame, farm, library, preview, train

classes = (*train.classes, *apply.classes, *cancel.classes, *library.classes, *deps.classes,
           *export_frame.classes, *farm.classes, *preview.classes, *cleanup.classes)


@persistent
def _on_load_pre(*_args):
    """Jobs belong to the file they were started in: loading another file cancels them (and
    ends the preview worker: its loaded style was for that file)."""
    scheduler.cancel_all(wait=True)
    worker.stop_server()


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_on_load_pre)
    jobs.remove_stale_work_dirs()
    storage.migrate_old_library()


def unregister() -> None:
    scheduler.cancel_all(wait=True)  # no worker outlives the add-on
    worker.stop_server()
    if bpy.app.timers.is_registered(scheduler.tick):
        bpy.app.timers.unregister(scheduler.tick)
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
