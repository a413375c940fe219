"""Scripts and render farms: `blender -c gan_style ...` and operators in `blender -b` runs.

The bpy module runs in background mode like `blender -b`: operators block, print progress
lines, and a failure is an ERROR report, which a Python caller receives as RuntimeError (so
`blender -b f.blend --python-exit-code 1 --python-expr ...` exits non-zero).
"""

from __future__ import annotations

import os

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def saved_blend(blend, media):
    strip = bl_helpers.add_images(blend, media.images[:4], "Clip", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    bpy.ops.wm.save_mainfile()
    return bpy.data.filepath


def test_cli_command_is_registered(addon):
    assert addon.ui.cli._handle is not None


def test_cli_apply_saves_the_new_strip(addon, saved_blend, style, capsys):
    cli = addon.ui.cli
    code = cli.main(["apply", saved_blend, "--style", style, "--strip", "Clip", "--mix", "0",
                     "--frames", "2-3"])
    assert code == cli.EXIT_OK, capsys.readouterr()
    bpy.ops.wm.open_mainfile(filepath=saved_blend)
    created = [s for s in bl_helpers.strips_all(bpy.context.scene) if s.name != "Clip"]
    assert len(created) == 1
    assert (created[0].frame_final_start, created[0].frame_final_duration) == (2, 2)


def test_cli_failures_have_exit_codes_and_one_line(addon, saved_blend, capsys):
    cli = addon.ui.cli
    assert cli.main(["apply", saved_blend, "--style", "nope"]) == cli.EXIT_FAILED
    assert "error: No style named 'nope'" in capsys.readouterr().err
    assert cli.main(["apply", saved_blend, "--style", "x", "--strip", "Missing"]) == cli.EXIT_FAILED
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE
    assert cli.main(["apply"]) == cli.EXIT_USAGE
    train = ["train", saved_blend, "--name", "x"]
    assert cli.main([*train, "--content-strip", "Clip"]) == cli.EXIT_FAILED
    assert "error: Choose a style source" in capsys.readouterr().err
    assert cli.main([*train, "--minutes", "1", "--steps", "2"]) == cli.EXIT_USAGE


def test_cli_lists_the_library(addon, style, capsys):
    cli = addon.ui.cli
    assert cli.main(["library"]) == cli.EXIT_OK
    assert f"  {style}: preset draft" in capsys.readouterr().out


FARM_SCRIPT = """
import sys
import bpy
import addon_utils
addon_utils.enable("bl_ext.user_default.gan_style", default_set=True)
prefs = bpy.context.preferences.addons["bl_ext.user_default.gan_style"].preferences
prefs.python_path, prefs.device = sys.argv[1], 'CPU'
bpy.ops.wm.open_mainfile(filepath=sys.argv[2])
bpy.ops.sequencer.gan_style_apply(style=sys.argv[3], mix=0.0)
bpy.ops.wm.save_mainfile()
"""


def test_farm_script_succeeds_and_fails_with_exit_codes(saved_blend, style):
    from conftest import WORKER_PYTHON
    failed = bl_helpers.run_python(FARM_SCRIPT, WORKER_PYTHON, saved_blend, "no_such_style")
    assert failed.returncode != 0
    assert "No style named 'no_such_style'" in failed.stderr
    done = bl_helpers.run_python(FARM_SCRIPT, WORKER_PYTHON, saved_blend, style)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GAN Style: Apply" in done.stdout  # progress lines for the farm log
    bpy.ops.wm.open_mainfile(filepath=saved_blend)
    assert len(bl_helpers.strips_all(bpy.context.scene)) == 2
    assert os.path.isdir(os.path.join(os.path.dirname(saved_blend), "gan_style"))
