"""`sequencer.gan_style_cancel`: stop the scene's running job at any moment (also Esc, through
`sequencer.gan_style_watch`, which follows a job started from a window and reports its end)."""

from __future__ import annotations

import bpy

from ..vse import compat, scheduler
from ..vse.job import CANCELLED, DONE


class SEQUENCER_OT_gan_style_cancel(bpy.types.Operator):
    """Stop the running style job (a training keeps its last checkpoint; no strip is added)"""
    bl_idname = "sequencer.gan_style_cancel"
    bl_label = "Cancel Style Job"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        job = scheduler.job_for(compat.sequencer_scene(context))
        return job is not None and job.active and not job.cancel_requested

    def execute(self, context):
        job = scheduler.job_for(compat.sequencer_scene(context))
        job.cancel()
        self.report({'INFO'}, f"{job.title}: cancelling")
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_dismiss(bpy.types.Operator):
    """Hide the result of the last style job"""
    bl_idname = "sequencer.gan_style_dismiss"
    bl_label = "Dismiss"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        scheduler.dismiss(compat.sequencer_scene(context))
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_watch(bpy.types.Operator):
    """Follow the scene's running style job: Esc cancels it; its result is reported"""
    bl_idname = "sequencer.gan_style_watch"
    bl_label = "Watch Style Job"
    bl_options = {'INTERNAL'}  # no undo step of its own: the job's result pushes one

    _timer = None

    def invoke(self, context, _event):
        self.job = scheduler.job_for(compat.sequencer_scene(context))
        if self.job is None or not self.job.active:
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.5, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        job = self.job
        if job.active:
            # Esc is the editor's way to stop a running job; everything else passes through.
            if event.type == 'ESC' and event.value == 'PRESS' and not job.cancel_requested:
                job.cancel()
                self.report({'INFO'}, f"{job.title}: cancelling")
                return {'RUNNING_MODAL'}
            return {'PASS_THROUGH'}
        context.window_manager.event_timer_remove(self._timer)
        if job.state == DONE:
            self.report({'INFO'}, f"{job.title}: {job.message}")
        elif job.state == CANCELLED:
            self.report({'WARNING'}, f"{job.title}: {job.message}")
        return {'FINISHED'}  # failures have their own popup (notify.job_ended)


classes = (SEQUENCER_OT_gan_style_cancel, SEQUENCER_OT_gan_style_dismiss,
           SEQUENCER_OT_gan_style_watch)
