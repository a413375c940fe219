"""Blender tests: the real extension, built with Blender's builder and installed into an isolated
user folder, running real worker processes.

Run with the bpy module of the Blender line under test, e.g.
    .venv/bin/python -m pytest tests/blender
    GAN_STYLE_TEST_WORKER_PYTHON=.venv/bin/python \
        .venv-bpy42/bin/python -m pytest tests/blender -m lts
The worker interpreter (it needs torch) is GAN_STYLE_TEST_WORKER_PYTHON, else this Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

# Blender reads this when bpy is imported: every test session gets its own user folder.
_USER_RESOURCES = tempfile.mkdtemp(prefix="gan_style_blender_user_")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
# ... and its own data folder (style library, unsaved-file frames, worker environment).
os.environ["GAN_STYLE_DATA_DIR"] = os.path.join(_USER_RESOURCES, "gan_style_data")

import bpy  # noqa: E402
import pytest  # noqa: E402

import bl_helpers  # noqa: E402

sys.path.insert(0, os.path.join(bl_helpers.ROOT, "scripts"))
from build_extension import build_extension  # noqa: E402  (the same build users run)

ROOT = bl_helpers.ROOT
MODULE = "bl_ext.user_default.gan_style"
WORKER_PYTHON = os.environ.get("GAN_STYLE_TEST_WORKER_PYTHON") or sys.executable


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_USER_RESOURCES, ignore_errors=True)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory) -> str:
    """The extension zip, made by Blender's own builder after its validator passed."""
    return build_extension(str(tmp_path_factory.mktemp("dist")))


@pytest.fixture(scope="session")
def addon(built_zip, tmp_path_factory):
    """The extension installed from the zip and enabled; yields its root module."""
    done = subprocess.run([WORKER_PYTHON, "-c", "import torch, cv2, numpy"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"The worker Python {WORKER_PYTHON} cannot import torch/cv2/numpy; set "
                    f"GAN_STYLE_TEST_WORKER_PYTHON to one that can.\n{done.stderr[-500:]}")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=built_zip, repo="user_default",
                                             enable_on_install=True)
    installed = os.path.join(bpy.utils.user_resource('EXTENSIONS'), "user_default", "gan_style")
    # The operator reports FINISHED even when extraction fails: check the files.
    for relative in ("__init__.py", "blender_manifest.toml", "gan/worker.py",
                     "operators/apply.py", "vse/scheduler.py", "ui/panels.py"):
        assert os.path.isfile(os.path.join(installed, relative)), relative
    assert MODULE in bpy.context.preferences.addons, "the extension was not enabled"
    module = sys.modules[MODULE]
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python_path = WORKER_PYTHON
    prefs.device = 'CPU'
    template = str(tmp_path_factory.mktemp("template") / "empty.blend")
    bpy.ops.wm.save_as_mainfile(filepath=template)
    module.test_template = template
    yield module
    module.vse.scheduler.cancel_all()


@pytest.fixture
def runner(addon):
    return addon.vse.scheduler


@pytest.fixture
def worker(addon):
    """The worker processes' module (the serving worker of previews)."""
    return addon.vse.worker


@pytest.fixture
def window_runner(addon, monkeypatch):
    """The job runner in window mode (the operator returns; the test drives the timer)."""
    runner = addon.vse.scheduler
    monkeypatch.setattr(runner, "FORCE_ASYNC", True)
    yield runner
    runner.cancel_all()
    if bpy.app.timers.is_registered(runner.tick):
        bpy.app.timers.unregister(runner.tick)


@pytest.fixture
def blend(addon, tmp_path):
    """A fresh, saved .blend (so `//` paths resolve to tmp_path) with a sequence editor."""
    runner = addon.vse.scheduler
    runner.cancel_all()
    runner._jobs.clear()
    bpy.ops.wm.open_mainfile(filepath=addon.test_template)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    scene.render.resolution_x, scene.render.resolution_y = bl_helpers.W, bl_helpers.H
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = bl_helpers.FPS, 1.0
    path = str(tmp_path / "edit.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    yield scene
    runner.cancel_all()
    runner.FORCE_ASYNC = False


@pytest.fixture
def worker_python(addon):
    """Swap the worker interpreter preference for one test: `worker_python(path)`."""
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    original = prefs.python_path

    def use(path):
        prefs.python_path = str(path)
    yield use
    prefs.python_path = original


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> bl_helpers.Media:
    """Lossless test media: an FFV1 movie and PNG image sequences, every frame different."""
    return bl_helpers.make_media(str(tmp_path_factory.mktemp("media")))


@pytest.fixture(scope="session")
def trained_style(addon, media) -> str:
    """A tiny style trained once through the operator (a few steps), in the library.

    Style sources: a colour strip (which Blender renders first) and an image file; content: a
    trimmed movie strip.
    """
    bpy.ops.wm.open_mainfile(filepath=addon.test_template)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    look = bl_helpers.add_effect(scene, "Look", 'COLOR', channel=2, frame_start=1, length=3)
    look.color = (0.9, 0.4, 0.1)
    movie = bl_helpers.add_movie(scene, media.movie, "Content", channel=1, frame_start=1)
    movie.frame_offset_end = 10
    result = bpy.ops.sequencer.gan_style_train(
        name="tiny", style_strips=[{"name": "Look"}], style_path=media.style_image,
        content_strips=[{"name": "Content"}], steps=bl_helpers.TRAIN_STEPS)
    assert result == {'FINISHED'}
    path = os.path.join(addon.vse.storage.library_dir(), "tiny.ganstyle")
    assert os.path.isfile(path)
    return path


@pytest.fixture(scope="session")
def style(trained_style) -> str:
    """Library name of a usable style: the tiny one trained through the operator."""
    return os.path.splitext(os.path.basename(trained_style))[0]
