"""The "Style" tab of the Sequencer sidebar: Apply, Train, Library."""

from __future__ import annotations

import os

import bpy

from ..gan import protocol
from ..vse import (compat, keyframes, library, notify, options, preview_frames, scheduler,
                   storage, stylized)
from ..vse.job import DONE, FAILED, Job
from . import prefs, previews, props


class SequencerStylePanel:
    bl_space_type = 'SEQUENCE_EDITOR'
    bl_region_type = 'UI'
    bl_category = "Style"

    @classmethod
    def poll(cls, context):
        return compat.sequencer_scene(context) is not None


def draw_job(layout, job: Job) -> None:
    """Progress, ETA, loss, preview and Cancel of a running job; the result of a finished one."""
    box = layout.box()
    if job.active:
        box.progress(factor=job.fraction, type='BAR',
                     text=f"{job.status}  {100 * job.fraction:.0f}%")
        row = box.row()
        row.label(text=f"ETA {protocol.format_duration(job.eta_s)}", icon='TIME')
        if job.device:
            row.label(text=job.device)
        if job.losses:
            loss_text = "  ".join(f"{k} {v:.3f}" for k, v in list(job.losses.items())[:3])
            box.label(text=f"Loss: {loss_text}", icon='GRAPH')
        if job.preview_path:
            step = f" (step {job.preview_step})" if job.preview_step is not None else ""
            box.label(text=f"Preview{step}: {os.path.basename(job.preview_path)}",
                      icon='IMAGE_DATA')
            icon = previews.image_icon(job.preview_path)
            if icon:  # 0 without a screen (background mode)
                box.template_icon(icon_value=icon, scale=8.0)
        if job.cancel_requested:
            box.label(text="Cancelling: finishing the current step...", icon='CANCEL')
        else:
            box.operator("sequencer.gan_style_cancel", icon='CANCEL', text="Cancel")
        return
    icon = {DONE: 'CHECKMARK', FAILED: 'ERROR'}.get(job.state, 'CANCEL')
    row = box.row()
    row.label(text=f"{job.title}: {job.status}", icon=icon)
    row.operator("sequencer.gan_style_dismiss", text="", icon='X', emboss=False)
    column = box.column(align=True)
    for line in notify.wrap(job.message, 42)[:8]:
        column.label(text=line)


def _job_of_kind(context, kind: str) -> Job | None:
    job = scheduler.job_for(compat.sequencer_scene(context))
    return job if job is not None and job.kind == kind else None


class SEQUENCER_PT_gan_style_apply(SequencerStylePanel, bpy.types.Panel):
    bl_label = "Apply Style"

    def draw(self, context):
        layout = self.layout
        scene = compat.sequencer_scene(context)
        settings = scene.gan_style
        prefs.draw_dependencies(layout, storage.worker_python(context))
        style_name = props.current_style_name(settings)
        if not style_name:
            layout.label(text="No styles yet: train or import one", icon='INFO')
        else:
            layout.template_icon_view(settings, "style", show_labels=True, scale=6.0,
                                      scale_popup=5.0)
            layout.label(text=style_name)
        layout.prop(settings, "mix", slider=True)
        layout.prop(settings, "stabilize", slider=True)
        layout.prop(settings, "stroke_scale")
        layout.prop(settings, "use_frame_range")
        if settings.use_frame_range:
            row = layout.row(align=True)
            row.prop(settings, "frame_start")
            row.prop(settings, "frame_end")

        strips = [s for s in compat.selected_strips(scene) if compat.is_visual(s)]
        if not strips and compat.is_visual(compat.active_strip(scene)):
            strips = [compat.active_strip(scene)]
        job = scheduler.job_for(scene)
        column = layout.column()
        column.enabled = bool(strips and style_name) and not (job and job.active)
        text = f"Apply to {len(strips)} strips" if len(strips) > 1 else "Apply to Strip"
        row = column.row(align=True)
        # The buttons run with the settings drawn here (`use_scene_settings`)
        op = row.operator("sequencer.gan_style_preview", text="Preview Frame", icon='HIDE_OFF')
        op.style, op.use_scene_settings = style_name, True
        op = row.operator("sequencer.gan_style_apply", text=text, icon='BRUSH_DATA')
        op.style, op.use_scene_settings = style_name, True
        op = column.operator("sequencer.gan_style_export_farm_job", icon='NETWORK_DRIVE')
        op.style, op.use_scene_settings = style_name, True
        active = compat.active_strip(scene)
        if stylized.is_stylized(active):
            row = layout.row()
            row.enabled = not (job and job.active)
            op = row.operator("sequencer.gan_style_reapply", icon='FILE_REFRESH',
                              text=f"Re-apply to '{active['gan_style'].get('source_strip', '?')}'")
            op.style, op.use_scene_settings = style_name, True
        if not strips:
            layout.label(text="Select the strips to stylize", icon='INFO')
        job = scheduler.job_for(scene)
        if job is not None and job.kind in ("apply", "preview"):
            draw_job(layout, job)
        shown = preview_frames.latest(scene)
        if shown is not None:
            box = layout.box()
            box.label(text=f"Preview: {shown['label']}", icon='IMAGE_DATA')
            icon = previews.image_icon(shown["path"])
            if icon:  # 0 without a screen (background mode)
                box.template_icon(icon_value=icon, scale=10.0)
            box.label(text=f"Image '{preview_frames.IMAGE}' in the Image Editor")


class SEQUENCER_PT_gan_style_train(SequencerStylePanel, bpy.types.Panel):
    bl_label = "Train Style"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        scene = compat.sequencer_scene(context)
        settings = scene.gan_style
        layout.prop(settings, "train_name")
        ed = scene.sequence_editor
        if ed is not None:
            collection = "strips_all" if hasattr(ed, "strips_all") else "sequences_all"
            layout.prop_search(settings, "train_style_strip", ed, collection, text="Style Strip")
        layout.prop(settings, "train_style_path")
        style_strip = settings.train_style_strip
        exclude = {style_strip} if style_strip else set()
        content, found_keys = keyframes.content_survey(scene, exclude)
        column = layout.column(align=True)
        column.label(text=f"Content: {len(content)} selected strips" if content
                     else "Content: select the footage strips", icon='SEQUENCE')
        for strip in content[:4]:
            column.label(text=f"    {strip.name}")
        if len(content) > 4:
            column.label(text=f"    ... and {len(content) - 4} more")
        layout.prop(settings, "train_use_keyframes")
        lines = lines_of(found_keys) if settings.train_use_keyframes else []
        found = any(icon == 'KEYFRAME_HLT' for _, icon in lines)
        if settings.train_use_keyframes:
            column = layout.column(align=True)
            for text, icon in lines:
                for number, line in enumerate(notify.wrap(text, 48)):
                    column.label(text=line if number == 0 else f"    {line}",
                                 icon=icon if number == 0 else 'BLANK1')
            row = layout.row(align=True)
            row.operator("sequencer.gan_style_export_frame", icon='IMAGE_DATA')
            op = row.operator("sequencer.gan_style_export_frame", text="Add Painted",
                              icon='FILEBROWSER')
            op.browse = True
        for option in options.TRAIN:  # the others, in the order of the table
            if option.name != "use_keyframes":
                layout.prop(settings, options.TRAIN_PREFIX + option.name)
        name = settings.train_name.strip()
        lib = storage.library_path(context)
        if name and os.path.exists(storage.style_path_in_library(lib, name)):
            layout.label(text=f"'{name}' exists in the library: choose another name", icon='ERROR')
        elif library.unfinished_training(lib, name):
            layout.label(text="Continues the unfinished training of this name", icon='RECOVER_LAST')
        job = scheduler.job_for(scene)
        row = layout.row()
        row.enabled = not (job and job.active) and bool(content) and bool(
            style_strip or settings.train_style_path or found)
        op = row.operator("sequencer.gan_style_train", icon='PLAY')
        op.use_scene_settings = True
        job = _job_of_kind(context, "train")
        if job is not None:
            draw_job(layout, job)


def keyframe_lines(scene, strips, exclude=()) -> list[tuple[str, str]]:
    """(text, icon) lines that say which painted keyframes were found above the footage
    strips: "Keyframes: 3 found: frame 12 (painted_012.png), ...", strips that cannot have
    keyframes (and why), and painted files that are missing."""
    return lines_of(keyframes.survey(scene, strips, exclude))


def lines_of(found: list) -> list[tuple[str, str]]:
    """`keyframe_lines` of a `keyframes.survey`."""
    lines = []
    for entry in found:
        if entry.problem:
            lines.append((f"No keyframes: {entry.problem}", 'INFO'))
        elif entry.error:
            lines.append((entry.error, 'ERROR'))
    searched = [f for f in found if not f.problem and not f.error]
    with_keys = [f for f in searched if f.keyframes]
    for entry in with_keys:
        where = f" above '{entry.strip.name}'" if len(with_keys) > 1 else ""
        listed = ", ".join(f"frame {k.timeline_frame} ({os.path.basename(k.painted)})"
                           for k in entry.keyframes)
        lines.append((f"Keyframes{where}: {len(entry.keyframes)} found: {listed}",
                      'KEYFRAME_HLT'))
        lines.extend((k.missing_message(), 'ERROR') for k in entry.keyframes if not k.exists)
    if searched and not with_keys:
        lines.append(("Keyframes: none found (paint over exported frames, see below)",
                      'KEYFRAME'))
    return lines


class GANSTYLE_UL_styles(bpy.types.UIList):
    """Styles of the library with thumbnail, preset and steps."""

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_prop,
                  _index=0):
        entry = library.read_entry(item.path) if item.path else None
        icon_value = previews.style_icon(entry) if entry is not None else 0
        if self.layout_type in {'DEFAULT', 'COMPACT'}:
            row = layout.row()
            if item.error:
                row.label(text=item.name, icon='ERROR')
            elif icon_value:
                row.label(text=item.name, icon_value=icon_value)
            else:
                row.label(text=item.name, icon='BRUSH_DATA')
            if not item.error:
                row.label(text=f"{item.preset} · {item.steps} steps",
                          icon='LOCKED' if item.builtin else 'NONE')
        else:
            layout.alignment = 'CENTER'
            layout.label(text="", icon_value=icon_value)


class SEQUENCER_PT_gan_style_library(SequencerStylePanel, bpy.types.Panel):
    bl_label = "Style Library"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        wm = context.window_manager
        row = layout.row()
        row.template_list("GANSTYLE_UL_styles", "", wm, "gan_style_library",
                          wm, "gan_style_library_index", rows=4)
        buttons = row.column(align=True)
        buttons.operator("sequencer.gan_style_library_import", text="", icon='IMPORT')
        buttons.operator("sequencer.gan_style_library_remove", text="", icon='REMOVE')
        buttons.operator("sequencer.gan_style_library_rename", text="", icon='GREASEPENCIL')
        buttons.separator()
        buttons.operator("sequencer.gan_style_library_refresh", text="", icon='FILE_REFRESH')
        index = wm.gan_style_library_index
        if 0 <= index < len(wm.gan_style_library):
            item = wm.gan_style_library[index]
            column = layout.column(align=True)
            if item.error:
                column.label(text=item.error, icon='ERROR')
            else:
                column.label(text=f"Name: {item.title or item.name}")
                if item.builtin:
                    column.label(text="Ships with the extension (read-only)", icon='LOCKED')
                column.label(text=f"Preset: {item.preset or '?'}")
                column.label(text=f"Steps: {item.steps}")
                column.label(text=f"Created: {item.created or '?'}")
                if item.sources:
                    column.label(text=f"Sources: {item.sources}")
        layout.label(text=storage.library_path(context), icon='FILE_FOLDER')
        layout.operator("sequencer.gan_style_clean_up", icon='TRASH')


classes = (GANSTYLE_UL_styles, SEQUENCER_PT_gan_style_apply, SEQUENCER_PT_gan_style_train,
           SEQUENCER_PT_gan_style_library)
