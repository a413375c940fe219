"""The operators that install and check the worker's dependencies: Install Dependencies,
Cancel Installation, Copy Command, Check Dependencies (the checks and the plan: `vse.deps`)."""

from __future__ import annotations

import functools
import os

import bpy
from bpy.props import EnumProperty, StringProperty

from ..vse import deps, installer, storage


def _build_items(_self, _context):
    return deps.BUILD_ITEMS


def _watch_installer() -> float | None:
    """Timer: redraw the preferences while installing; check the new environment at the end."""
    _redraw_all()
    if deps.installing():
        return 0.5
    deps.clear()
    return None


def _redraw_all() -> None:
    wm = bpy.context.window_manager
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            area.tag_redraw()


class SEQUENCER_OT_gan_style_install_dependencies(bpy.types.Operator):
    """Create a private Python environment for the worker and install torch, NumPy and OpenCV
    into it (downloads about 0.3 GB for the CPU build, 3 GB for CUDA)"""
    bl_idname = "sequencer.gan_style_install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {'INTERNAL'}

    build: EnumProperty(name="torch Build", items=_build_items, options={'SKIP_SAVE'},
                        description="Which torch to install (default: the preferences' choice)")
    wheel_dir: StringProperty(
        name="Wheel Folder", subtype='DIR_PATH', options={'SKIP_SAVE'},
        description="Install only from the wheel files in this folder, without the network "
                    "(default: the preferences' folder, if any)")

    @classmethod
    def poll(cls, context):
        return not deps.installing()

    def execute(self, context):
        chosen = self.build if self.properties.is_property_set("build") else ""
        plan = deps.install_plan(context, chosen, self.wheel_dir.strip())
        if plan.wheel_dir and not os.path.isdir(plan.wheel_dir):
            self.report({'ERROR'}, f"The wheel folder does not exist: {plan.wheel_dir}")
            return {'CANCELLED'}
        if not plan.wheel_dir and not bpy.app.online_access:
            self.report({'ERROR'}, "Online access is off (Preferences > System > Network), so "
                        "nothing is downloaded. Allow it, choose a wheel folder, or run: "
                        + plan.command_text())
            return {'CANCELLED'}
        try:
            os.makedirs(os.path.dirname(plan.env_dir), exist_ok=True)
        except OSError as exc:
            self.report({'ERROR'}, f"Cannot create {plan.env_dir}: {exc.strerror or exc}")
            return {'CANCELLED'}
        running = deps.start_install(plan)
        if not bpy.app.background:
            bpy.app.timers.register(_watch_installer, first_interval=0.5)
            self.report({'INFO'}, f"Installing into {plan.env_dir} (see the preferences)")
            return {'FINISHED'}
        # Background mode: no timers run, so wait here, printing each step once.
        said = ""
        while running.wait(0.5) == installer.RUNNING:
            if running.status != said:
                said = running.status
                print(f"GAN Style: {said}", flush=True)
        deps.clear()
        if running.state != installer.DONE:
            self.report({'ERROR'}, running.message)
            return {'CANCELLED'}
        self.report({'INFO'}, running.message)
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_cancel_install(bpy.types.Operator):
    """Stop installing the dependencies (what is installed stays; Install continues it)"""
    bl_idname = "sequencer.gan_style_cancel_install"
    bl_label = "Cancel Installation"
    bl_options = {'INTERNAL'}

    @classmethod
    def poll(cls, context):
        return deps.installing()

    def execute(self, context):
        deps.current_installer().cancel()
        self.report({'INFO'}, "Installation cancelled")
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_copy_install_command(bpy.types.Operator):
    """Copy the command that installs the dependencies by hand (for a terminal)"""
    bl_idname = "sequencer.gan_style_copy_install_command"
    bl_label = "Copy Command"
    bl_options = {'INTERNAL'}

    text: StringProperty(name="Command", options={'SKIP_SAVE'},
                         description="What to copy (default: the install command)")

    def execute(self, context):
        command = self.text or deps.install_plan(context).command_text()
        context.window_manager.clipboard = command
        self.report({'INFO'}, "Copied: " + command)
        return {'FINISHED'}


class SEQUENCER_OT_gan_style_check_dependencies(bpy.types.Operator):
    """Check again whether the worker Python has torch, OpenCV and NumPy, and which GPUs it
    sees (in the background: Blender keeps working)"""
    bl_idname = "sequencer.gan_style_check_dependencies"
    bl_label = "Check Dependencies"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        python = storage.worker_python(context)
        if bpy.app.background:  # no timers there: answer now
            status = deps.check(python, refresh=True)
            if status.ok:
                self.report({'INFO'}, status.summary)
            else:
                self.report({'WARNING'}, f"{status.summary}. {status.hint}".strip(". "))
            return {'FINISHED'}
        deps.check_async(python, refresh=True)
        bpy.app.timers.register(functools.partial(_report_check, python), first_interval=0.5)
        self.report({'INFO'}, "Checking the worker Python in the background")
        return {'FINISHED'}


def _report_check(python: str) -> float | None:
    status = deps.cached(python)
    if status is None or status.checking:
        return 0.5
    _redraw_all()
    return None


classes = (SEQUENCER_OT_gan_style_install_dependencies, SEQUENCER_OT_gan_style_cancel_install,
           SEQUENCER_OT_gan_style_copy_install_command, SEQUENCER_OT_gan_style_check_dependencies)
