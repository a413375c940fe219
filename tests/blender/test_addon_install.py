"""One-click setup: Install Dependencies makes a private environment the worker then runs in.

The installation runs for real, from a local wheel folder (`--no-index`): the test setup
downloads the wheels once into `.cache/wheels/py<version>` with torch pinned to 2.13.0, so no
test ever asks the registry for another torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers
from conftest import WORKER_PYTHON
from test_addon_ui import RecordingLayout, texts

pytestmark = pytest.mark.lts

TORCH = "torch==2.13.0"  # NEVER another version from the registry (gigabytes of CUDA)
WHEELS = os.path.join(bl_helpers.ROOT, ".cache", "wheels", "py%d%d" % sys.version_info[:2])


@pytest.fixture(scope="session")
def wheel_dir(addon) -> str:
    """torch 2.13.0 and the NumPy/OpenCV the installer asks for on this Python, downloaded once."""
    done = os.path.join(WHEELS, "downloaded.json")
    wanted = [TORCH, *addon.vse.installer.requirements(sys.version_info[:2])]
    try:
        with open(done) as handle:
            if json.load(handle) == wanted:
                return WHEELS
    except (OSError, ValueError):
        pass
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    *wanted, "-d", WHEELS], check=True, timeout=1800)
    with open(done, "w") as handle:
        json.dump(wanted, handle)
    return WHEELS


def _run(python: str, code: str) -> str:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                          ).stdout.strip()


def test_offline_install_refuses_and_gives_the_command(addon):
    storage = addon.vse.storage
    assert not bpy.app.online_access  # the bpy module starts offline, like --offline-mode
    with pytest.raises(RuntimeError, match=r"Online access is off.*-m venv .* -m pip install "
                                           r"--disable-pip-version-check .*torch"):
        bpy.ops.sequencer.gan_style_install_dependencies(build='CPU')
    assert not os.path.exists(storage.env_dir())
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    command = prefs.install_command
    assert command.startswith(f"{sys.executable} -m venv {storage.env_dir()} && ")
    assert '"numpy<2"' in command or "'numpy<2'" in command
    assert bpy.ops.sequencer.gan_style_copy_install_command() == {'FINISHED'}
    clipboard = bpy.context.window_manager.clipboard
    assert clipboard in (command, ""), clipboard  # headless Blender may have no clipboard


@pytest.mark.parametrize("version, numpy, opencv", [
    ((3, 11), "numpy<2", "opencv-python-headless<4.12"),
    ((3, 12), "numpy<2", "opencv-python-headless<4.12"),
    ((3, 13), "numpy>=2", "opencv-python-headless>=4.12"),
])
def test_pins_follow_the_python_version(addon, version, numpy, opencv):
    assert addon.vse.installer.requirements(version) == [numpy, opencv]


def test_torch_builds_offered_per_platform(addon):
    installer = addon.vse.installer
    assert installer.builds_for("darwin") == ["APPLE"]
    assert installer.builds_for("win32") == installer.builds_for("linux") == ["CUDA", "CPU"]
    cpu = installer.Plan("/b/python", "/env", "CPU", (3, 11)).steps()[1][1]
    cuda = installer.Plan("/b/python", "/env", "CUDA", (3, 11)).steps()[1][1]
    apple = installer.Plan("/b/python", "/env", "APPLE", (3, 11)).steps()[1][1]
    assert cpu[-2:] == ["--index-url", "https://download.pytorch.org/whl/cpu"]
    assert cuda[-2:] == ["--index-url", "https://download.pytorch.org/whl/cu128"]
    assert "--index-url" not in apple  # PyPI's macOS torch has Metal
    local = installer.Plan("/b/python", "/env", "CUDA", (3, 11), wheel_dir="/w").steps()
    assert all(step[1][-3:] == ["--no-index", "--find-links", "/w"] for step in local[1:])


def test_dependency_check_runs_in_the_background(addon, tmp_path):
    deps = addon.vse.deps
    slow = bl_helpers.write_fake_python(str(tmp_path), "slow-python",
                                        f'sleep 3; exec "{WORKER_PYTHON}" "$@"')
    started = time.monotonic()
    status = deps.check_async(slow, refresh=True)
    calls = []
    addon.ui.prefs.draw_dependencies(RecordingLayout(calls), slow, always=True)
    assert time.monotonic() - started < 1.0 and status.checking
    assert texts(calls) == ["Checking the worker Python..."]
    assert bl_helpers.wait_for(lambda: not deps.cached(slow).checking, timeout=60)
    assert deps.cached(slow).ok and deps.cached(slow).gpus == []


def test_device_choice_lists_the_gpus_the_worker_reports(addon, tmp_path, worker_python):
    deps, storage = addon.vse.deps, addon.vse.storage
    prefs = bpy.context.preferences.addons[addon.__name__].preferences

    def items():  # what Blender's enum offers (dynamic items: asked for each time)
        return {i[0]: i[1] for i in addon.ui.prefs._device_items_of(prefs, bpy.context)}

    deps.check(WORKER_PYTHON, refresh=True)
    assert set(items()) == {"AUTO", "CPU"}  # this machine's torch sees no GPU
    with pytest.raises(TypeError):
        prefs.device = 'CUDA:0'
    answer = {"missing": {}, "version": "3.11.7", "torch": "2.13.0", "mps": False,
              "gpus": [{"index": 0, "name": "NVIDIA RTX A6000", "memory": 48 * 1024 ** 3},
                       {"index": 1, "name": "NVIDIA GeForce RTX 4090", "memory": 24 * 1024 ** 3}]}
    two_gpus = bl_helpers.write_fake_python(str(tmp_path), "two-gpus",
                                            f"echo '{json.dumps(answer)}'")
    worker_python(two_gpus)
    deps.check(two_gpus, refresh=True)
    assert items() == {"AUTO": "Automatic", "CPU": "CPU", "CUDA:0": "NVIDIA RTX A6000 (48 GB)",
                       "CUDA:1": "NVIDIA GeForce RTX 4090 (24 GB)"}
    chosen = prefs.device
    try:
        prefs.device = 'CUDA:1'
        assert prefs.device == 'CUDA:1' and storage.device() == "cuda:1"
    finally:
        prefs.device = chosen


def test_cancel_stops_the_installation(addon, wheel_dir, tmp_path):
    deps, installer = addon.vse.deps, addon.vse.installer
    plan = installer.Plan(sys.executable, str(tmp_path / "env"), "CPU", sys.version_info[:2],
                          wheel_dir=wheel_dir, torch=TORCH)
    running = installer.Installer(plan).start()
    deps._installer = running
    try:
        assert bl_helpers.wait_for(lambda: running._process is not None
                                   and "pip" in running._process.args, timeout=120)
        pid = running._process.pid
        assert bpy.ops.sequencer.gan_style_cancel_install() == {'FINISHED'}
        assert running.wait(30) == installer.CANCELLED
        assert bl_helpers.no_process_left([pid])
        assert not installer.installed(plan.env_dir)  # no marker: not a finished install
    finally:
        deps._installer = None


@pytest.mark.slow
def test_install_dependencies_then_the_worker_runs_a_job_in_that_environment(
        addon, blend, media, style, wheel_dir, worker_python):
    storage, deps = addon.vse.storage, addon.vse.deps
    env = storage.env_dir()
    assert env.startswith(os.environ["GAN_STYLE_DATA_DIR"]) and not os.path.exists(env)

    try:
        _install_and_apply(addon, blend, media, style, wheel_dir, worker_python, env)
    finally:  # other tests expect no private environment (Blender's Python by default)
        shutil.rmtree(env, ignore_errors=True)
        deps.clear()


def _install_and_apply(addon, blend, media, style, wheel_dir, worker_python, env):
    storage, installer, deps = (addon.vse.storage, addon.vse.installer,
                                addon.vse.deps)
    assert bpy.ops.sequencer.gan_style_install_dependencies(
        build='CPU', wheel_dir=wheel_dir) == {'FINISHED'}

    python = installer.env_python(env)
    assert installer.installed(env)["build"] == "CPU"
    versions = _run(python, "import sys, torch, numpy, cv2; print(sys.prefix, torch.__version__,"
                            " numpy.__version__, cv2.__version__)").split()
    assert versions[0] == env and versions[1] == "2.13.0+cpu"
    assert versions[2].startswith("1.") and versions[3].startswith("4.11.")
    worker_python("")  # no interpreter chosen: the private environment
    assert storage.worker_python() == python
    status = deps.check(python, refresh=True)
    assert status.ok and status.torch_version == "2.13.0+cpu", status.summary

    strip = bl_helpers.add_images(blend, media.images[:3], "Clip", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    job = addon.vse.scheduler.job_for(blend)
    assert job.python == python and job.state == addon.vse.scheduler.DONE
    (made,) = bl_helpers.new_strips(blend, before)
    outputs = [cv2.imread(f) for f in bl_helpers.strip_files(made)]
    assert len(outputs) == 3
    for got, path in zip(outputs, media.images):
        assert np.array_equal(got, cv2.imread(path))
