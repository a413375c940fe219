"""Clean Up removes frame folders no strip uses and unfinished trainings - and nothing in use."""

from __future__ import annotations

import os
import shutil

import bpy
import cv2
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def frame_folder(name: str, frames: int = 2) -> str:
    """A folder of stylized-looking frames under `gan_style/` beside the open .blend."""
    folder = os.path.join(bl_helpers.output_root(), name)
    os.makedirs(folder)
    for i in range(frames):
        cv2.imwrite(os.path.join(folder, f"frame_{i + 1:06d}.png"), bl_helpers.coded_frame(i))
    return folder


def image_strip(owner, folder: str, name: str, channel: int):
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    strip = bl_helpers.add_images(owner, files, name, channel=channel, frame_start=1)
    strip.directory = bpy.path.relpath(folder) + "/"
    return strip


def folders() -> set[str]:
    return set(os.listdir(bl_helpers.output_root()))


def test_clean_up_never_removes_a_folder_a_strip_uses(addon, blend, media, style,
                                                      window_runner):
    scene = blend
    cleanup = addon.vse.cleanup
    clip = bl_helpers.add_images(scene, media.images[:3], "Clip", channel=1, frame_start=1)
    # Named by another .blend beside this one (another version of the edit) and by no strip
    # of this one (saved first: that file names nothing else).
    shared = image_strip(scene, frame_folder("other_blend"), "Shared", channel=8)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(os.path.dirname(bpy.data.filepath),
                                                      "edit_v2.blend"), copy=True,
                                compress=True)  # zstd, as Blender 5 saves by default
    bl_helpers.strips(scene).remove(shared)
    bl_helpers.select_only(scene, clip)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0) == {'FINISHED'}
    assert bl_helpers.wait_for(lambda: not window_runner.running_jobs(), timeout=120,
                               tick=window_runner.tick)
    assert [s for s in bl_helpers.strips_all(scene) if s.name != "Clip"], "Apply added no strip"
    (applied_folder,) = folders() - {"other_blend"}

    # Used: by a strip of another scene, inside a meta strip, through a Windows-style path.
    other = bpy.data.scenes.new("Other")
    other.sequence_editor_create()
    image_strip(other, frame_folder("other_scene"), "InOther", channel=1)
    meta_child = image_strip(scene, frame_folder("in_meta"), "Child", channel=5)
    meta = bl_helpers.strips(scene).new_meta(name="Meta", channel=6, frame_start=1)
    meta_child.move_to_meta(meta)
    backslash = image_strip(scene, frame_folder("windows_path"), "Win", channel=7)
    backslash.directory = "//gan_style\\windows_path\\"
    # Unused: a strip deleted after its apply, and a folder nothing ever used.
    deleted = image_strip(scene, frame_folder("deleted_strip", frames=3), "Gone", channel=9)
    bl_helpers.strips(scene).remove(deleted)
    frame_folder("never_used")
    # Unfinished training (no style file) and the finished style's name (kept).
    library = addon.vse.storage.library_dir()
    unfinished = os.path.join(library, ".training", "half_done")
    os.makedirs(unfinished)
    with open(os.path.join(unfinished, "checkpoint.pt"), "wb") as handle:
        handle.write(b"x" * 5000)
    finished = os.path.join(library, ".training", style)
    os.makedirs(finished, exist_ok=True)
    # Being written by a running job: the strip exists only once the job is done (other
    # settings than the first Apply's, which would only complete that folder).
    bl_helpers.select_only(scene, clip)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0,
                                             stroke_scale=2.0) == {'FINISHED'}
    (running,) = folders() - {applied_folder, "other_scene", "in_meta", "windows_path",
                              "other_blend", "deleted_strip", "never_used"}
    assert window_runner.running_jobs()

    items, notes = cleanup.find_leftovers()
    listed = {os.path.basename(i.path): i for i in items}
    assert set(listed) == {"deleted_strip", "never_used", "half_done"}, notes
    assert listed["deleted_strip"].size == sum(
        os.path.getsize(os.path.join(listed["deleted_strip"].path, f))
        for f in os.listdir(listed["deleted_strip"].path))
    assert listed["half_done"].size == 5000 and listed["half_done"].kind == "training"
    assert notes == ["1 frame folder(s) kept: edit_v2.blend names them"]

    assert bpy.ops.sequencer.gan_style_clean_up(dry_run=True) == {'FINISHED'}
    assert {"deleted_strip", "never_used"} <= folders() and os.path.isdir(unfinished)
    assert bpy.ops.sequencer.gan_style_clean_up() == {'FINISHED'}
    assert folders() == {applied_folder, running, "other_scene", "in_meta", "windows_path",
                         "other_blend"}
    assert not os.path.exists(unfinished) and os.path.isdir(finished)
    for strip in bl_helpers.strips_all(scene) + bl_helpers.strips_all(other):
        if strip.type == 'IMAGE':
            files = [os.path.join(addon.vse.storage.absolute(strip.directory), e.filename)
                     for e in strip.elements]
            assert all(os.path.isfile(f) for f in files), strip.name

    assert bl_helpers.wait_for(lambda: not window_runner.running_jobs(), timeout=120,
                               tick=window_runner.tick)
    assert len(bl_helpers.strips_all(scene)) == 6  # Clip, 2 applied, meta + child, Win
    # A .blend beside it that cannot be read may name any folder: every frame folder is kept.
    frame_folder("after_broken")
    with open(os.path.join(os.path.dirname(bpy.data.filepath), "broken.blend"), "wb") as handle:
        handle.write(b"\x28\xb5\x2f\xfd not really zstd")
    items, notes = cleanup.find_leftovers()
    assert not [i for i in items if i.kind == "frames"]
    assert any("broken.blend cannot be read" in n for n in notes)
    shutil.rmtree(finished)


def test_cli_cleanup_lists_and_removes(addon, blend, media, capsys):
    cli = addon.ui.cli
    used = frame_folder("used")
    image_strip(blend, used, "Used", channel=2)
    unused = frame_folder("unused")
    bpy.ops.wm.save_mainfile()
    path = bpy.data.filepath

    assert cli.main(["cleanup", path, "--dry-run"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "Frames: unused" in out and "nothing removed" in out and "Frames: used" not in out
    assert os.path.isdir(unused)
    assert cli.main(["cleanup", path]) == cli.EXIT_OK
    assert f"Removed {unused}" in capsys.readouterr().out
    assert not os.path.exists(unused) and os.path.isdir(used)
    assert cli.main(["cleanup"]) == cli.EXIT_USAGE


def test_clean_up_removes_only_what_the_dialog_listed(addon, blend):
    listed, appeared = frame_folder("listed"), frame_folder("appeared_after")
    used_later = frame_folder("used_after")
    shown = "\n".join(f"{size}\tframes\t{path}" for size, path in
                      ((10, listed), (10, used_later)))
    image_strip(blend, used_later, "NowUsed", channel=2)  # used since the dialog opened
    assert bpy.ops.sequencer.gan_style_clean_up(shown=shown) == {'FINISHED'}
    assert not os.path.exists(listed)
    assert os.path.isdir(appeared) and os.path.isdir(used_later)
