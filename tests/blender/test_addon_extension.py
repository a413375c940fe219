"""The extension as Blender sees it: manifest, build, install, registration."""

from __future__ import annotations

import os
import sys
import tomllib
import zipfile

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def test_manifest_follows_blenders_rules():
    with open(os.path.join(bl_helpers.ROOT, "blender_manifest.toml"), "rb") as handle:
        manifest = tomllib.load(handle)
    assert manifest["id"] == "gan_style"
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert len(manifest["tagline"]) <= 64 and not manifest["tagline"].endswith(".")
    # network: Install Dependencies (only with Allow Online Access on)
    assert set(manifest["permissions"]) == {"files", "network"}
    assert all(len(reason) <= 64 and not reason.endswith(".")
               for reason in manifest["permissions"].values())
    assert all(license.startswith("SPDX:") for license in manifest["license"])


def test_zip_holds_the_addon_and_nothing_else(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    for package in ("gan/", "operators/", "ui/", "vse/"):
        assert any(n.startswith(package) for n in names), package
    for prefix in ("tests/", "benchmarks/", "scripts/", "docs/", ".ci/", ".venv", ".git/"):
        assert not any(n.startswith(prefix) for n in names), prefix
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_installed_and_registered(addon):
    assert addon.__name__ == "bl_ext.user_default.gan_style"
    # bpy.ops makes a wrapper for any name: a registered operator is a class in bpy.types
    for idname in ("gan_style_apply", "gan_style_reapply", "gan_style_preview", "gan_style_train",
                   "gan_style_cancel", "gan_style_export_farm_job", "gan_style_library_import",
                   "gan_style_library_remove", "gan_style_library_rename"):
        assert hasattr(bpy.types, f"SEQUENCER_OT_{idname}"), idname
        assert getattr(bpy.ops.sequencer, idname).poll() in (True, False)
    assert {'REGISTER', 'UNDO'} <= set(bpy.types.SEQUENCER_OT_gan_style_apply.bl_options)
    assert hasattr(bpy.types.Scene, "gan_style")
    panels = {"SEQUENCER_PT_gan_style_apply", "SEQUENCER_PT_gan_style_train",
              "SEQUENCER_PT_gan_style_library"}
    assert panels <= set(dir(bpy.types))
    assert bpy.types.SEQUENCER_PT_gan_style_apply.bl_category == "Style"


def test_blender_never_imports_torch(addon):
    """Checked in a fresh process: this one may hold torch from other test modules."""
    done = bl_helpers.run_python(
        "import sys, bpy, addon_utils\n"
        f"addon_utils.enable({addon.__name__!r}, default_set=True)\n"
        f"assert {addon.__name__!r} in bpy.context.preferences.addons\n"
        "bpy.ops.sequencer.gan_style_library_refresh()\n"
        "heavy = sorted({'torch', 'cv2'} & set(sys.modules))\n"
        "print('heavy:', heavy)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "heavy: []" in done.stdout


def test_user_data_lives_in_the_data_folder_outside_blender_and_the_extension(addon):
    storage = addon.vse.storage
    data = os.environ["GAN_STYLE_DATA_DIR"]
    assert storage.data_root() == data
    assert storage.library_dir() == os.path.join(data, "styles")
    assert storage.output_parent("")[0] == os.path.join(data, "frames")
    assert os.path.isdir(storage.library_dir())
    user = bpy.utils.extension_path_user(addon.__name__)
    assert not storage.library_dir().startswith(user)


def test_default_data_folder_is_the_platforms_per_user_place(addon, monkeypatch):
    storage = addon.vse.storage
    monkeypatch.delenv("GAN_STYLE_DATA_DIR")
    monkeypatch.setenv("HOME", "/home/artist")
    monkeypatch.setenv("XDG_DATA_HOME", "/data/artist")
    assert storage.data_root() == "/data/artist/gan_style"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert storage.data_root() == "/home/artist/.local/share/gan_style"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert storage.data_root() == "/home/artist/Library/Application Support/GAN Style"
    for folder in (bpy.utils.resource_path('USER'), bpy.utils.user_resource('EXTENSIONS')):
        assert not storage.data_root().startswith(folder)


def test_worker_python_defaults_to_blenders_own(addon):
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    chosen = prefs.python_path
    try:
        prefs.python_path = ""
        assert addon.vse.storage.worker_python() == sys.executable
    finally:
        prefs.python_path = chosen


def test_dependency_check_names_what_is_missing(addon, tmp_path):
    deps = addon.vse.deps
    from conftest import WORKER_PYTHON
    good = deps.check(WORKER_PYTHON, refresh=True)
    assert good.ok, good.summary
    no_torch = bl_helpers.python_without_torch(tmp_path, WORKER_PYTHON)
    status = deps.check(no_torch, refresh=True)
    assert not status.ok and list(status.missing) == ["torch"]
    assert "Missing in the worker Python: torch" == status.summary
    assert f'"{no_torch}" -m pip install "torch"' in status.hint
    missing = deps.check(str(tmp_path / "no-such-python"), refresh=True)
    assert not missing.ok and "not found" in missing.summary


def test_disable_and_enable_again(addon):
    import addon_utils
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    chosen = (prefs.python_path, prefs.device)
    addon_utils.disable(addon.__name__, default_set=True)
    assert not hasattr(bpy.types.Scene, "gan_style")
    assert not hasattr(bpy.types, "SEQUENCER_OT_gan_style_apply")
    addon_utils.enable(addon.__name__, default_set=True)
    assert hasattr(bpy.types.Scene, "gan_style")
    assert hasattr(bpy.types, "SEQUENCER_OT_gan_style_apply")
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    prefs.python_path, prefs.device = chosen  # disabling forgets the preferences
