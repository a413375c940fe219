"""Export Farm Job: the selected strips become an Open Job Description bundle that `openjd run`
(the session library of Deadline Cloud's workers) runs here; Apply with the same strip and
settings then adds the farm's frames instead of stylizing again."""

from __future__ import annotations

import json
import os
import subprocess

import bpy
import numpy as np
import pytest
import yaml

import bl_helpers
from conftest import WORKER_PYTHON

pytestmark = pytest.mark.lts
OPENJD = os.path.join(os.path.dirname(WORKER_PYTHON), "openjd")
STYLE = "Sepia"  # a shipped style: no training needed


def run_bundle(bundle):
    with open(os.path.join(bundle, "parameter_values.yaml"), encoding="utf-8") as handle:
        values = yaml.safe_load(handle)["parameterValues"]
    params = [arg for v in values for arg in ("-p", f"{v['name']}={v['value']}")]
    return subprocess.run([OPENJD, "run", "template.yaml", *params], cwd=bundle,
                          capture_output=True, text=True, timeout=600)


def read(path):
    import cv2
    return cv2.imread(path)


@pytest.fixture
def strips(blend, media):
    """A reversed, trimmed movie strip (timeline order != source order) and a colour strip,
    which Blender must render for the farm."""
    movie = bl_helpers.add_movie(blend, media.movie, "Clip", channel=1, frame_start=1)
    movie.frame_offset_start, movie.frame_offset_end = 2, 20  # timeline 3-10: 8 frames
    movie.use_reverse_frames = True
    colour = bl_helpers.add_effect(blend, "Tint", 'COLOR', channel=3, frame_start=4, length=3)
    colour.color = (0.2, 0.5, 0.9)
    bl_helpers.select_only(blend, movie, colour)
    bpy.ops.wm.save_mainfile()
    return movie, colour


def test_export_farm_job_runs_and_apply_reuses_its_frames(addon, blend, strips, media,
                                                          tmp_path):
    movie, colour = strips
    before = {s.name: bl_helpers.strip_state(s) for s in bl_helpers.strips_all(blend)}
    result = bpy.ops.sequencer.gan_style_export_farm_job(style=STYLE, chunk_size=3,
                                                         python=WORKER_PYTHON)
    assert result == {'FINISHED'}
    assert not bl_helpers.state_changes(before, bl_helpers.strips_all(blend))
    farm_dir = tmp_path / "gan_style" / "farm"
    bundle = str(farm_dir / f"edit_{STYLE}")
    assert sorted(os.listdir(bundle)) == ["asset_references.yaml", "engine",
                                          "parameter_values.yaml", "sources", "style",
                                          "template.yaml"]
    assert bl_helpers.file_digest(os.path.join(bundle, "style", f"{STYLE}.ganstyle")) == \
        bl_helpers.file_digest(os.path.join(addon.vse.storage.BUILTIN_STYLES_DIR,
                                            f"{STYLE}.ganstyle"))
    rendered = os.path.join(bundle, "sources", "2_Tint")
    assert sorted(os.listdir(rendered)) == [f"render_{i:06d}.png" for i in range(3)]
    with open(os.path.join(bundle, "template.yaml"), encoding="utf-8") as handle:
        template = yaml.safe_load(handle)
    defaults = {p["name"]: p.get("default") for p in template["parameterDefinitions"]}
    assert defaults["Frames1"] == "20-27"  # source frames 27..20 play on 3..10
    assert defaults["Frames2"] == "0-2" and defaults["ChunkSize"] == 3
    with open(os.path.join(bundle, "parameter_values.yaml"), encoding="utf-8") as handle:
        values = {v["name"]: v["value"] for v in yaml.safe_load(handle)["parameterValues"]}
    assert values["Input1"] == media.movie
    assert values["Output1"] == str(farm_dir / f"edit_{STYLE}_frames" / "Clip")
    assert not [n for n in os.listdir(farm_dir) if n.startswith(".")]  # no render left over

    checked = subprocess.run([OPENJD, "check", os.path.join(bundle, "template.yaml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = run_bundle(bundle)
    assert ran.returncode == 0, ran.stdout[-3000:]
    clip_out = values["Output1"]
    assert sorted(os.listdir(clip_out)) == [f"frame_{i:06d}.png" for i in range(20, 28)]

    # Apply with the same settings: the farm's frames, no worker, no new frame folder.
    bpy.ops.wm.save_mainfile()  # the scene remembers the export, also after reopening
    bpy.ops.wm.open_mainfile(filepath=bpy.data.filepath)
    scene = bpy.context.scene
    assert json.loads(scene["gan_style_farm"])
    bl_helpers.select_only(scene, *(bl_helpers.strips_all(scene)))
    names = {s.name for s in bl_helpers.strips_all(scene)}
    assert bpy.ops.sequencer.gan_style_apply(style=STYLE) == {'FINISHED'}
    added = {s["gan_style"]["source_strip"]: s for s in bl_helpers.new_strips(scene, names)}
    assert sorted(added) == ["Clip", "Tint"]
    assert bl_helpers.strip_files(added["Clip"]) == [
        os.path.join(clip_out, f"frame_{i:06d}.png") for i in range(27, 19, -1)]
    assert (added["Clip"].frame_final_start, added["Clip"].frame_final_duration) == (3, 8)
    assert (added["Tint"].frame_final_start, added["Tint"].frame_final_duration) == (4, 3)
    assert not os.path.exists(tmp_path / "gan_style" / f"Clip_{STYLE}")  # nothing stylized

    # Other settings are other frames: Apply with another mix stylizes again.
    bl_helpers.select_only(scene, next(s for s in bl_helpers.strips_all(scene)
                                       if s.name == "Tint"))
    assert bpy.ops.sequencer.gan_style_apply(style=STYLE, mix=0.5) == {'FINISHED'}
    assert sorted(n for n in os.listdir(tmp_path / "gan_style" / f"Tint_{STYLE}")
                  if n.endswith(".png")) == [f"frame_{i:06d}.png" for i in range(1, 4)]

    # A frame missing: Apply stylizes again, and its frames are the farm's.
    os.remove(os.path.join(clip_out, "frame_000023.png"))
    bl_helpers.select_only(scene, next(s for s in bl_helpers.strips_all(scene)
                                       if s.name == "Clip"))
    names = {s.name for s in bl_helpers.strips_all(scene)}
    assert bpy.ops.sequencer.gan_style_apply(style=STYLE) == {'FINISHED'}
    (local,) = bl_helpers.new_strips(scene, names)
    local_files = bl_helpers.strip_files(local)
    assert os.path.dirname(local_files[0]) == str(tmp_path / "gan_style" / f"Clip_{STYLE}")
    for position, source_frame in enumerate(range(27, 19, -1)):
        farm_file = os.path.join(clip_out, f"frame_{source_frame:06d}.png")
        if source_frame != 23:
            assert np.array_equal(read(local_files[position]), read(farm_file)), farm_file


def test_export_farm_job_bad_input_and_cli(addon, blend, strips, media, tmp_path, capsys):
    cli = addon.ui.cli
    path = bpy.data.filepath
    assert cli.main(["farm-job", path, "--style", "nope"]) == cli.EXIT_FAILED
    assert "error: No style named 'nope'" in capsys.readouterr().err
    code = cli.main(["farm-job", path, "--style", STYLE, "--strip", "Clip", "--chunk-size", "4",
                     "--out", str(tmp_path / "jobs"), "--stabilize", "0.7"])
    assert code == cli.EXIT_OK, capsys.readouterr()
    assert "submit it with: deadline bundle submit" in capsys.readouterr().out
    bundle = tmp_path / "jobs" / f"edit_{STYLE}"
    with open(bundle / "template.yaml", encoding="utf-8") as handle:
        defaults = {p["name"]: p.get("default")
                    for p in yaml.safe_load(handle)["parameterDefinitions"]}
    assert (defaults["Stabilize"], defaults["ChunkSize"], defaults["Frames1"]) == (0.7, 4, "20-27")
    # A second export takes a new name; the first bundle is untouched.
    stamp = os.stat(bundle / "template.yaml").st_mtime_ns
    assert cli.main(["farm-job", path, "--style", STYLE, "--strip", "Clip",
                     "--out", str(tmp_path / "jobs")]) == cli.EXIT_OK
    assert os.path.isdir(tmp_path / "jobs" / f"edit_{STYLE}_2")
    assert os.stat(bundle / "template.yaml").st_mtime_ns == stamp

    bpy.ops.wm.open_mainfile(filepath=path)
    scene = bpy.context.scene
    moved = str(tmp_path / "moved.avi")
    os.rename(media.movie, moved)
    try:
        bl_helpers.select_only(scene, next(s for s in bl_helpers.strips_all(scene)
                                           if s.name == "Clip"))
        with pytest.raises(RuntimeError, match="media file not found"):
            bpy.ops.sequencer.gan_style_export_farm_job(style=STYLE)
    finally:
        os.rename(moved, media.movie)
    assert not os.path.exists(tmp_path / "gan_style" / "farm" / f"edit_{STYLE}")
