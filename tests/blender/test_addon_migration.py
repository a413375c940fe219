"""Styles of earlier versions move out of the extension's user folder, without loss."""

from __future__ import annotations

import os
import shutil

import addon_utils
import bpy
import pytest

import bl_helpers
from conftest import WORKER_PYTHON

pytestmark = pytest.mark.lts


def _files(folder: str) -> dict[str, str]:
    """relative path -> digest of every file under `folder`."""
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = bl_helpers.file_digest(path)
    return found


def _reenable(addon):
    """Disable and enable the extension (what an update or a restart of Blender does)."""
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    chosen = (prefs.python_path, prefs.device)
    addon_utils.disable(addon.__name__, default_set=True)
    addon_utils.enable(addon.__name__, default_set=True)
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    prefs.python_path, prefs.device = chosen


def test_migration_keeps_every_style(addon, trained_style, tmp_path):
    storage = addon.vse.storage
    old = storage.old_library_dir()
    new = storage.library_dir()
    assert not old.startswith(new) and not new.startswith(old)
    os.makedirs(os.path.join(old, ".training", "Clash"))
    os.makedirs(os.path.join(old, ".training", "Unfinished", "auto_keyframes"))
    shutil.copy(trained_style, os.path.join(old, "Alpha.ganstyle"))
    bl_helpers.make_untrained_style(os.path.join(old, "Clash.ganstyle"), WORKER_PYTHON)
    with open(os.path.join(old, ".training", "Clash", "checkpoint.pt"), "wb") as handle:
        handle.write(b"clash checkpoint")
    with open(os.path.join(old, ".training", "Unfinished", "checkpoint.pt"), "wb") as handle:
        handle.write(b"unfinished checkpoint")
    with open(os.path.join(old, ".training", "Unfinished", "auto_keyframes", "k.png"),
              "wb") as handle:
        handle.write(b"painted")
    with open(os.path.join(old, "notes.txt"), "w") as handle:
        handle.write("not a style: stays")
    # The new library already has a style named "Clash" (another one).
    shutil.copy(trained_style, os.path.join(new, "Clash.ganstyle"))
    before_old, before_new = _files(old), _files(new)

    _reenable(addon)

    after = _files(new)
    expected = {**before_new,
                "Alpha.ganstyle": before_old["Alpha.ganstyle"],
                "Clash_2.ganstyle": before_old["Clash.ganstyle"],
                os.path.join(".training", "Clash_2", "checkpoint.pt"):
                    before_old[os.path.join(".training", "Clash", "checkpoint.pt")],
                os.path.join(".training", "Unfinished", "checkpoint.pt"):
                    before_old[os.path.join(".training", "Unfinished", "checkpoint.pt")],
                os.path.join(".training", "Unfinished", "auto_keyframes", "k.png"):
                    before_old[os.path.join(".training", "Unfinished", "auto_keyframes",
                                            "k.png")]}
    assert after == expected
    assert _files(old) == {"notes.txt": before_old["notes.txt"]}
    names = {entry.name: entry for entry in addon.vse.library.scan(new)}
    assert {"Alpha", "Clash", "Clash_2"} <= set(names)
    assert not any(names[n].error for n in ("Alpha", "Clash", "Clash_2"))
    assert addon.vse.library.unfinished_training(new, "Unfinished")

    _reenable(addon)  # once: nothing more moves, nothing is duplicated
    assert _files(new) == expected
    for name in ("Alpha", "Clash", "Clash_2"):
        os.remove(os.path.join(new, name + ".ganstyle"))
    shutil.rmtree(os.path.join(new, ".training", "Clash_2"))
    shutil.rmtree(os.path.join(new, ".training", "Unfinished"))
