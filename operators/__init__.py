"""Operators of the add-on, the strip -> frame mapping and the worker job runner."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import (apply, cancel, cleanup, cli, deps, export_frame, farm, jobs, library, preview, runner,
               storage, train)

classes = (*train.classes, *apply.classes, *cancel.classes, *library.classes, *deps.classes,
           *export_frame.classes, *farm.classes, *preview.classes, *cleanup.classes)


@persistent
def _on_load_pre(*_args):
    """Jobs belong to the file they were started in: loading another file cancels them (and
    ends the preview worker: its loaded style was for that file)."""
    runner.cancel_all(wait=True)
    runner.stop_server()


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_on_load_pre)
    cli.register()
    jobs.remove_stale_work_dirs()
    storage.migrate_old_library()


def unregister() -> None:
    runner.cancel_all(wait=True)  # no worker outlives the add-on
    runner.stop_server()
    if bpy.app.timers.is_registered(runner.tick):
        bpy.app.timers.unregister(runner.tick)
    cli.unregister()
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
