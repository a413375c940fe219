"""`sequencer.gan_style_cancel`: stop the scene's running job at any moment."""

from __future__ import annotations

import bpy

from . import compat, runner


class SEQUENCER_OT_gan_style_cancel(bpy.types.Operator):
    """Stop the running style job (a training keeps its last checkpoint; no strip is added)"""
    bl_idname = "sequencer.gan_style_cancel"
    bl_label = "Cancel Style Job"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        job = runner.job_for(compat.sequencer_scene(context))
        return job is not None and job.active and not job.cancel_requested

    def execute(self, context):
        job = runner.job_for(compat.sequencer_scene(context))
        job.cancel()
        self.report({'INFO'}, f"{job.title}: cancelling")
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_dismiss(bpy.types.Operator):
    """Hide the result of the last style job"""
    bl_idname = "sequencer.gan_style_dismiss"
    bl_label = "Dismiss"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        runner.dismiss(compat.sequencer_scene(context))
        return {'FINISHED'}


classes = (SEQUENCER_OT_gan_style_cancel, SEQUENCER_OT_gan_style_dismiss)
