"""Panels and preferences, drawn into a recording layout (headless Blender has no screen).

Every layout call is checked against Blender's own UILayout API of the running version
(function and keyword names), every `prop` against the data's RNA properties and every
operator button's settings against the operator's properties, so a typo or an API change
between 4.2 and 5.x fails here rather than in a user's sidebar.
"""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts

LAYOUT_FUNCTIONS = {f.identifier: {p.identifier for p in f.parameters}
                    for f in bpy.types.UILayout.bl_rna.functions}


class OperatorButton:
    def __init__(self, idname):
        category, name = idname.split(".")
        self._rna = getattr(getattr(bpy.ops, category), name).get_rna_type()

    def __setattr__(self, key, value):
        if key != "_rna":
            assert key in self._rna.properties, f"{self._rna.identifier} has no property {key}"
        object.__setattr__(self, key, value)


class RecordingLayout:
    """Stands in for bpy.types.UILayout, checking each call."""

    def __init__(self, calls):
        self.calls = calls
        self.enabled = True
        self.alignment = 'EXPAND'
        self.use_property_split = False
        self.use_property_decorate = True
        self.operator_context = 'INVOKE_DEFAULT'

    def __getattr__(self, name):
        assert name in LAYOUT_FUNCTIONS, f"UILayout has no function {name}"

        def call(*args, **kwargs):
            unknown = set(kwargs) - LAYOUT_FUNCTIONS[name]
            assert not unknown, f"UILayout.{name} has no parameter {unknown}"
            self.calls.append((name, args, kwargs))
            if name in ("prop", "prop_search", "template_icon_view"):
                data, prop = args[0], args[1]
                assert prop in data.bl_rna.properties, f"{data} has no property {prop}"
            if name == "prop_search":
                assert args[3] in args[2].bl_rna.properties, args[3]
            if name == "operator":
                return OperatorButton(args[0])
            if name in ("row", "column", "box", "split", "column_flow", "grid_flow"):
                return RecordingLayout(self.calls)
            return None
        return call


def draw(panel_class, context=None):
    calls = []
    holder = type("Holder", (), {"layout": RecordingLayout(calls)})()
    panel_class.draw(holder, context or bpy.context)
    return calls


def texts(calls):
    return [kwargs.get("text", "") for name, _, kwargs in calls if name == "label"]


def test_panels_draw_with_and_without_a_job(addon, blend, media, style):
    panels = addon.ui.panels
    strip = bl_helpers.add_images(blend, media.images[:2], "Clip", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    bpy.ops.sequencer.gan_style_library_refresh()
    for panel in (panels.SEQUENCER_PT_gan_style_apply, panels.SEQUENCER_PT_gan_style_train,
                  panels.SEQUENCER_PT_gan_style_library):
        assert panel.poll(bpy.context)
        draw(panel)
    calls = draw(panels.SEQUENCER_PT_gan_style_apply)
    assert any(name == "template_icon_view" for name, _, _ in calls)
    assert any(name == "operator" and args[0] == "sequencer.gan_style_apply"
               for name, args, _ in calls)
    assert any(name == "operator" and args[0] == "sequencer.gan_style_export_farm_job"
               for name, args, _ in calls)


def test_a_running_job_shows_progress_eta_loss_preview_and_cancel(addon, blend, media, tmp_path):
    import cv2
    runner, jobs = addon.vse.scheduler, addon.vse.job
    job = jobs.Job("train", blend, "Train 'x'", [jobs.Step({}, "training")],
                     str(tmp_path), "python")
    job.fraction, job.eta_s, job.losses = 0.25, 90.0, {"G": 0.5, "D": 0.25}
    job.status = "training: 5/20 steps"
    preview = str(tmp_path / "preview.png")
    cv2.imwrite(preview, bl_helpers.coded_frame(1))
    job.preview_path, job.preview_step = preview, 5
    runner._jobs[blend.session_uid] = job
    try:
        calls = draw(addon.ui.panels.SEQUENCER_PT_gan_style_train)
    finally:
        runner._jobs.clear()
    progress = [kwargs for name, _, kwargs in calls if name == "progress"]
    assert progress and progress[0]["factor"] == 0.25
    labels = texts(calls)
    assert "ETA 1:30" in labels
    assert any(label.startswith("Loss: G 0.500") for label in labels)
    assert "Preview (step 5): preview.png" in labels
    assert any(key.startswith("preview|") for key in addon.ui.previews._preview_keys)
    assert any(name == "operator" and args[0] == "sequencer.gan_style_cancel"
               for name, args, _ in calls)


def test_finished_job_shows_its_message(addon, blend, tmp_path):
    runner, jobs = addon.vse.scheduler, addon.vse.job
    job = jobs.Job("apply", blend, "Apply 'x'", [jobs.Step({}, "s")], str(tmp_path), "py")
    job.state, job.status, job.message = runner.FAILED, "Failed", "The worker stopped unexpectedly"
    runner._jobs[blend.session_uid] = job
    try:
        calls = draw(addon.ui.panels.SEQUENCER_PT_gan_style_apply)
    finally:
        runner._jobs.clear()
    assert "Apply 'x': Failed" in texts(calls)
    assert any("stopped unexpectedly" in t for t in texts(calls))


def test_preferences_tell_what_is_missing_and_how_to_install_it(addon, tmp_path, worker_python):
    from conftest import WORKER_PYTHON
    deps = addon.vse.deps
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    deps.check(WORKER_PYTHON, refresh=True)
    calls = []
    prefs_holder = type("Holder", (), {"layout": RecordingLayout(calls),
                                       **{k: getattr(prefs, k) for k in
                                          ("python_path", "device", "library_dir",
                                           "torch_build", "wheel_dir", "install_command")},
                                       "bl_rna": prefs.bl_rna})()
    type(prefs).draw(prefs_holder, bpy.context)
    assert any("OpenCV and NumPy found" in t for t in texts(calls))
    assert any(t.startswith("Environment: ") for t in texts(calls))
    assert ("operator", ("sequencer.gan_style_install_dependencies",), {"icon": 'IMPORT'}) \
        in calls

    no_torch = bl_helpers.python_without_torch(tmp_path, WORKER_PYTHON)
    worker_python(no_torch)  # (clears the cache)
    deps.check(no_torch, refresh=True)
    calls.clear()
    addon.ui.prefs.draw_dependencies(RecordingLayout(calls), no_torch)
    labels = texts(calls)
    assert "Missing in the worker Python: torch" in labels
    assert f'"{no_torch}" -m pip install "torch"' in labels


def files_under(*folders) -> set[str]:
    return {os.path.join(root, name) for folder in folders
            for root, dirs, files in os.walk(folder) for name in dirs + files}


def test_drawing_writes_nothing(addon, blend, media, tmp_path):
    """Panels draw from cached state: with a library folder that does not exist and no
    thumbnail cache, drawing every panel and the preferences creates no folder and no file."""
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    chosen = prefs.library_dir
    missing = tmp_path / "nowhere" / "styles"
    strip = bl_helpers.add_images(blend, media.images[:2], "Clip", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    prefs.library_dir = str(missing)  # (reads the library: the built-in styles are listed)
    try:
        thumbnails = addon.vse.storage.user_dir("thumbnails")
        for name in os.listdir(thumbnails):  # drawing the style picker would have to write them
            os.unlink(os.path.join(thumbnails, name))
        addon.ui.previews.unregister()
        addon.ui.previews.register()
        user = os.environ["BLENDER_USER_RESOURCES"]  # the data folder is inside it
        before = files_under(user, tmp_path)
        panels = addon.ui.panels
        for panel in (panels.SEQUENCER_PT_gan_style_apply, panels.SEQUENCER_PT_gan_style_train,
                      panels.SEQUENCER_PT_gan_style_library):
            calls = draw(panel)
        assert blend.gan_style.style  # what the style picker reads (its items have icons)
        listed = bpy.context.window_manager.gan_style_library
        assert len(listed) >= 3  # the built-in styles, each drawn with its thumbnail
        row_owner = type("List", (), {"layout_type": 'DEFAULT'})()
        for item in listed:
            panels.GANSTYLE_UL_styles.draw_item(row_owner, bpy.context, RecordingLayout(calls),
                                                None, item, 0, None, "")
        holder = type("Holder", (), {"layout": RecordingLayout(calls),
                                     **{k: getattr(prefs, k) for k in
                                        ("python_path", "device", "library_dir",
                                         "torch_build", "wheel_dir", "install_command")},
                                     "bl_rna": prefs.bl_rna})()
        type(prefs).draw(holder, bpy.context)
        assert f"Library: {missing}" in texts(calls)
        assert not os.path.exists(missing.parent)
        assert files_under(user, tmp_path) == before
    finally:
        prefs.library_dir = chosen
